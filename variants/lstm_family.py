"""Greff et al. (2015), "LSTM: A Search Space Odyssey": the reference cell V and its eight ablations.

Each variant changes exactly one thing in V (equations in ``harness/lstm_cell.py``) and drops the
parameters it no longer uses. The initial forget-gate bias is the hyperparameter ``forget_bias``.
"""

from __future__ import annotations

from harness.lstm_cell import LSTMParts, lstm_shapes, lstm_step
from harness.variant import FORGET_BIAS, Variant, apply_forget_bias


class LSTMFamilyVariant(Variant):
    """Base of the V family: set ``parts``; shapes, step and initial biases follow."""

    parts = LSTMParts()
    family = "lstm"
    reference = "Greff et al. 2015"
    hyperparameters = {"forget_bias": FORGET_BIAS}

    def parameter_shapes(self, input_size, hidden_size):
        return lstm_shapes(self.parts, input_size, hidden_size)

    def state_sizes(self, hidden_size):
        # (h, c) and, with full gate recurrence, the previous gate activations (i, f, o)
        return (hidden_size,) * (2 + (len(self.parts.gates) if self.parts.full_gate_recurrence else 0))

    def step(self, ops, p, x, state):
        h, c = state[0], state[1]
        previous = dict(zip(self.parts.gates, state[2:])) if self.parts.full_gate_recurrence else None
        h, c, gates = lstm_step(self.parts, ops, p, x, h, c, previous)
        if self.parts.full_gate_recurrence:
            return h, (h, c, *(gates[g] for g in self.parts.gates))
        return h, (h, c)

    def adjust_init(self, params, rng, lag):
        if "forget_bias" in self.hparams:
            apply_forget_bias(params, self.hparams["forget_bias"], lag, rng)


class Vanilla(LSTMFamilyVariant):
    """V: the peephole LSTM (Gers & Schmidhuber 2000), Greff et al.'s reference "vanilla" cell."""

    id, name, aliases = "v", "vanilla (peephole) LSTM", ("peephole",)
    reference = "Gers & Schmidhuber 2000; Greff et al. 2015"


class NoInputGate(LSTMFamilyVariant):
    """NIG: i_t = 1."""

    id, name, parts = "nig", "no input gate", LSTMParts(input_gate=False)


class NoForgetGate(LSTMFamilyVariant):
    """NFG: f_t = 1 (the original 1997 LSTM's constant error carousel). No forget bias to set."""

    id, name, parts = "nfg", "no forget gate", LSTMParts(forget_gate=False)
    hyperparameters = {}


class NoOutputGate(LSTMFamilyVariant):
    """NOG: o_t = 1."""

    id, name, parts = "nog", "no output gate", LSTMParts(output_gate=False)


class NoInputActivation(LSTMFamilyVariant):
    """NIAF: g(x) = x."""

    id, name, parts = "niaf", "no input activation function", LSTMParts(input_activation=False)


class NoOutputActivation(LSTMFamilyVariant):
    """NOAF: k(x) = x."""

    id, name, parts = "noaf", "no output activation function", LSTMParts(output_activation=False)


class NoPeepholes(LSTMFamilyVariant):
    """NP: no peepholes; the essay's "pretty normal LSTM" (Hochreiter & Schmidhuber 1997 with the
    forget gate of Gers et al. 2000). Fused kernel: ``torch.nn.LSTM`` / ``keras.layers.LSTM``."""

    id, name, parts, aliases = "np", "no peepholes (LSTM)", LSTMParts(peepholes=False), ("lstm",)
    reference = "Hochreiter & Schmidhuber 1997; Gers et al. 2000"
    fused_kernel = "lstm"


class CoupledGates(LSTMFamilyVariant):
    """CIFG: f_t = 1 - i_t (as in the GRU). ``forget_bias`` sets b_i = -forget_bias, so f starts at
    σ(forget_bias) like the other cells."""

    id, name, parts, aliases = "cifg", "coupled input and forget gate", LSTMParts(coupled=True), ("coupled",)


class FullGateRecurrence(LSTMFamilyVariant):
    """FGR: each gate also reads the previous activations of all gates (i_{t-1}, f_{t-1}, o_{t-1})."""

    id, name, parts = "fgr", "full gate recurrence", LSTMParts(full_gate_recurrence=True)
