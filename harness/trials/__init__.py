"""What a trial is: the training protocol's settings (``protocol``), a trial's identity and seeds (``trial``)
and its result (``result``). Every layer above passes these around; this package imports only the plugin API.
"""
