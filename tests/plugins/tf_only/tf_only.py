"""A plugin variant whose step fails only under TensorFlow, for tests/test_runner.py: a tanh RNN whose
step branches in Python on a tensor's value. numpy and PyTorch (eager) allow that, so the contract
preflight passes; TensorFlow's traced training step does not, and Keras wraps the error raised inside
the layer call in its own text ("Exception encountered when calling ...", "training=False") with
terminal colour codes."""

from variants.rnn import SimpleRNN


class TfOnly(SimpleRNN):
    id = "tf_only"
    name = "fails only under TensorFlow"
    family = "test"
    reference = "tests/plugins"
    fused_kernel = None  # the step must really run, so no library kernel

    def step(self, ops, p, x, state):
        h, new_state = super().step(ops, p, x, state)
        if h[0, 0] > 1e9:  # a Python branch on a tensor: fine eagerly, refused in a traced graph
            h = h * 0.0
        return h, new_state
