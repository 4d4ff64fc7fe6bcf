"""One recurrent cell and the model around it: the parameter contract, the unroll (numpy reference),
stacking, hoisted input projections, population batching and the readout model. No framework here.
"""
