"""A variant's recurrent layer in TensorFlow / Keras 3: the generic path (its ``step`` inside a Keras RNN
cell, unrolled by ``keras.layers.RNN`` as a ``tf.while_loop``) and the fused library layers
(``keras.layers.LSTM`` / ``GRU`` / ``SimpleRNN``) for the variants that are exactly them.

Both paths are differentiable functions of the contract's parameters:

* generic: the cell's weights *are* the contract's variables (one Keras weight per contract name);
* fused: the contract's variables live beside the Keras layer, and each call packs them into the
  layer's layout and runs the layer with ``Layer.stateless_call`` (Keras' analogue of
  ``torch.func.functional_call``). The layer's own weights are never trained, so gradients, optimiser
  state and clipping are per contract parameter, exactly as on the generic path and in PyTorch.

Keras layouts (row-vector convention, like the contract):

    LSTM       kernel (I, 4H), recurrent_kernel (H, 4H), bias (4H,); gate order i, f, c, o (our z is c)
    GRU        reset_after=True: kernel (I, 3H), recurrent_kernel (H, 3H), bias (2, 3H) = [input row;
               recurrent row]; gate order z, r, h; h_t = z' ⊙ h_{t-1} + (1 - z') ⊙ ĥ, so z' = 1 - z
    SimpleRNN  kernel (I, H), recurrent_kernel (H, H), bias (H,); tanh
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from harness.backends.tf_ops import TF_OPS
from harness.cell.unroll import call_step, check_params, check_step_output
from harness.scan import LINEAR_FORMS
from harness.variant import StepError, Variant

#: batch size of the probe step that checks a step's output shapes when the cell is built
PROBE_BATCH = 2


def safe_name(name: str) -> str:
    """A contract name as a Keras/TF variable name: ``l1.W_z`` -> ``l1__W_z`` (dots and any other
    character outside ``[A-Za-z0-9_]`` become ``__``). Only for display: weights are found by the
    contract name through an explicit dict, never by parsing this string back."""
    return re.sub(r"[^A-Za-z0-9_]", "__", name)


# --- the generic path ----------------------------------------------------------------------------------


class VariantCell(keras.layers.Layer):
    """A Keras RNN cell that runs ``variant.step``: ``call(x_t, [state_{t-1}]) -> (h_t, [state_t])``.

    ``state_size`` is the variant's ``state_sizes(H)`` (every state starts at zero, Keras' default
    initial state), ``output_size`` is H. Its weights are one Keras variable per contract name
    (``self.contract``: contract name -> variable), created at ``build`` from ``params`` (a contract dict
    of numpy arrays) or zeros. ``build`` also runs one probe step and checks its output shapes with
    ``harness.cell.unroll.check_step_output``, so a broken step fails with a ``StepError`` before any trace.
    """

    def __init__(self, variant: Variant, input_size: int, hidden_size: int,
                 params: dict[str, np.ndarray] | None = None, **kwargs: Any) -> None:  # fmt: skip
        super().__init__(**kwargs)
        self.variant, self.input_size, self.hidden_size = variant, int(input_size), int(hidden_size)
        self.state_size = list(variant.state_sizes(self.hidden_size))
        self.output_size = self.hidden_size
        self._initial = params
        self.contract: dict[str, Any] = {}

    def build(self, input_shape: Any) -> None:
        shapes = self.variant.parameter_shapes(self.input_size, self.hidden_size)
        names = {safe_name(n): n for n in shapes}
        if len(names) != len(shapes):
            raise StepError(self.variant.id, f"contract names {sorted(shapes)} collide as variable names")
        if self._initial is not None:
            check_params(self.variant, self._initial, self.input_size, self.hidden_size)
        contract = {}
        for name, shape in shapes.items():
            var = self.add_weight(
                shape=tuple(shape), initializer="zeros", name=safe_name(name), trainable=True
            )
            if self._initial is not None:
                var.assign(np.asarray(self._initial[name]))
            contract[name] = var
        self.contract = contract
        self._initial = None  # the variables hold the values from now on
        self._probe()

    def _params(self) -> dict[str, tf.Tensor]:
        # .value resolves to the substituted tensor inside a stateless_call, else to the tf.Variable
        return {name: var.value for name, var in self.contract.items()}

    def _probe(self) -> None:
        dtype = self.compute_dtype
        x = tf.zeros((PROBE_BATCH, self.input_size), dtype=dtype)
        state = tuple(tf.zeros((PROBE_BATCH, s), dtype=dtype) for s in self.state_size)
        h, new_state = call_step(self.variant, TF_OPS, self._params(), x, state)
        check_step_output(self.variant, h, new_state, PROBE_BATCH, self.hidden_size)

    def call(self, inputs: tf.Tensor, states: Any, training: bool = False) -> tuple[tf.Tensor, list]:
        states = tuple(states) if isinstance(states, (list, tuple)) else (states,)
        h, new_state = call_step(self.variant, TF_OPS, self._params(), inputs, states)
        return h, list(new_state)


def generic_layer(variant: Variant, input_size: int, hidden_size: int, params: dict[str, np.ndarray] | None,
                  dtype: str = "float32") -> keras.layers.RNN:  # fmt: skip
    """``keras.layers.RNN(VariantCell, return_sequences=True)``, built: (B, L, I) -> (B, L, H)."""
    cell = VariantCell(variant, input_size, hidden_size, params, dtype=dtype, name=f"{variant.id}_cell")
    layer = keras.layers.RNN(cell, return_sequences=True, dtype=dtype, name=f"{variant.id}_rnn")
    layer.build((None, None, int(input_size)))
    return layer


# --- the fused path: conversions between the contract and the Keras layouts ---------------------------

LSTM_ORDER = ("i", "f", "z", "o")  # Keras' i, f, c, o; our block input z is Keras' c


def pack_lstm(p: dict[str, Any]) -> dict[str, tf.Tensor]:
    """``np`` -> ``keras.layers.LSTM`` weights (gate order i, f, c, o; our z is Keras' c)."""
    return {
        "kernel": tf.concat([p[f"W_{g}"] for g in LSTM_ORDER], axis=1),
        "recurrent_kernel": tf.concat([p[f"R_{g}"] for g in LSTM_ORDER], axis=1),
        "bias": tf.concat([p[f"b_{g}"] for g in LSTM_ORDER], axis=0),
    }


def unpack_lstm(w: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``keras.layers.LSTM`` weights -> the ``np`` contract (the inverse of ``pack_lstm``)."""
    out: dict[str, np.ndarray] = {}
    for key, letter in (("kernel", "W"), ("recurrent_kernel", "R"), ("bias", "b")):
        for g, part in zip(LSTM_ORDER, np.split(np.asarray(w[key]), 4, axis=-1)):
            out[f"{letter}_{g}"] = part
    return out


def pack_gru(p: dict[str, Any]) -> dict[str, tf.Tensor]:
    """``gru_ra`` -> ``keras.layers.GRU(reset_after=True)`` weights (gate order z, r, h).

    Keras computes h_t = z' ⊙ h_{t-1} + (1 - z') ⊙ ĥ, we h_t = (1 - z) ⊙ h_{t-1} + z ⊙ ĥ, so z' = 1 - z,
    which σ(-a) = 1 - σ(a) gives by negating z's weights and bias. Keras' bias is (2, 3H): an input
    row and a recurrent row. Only the recurrent row's h part is a parameter of its own (inside the
    reset: ĥ = tanh(x W_h + b_h + r ⊙ (h R_h + b_rh)), so it is our ``b_rh``); for z and r the two rows
    are only ever added, so Keras carries a redundant bias there (the sum is what matters). We pack our
    biases into the input row and 0 into the recurrent row's z and r parts; ``unpack_gru`` sums the
    rows, so a layer whose recurrent row was trained (by Keras itself) still converts exactly. Our
    fused path trains the contract parameters, never Keras' copy, so the redundancy is never trained.
    """
    b_z = p["b_z"]
    zero = tf.zeros_like(b_z)
    return {
        "kernel": tf.concat([-p["W_z"], p["W_r"], p["W_h"]], axis=1),
        "recurrent_kernel": tf.concat([-p["R_z"], p["R_r"], p["R_h"]], axis=1),
        "bias": tf.stack(
            [tf.concat([-b_z, p["b_r"], p["b_h"]], axis=0), tf.concat([zero, zero, p["b_rh"]], axis=0)]
        ),
    }


def unpack_gru(w: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``keras.layers.GRU(reset_after=True)`` weights -> the ``gru_ra`` contract (inverse of ``pack_gru``;
    the redundant z and r biases of the two rows are summed)."""
    W_z, W_r, W_h = np.split(np.asarray(w["kernel"]), 3, axis=-1)
    R_z, R_r, R_h = np.split(np.asarray(w["recurrent_kernel"]), 3, axis=-1)
    (bi_z, bi_r, bi_h), (br_z, br_r, br_h) = (np.split(row, 3) for row in np.asarray(w["bias"]))
    return {
        "W_z": -W_z, "W_r": W_r, "W_h": W_h, "R_z": -R_z, "R_r": R_r, "R_h": R_h,
        "b_z": -(bi_z + br_z), "b_r": bi_r + br_r, "b_h": bi_h, "b_rh": br_h,
    }  # fmt: skip


def pack_rnn(p: dict[str, Any]) -> dict[str, tf.Tensor]:
    """``rnn`` -> ``keras.layers.SimpleRNN`` weights (tanh): the same matrices."""
    return {
        name: tf.convert_to_tensor(p[key])
        for name, key in (("kernel", "W"), ("recurrent_kernel", "R"), ("bias", "b"))
    }


def unpack_rnn(w: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``keras.layers.SimpleRNN`` weights -> the ``rnn`` contract."""
    return {"W": np.asarray(w["kernel"]), "R": np.asarray(w["recurrent_kernel"]), "b": np.asarray(w["bias"])}


def _lstm(hidden_size: int, **kw: Any) -> keras.layers.Layer:
    return keras.layers.LSTM(hidden_size, activation="tanh", recurrent_activation="sigmoid", **kw)


def _gru(hidden_size: int, **kw: Any) -> keras.layers.Layer:
    return keras.layers.GRU(
        hidden_size, activation="tanh", recurrent_activation="sigmoid", reset_after=True, **kw
    )


def _rnn(hidden_size: int, **kw: Any) -> keras.layers.Layer:
    kw.pop("use_cudnn", None)  # SimpleRNN has no cuDNN kernel
    return keras.layers.SimpleRNN(hidden_size, activation="tanh", **kw)


#: fused_kernel -> (Keras layer factory, pack, unpack)
KERNELS: dict[str, tuple[Callable[..., keras.layers.Layer], Callable, Callable]] = {
    "lstm": (_lstm, pack_lstm, unpack_lstm),
    "gru": (_gru, pack_gru, unpack_gru),
    "rnn": (_rnn, pack_rnn, unpack_rnn),
}
LAYER_WEIGHTS = ("kernel", "recurrent_kernel", "bias")


def keras_layer(kernel: str, input_size: int, hidden_size: int, dtype: str = "float32",
                use_cudnn: bool | str = "auto") -> keras.layers.Layer:  # fmt: skip
    """The Keras layer of a fused kernel, built, ``return_sequences=True``; weights are Keras' defaults."""
    make = KERNELS[kernel][0]
    layer = make(int(hidden_size), return_sequences=True, dtype=dtype, use_cudnn=use_cudnn)
    layer.build((None, None, int(input_size)))
    return layer


def layer_weights(layer: keras.layers.Layer) -> dict[str, Any]:
    """The Keras layer's weight variables by role (``kernel``, ``recurrent_kernel``, ``bias``)."""
    return {name: getattr(layer.cell, name) for name in LAYER_WEIGHTS}


def to_layer_weights(kernel: str, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The contract dict in the Keras layer's layout, as numpy (e.g. for ``layer.set_weights``)."""
    return {k: v.numpy() for k, v in KERNELS[kernel][1](params).items()}


def from_layer_weights(kernel: str, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The Keras layer's weights (by role) as the contract dict."""
    return KERNELS[kernel][2](weights)


def load_layer(layer: keras.layers.Layer, kernel: str, params: dict[str, np.ndarray]) -> None:
    """Set a fused Keras layer's weights from a contract dict (exactly: the packing only moves and
    negates numbers)."""
    packed = to_layer_weights(kernel, params)
    for name, var in layer_weights(layer).items():
        var.assign(packed[name])


def export_layer(layer: keras.layers.Layer, kernel: str) -> dict[str, np.ndarray]:
    """A fused Keras layer's current weights as the contract dict."""
    return from_layer_weights(kernel, {k: np.asarray(v.numpy()) for k, v in layer_weights(layer).items()})


class FusedKernel:
    """A Keras recurrent layer used as a pure function of the contract parameters (``stateless_call``)."""

    def __init__(self, kernel: str, input_size: int, hidden_size: int, dtype: str = "float32",
                 use_cudnn: bool | str = "auto") -> None:  # fmt: skip
        self.kernel = kernel
        self.pack = KERNELS[kernel][1]
        self.layer = keras_layer(kernel, input_size, hidden_size, dtype, use_cudnn)
        roles = {id(v): name for name, v in layer_weights(self.layer).items()}
        # stateless_call takes values in the order of layer.trainable_variables
        self.order = [roles[id(v)] for v in self.layer.trainable_variables]

    def __call__(self, params: dict[str, Any], inputs: tf.Tensor) -> tf.Tensor:
        packed = self.pack(params)
        # the non-trainable state (a dropout seed, unused here) passes through unchanged
        fixed = [v.value for v in self.layer.non_trainable_variables]
        outputs, _ = self.layer.stateless_call([packed[name] for name in self.order], fixed, inputs)
        return outputs


# --- one layer, either path ----------------------------------------------------------------------------


class RecurrentLayer:
    """A variant's layer with its contract parameters as variables: (B, L, I) -> (B, L, H).

    ``path`` is ``"fused"`` when asked for and the variant has a Keras kernel, else ``"scan"`` when asked
    for and the variant has a linear form (``harness.scan``), else ``"generic"``. ``variables`` maps every
    contract name to the variable the optimiser updates: the generic cell's own weights, or (fused, scan)
    variables beside the layer, packed into the kernel's layout at each call (fused).
    """

    def __init__(self, variant: Variant, input_size: int, hidden_size: int, params: dict[str, np.ndarray],
                 fused: bool, dtype: str = "float32", use_cudnn: bool | str = "auto",
                 scan: bool = False) -> None:  # fmt: skip
        self.variant = variant
        self.path = "fused" if fused and variant.fused_kernel in KERNELS else "generic"
        if self.path == "generic" and scan and variant.id in LINEAR_FORMS:
            self.path = "scan"
        if self.path == "scan":
            check_params(variant, params, input_size, hidden_size)
            self.kernel, self.layer = None, None
            self.variables = {
                name: keras.Variable(np.asarray(value), dtype=dtype, name=safe_name(name))
                for name, value in params.items()
            }  # fmt: skip
        elif self.path == "fused":
            check_params(variant, params, input_size, hidden_size)
            self.kernel: FusedKernel | None = FusedKernel(
                variant.fused_kernel, input_size, hidden_size, dtype, use_cudnn
            )
            self.layer = self.kernel.layer
            self.variables = {
                name: keras.Variable(np.asarray(value), dtype=dtype, name=safe_name(name))
                for name, value in params.items()
            }  # fmt: skip
        else:
            self.kernel = None
            self.layer = generic_layer(variant, input_size, hidden_size, params, dtype)
            self.variables = dict(self.layer.cell.contract)

    def __call__(self, inputs: tf.Tensor) -> tf.Tensor:
        if self.path == "scan":
            params = {name: var.value for name, var in self.variables.items()}
            return LINEAR_FORMS[self.variant.id](self.variant, TF_OPS, params, inputs)
        if self.kernel is not None:
            return self.kernel({name: var.value for name, var in self.variables.items()}, inputs)
        return self.layer(inputs)
