"""What a trial is: the training protocol's settings (``protocol``) and a trial's identity and seeds
(``trial``). Every layer above passes these around; this package imports only the plugin API. (A trial's
result, ``TrialResult``, is in ``harness.training.solo``, with the protocol that produces it.)
"""
