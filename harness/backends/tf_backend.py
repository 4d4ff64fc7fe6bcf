"""The TensorFlow backend (Keras 3 layers, ``tf.function`` training step): builds a trial's model, runs
the training step, owns device, threads and determinism. Same interface as ``torch_backend``; the
protocol itself (data, evaluation, early stopping) is ``harness.training.solo``.

Optimisers are written here, not taken from ``keras.optimizers``, because Keras' Adam is not torch's:
Keras applies the bias corrections as ``lr·sqrt(1-β2^t)/(1-β1^t) · m / (sqrt(v) + ε)`` (the paper's "ε̂"
form), which equals torch's ``lr/(1-β1^t) · m / (sqrt(v)/sqrt(1-β2^t) + ε)`` only with ε scaled by
``sqrt(1-β2^t)``, a step-dependent ε that Keras cannot express. Both optimisers below are torch's
formulas term for term (``torch.optim.Adam`` / ``torch.optim.SGD`` with dampening 0):

    Adam (β1 0.9, β2 0.999, ε 1e-8):  m ← m + (1-β1)(g - m);  v ← β2 v + (1-β2) g²
                                      θ ← θ - lr/(1-β1^t) · m / (sqrt(v)/sqrt(1-β2^t) + ε)
    SGD, momentum μ > 0:              b ← μ b + g  (b = g at the first step);  d = g + μ b (Nesterov) or b
                                      θ ← θ - lr d;   with μ = 0: θ ← θ - lr g

(Keras' SGD, m ← μ m - lr g; θ ← θ + μ m - lr g for Nesterov, is the same update with m = -lr·b when
lr is constant, but rounds differently; writing torch's form keeps the two backends' arithmetic alike.)
Gradients are first scaled by ``min(1, clip_norm / ‖g‖)``, ‖g‖ the global norm over all parameters,
skipped when that factor is not finite (‖g‖ = 0 or NaN) and when ``clip_norm`` is 0: the formula of
``torch_backend.clip_by_global_norm``.
"""

from __future__ import annotations

import logging
import os

# Quiet TensorFlow's C++ start-up logging; it reads this variable when it is first imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Keras 3 picks its backend at import; this module drives Keras layers with TensorFlow tensors.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from harness.backends.tf_cell import RecurrentLayer  # noqa: E402
from harness.cell.model import split_params  # noqa: E402
from harness.errors import UsageError  # noqa: E402
from harness.task import Task  # noqa: E402
from harness.trials.protocol import Settings  # noqa: E402
from harness.variant import Variant  # noqa: E402

FRAMEWORK = "tf"

if keras.backend.backend() != "tensorflow":
    raise UsageError(
        f"the TensorFlow backend needs Keras on its TensorFlow backend, but KERAS_BACKEND is "
        f"{keras.backend.backend()!r}; unset it or set KERAS_BACKEND=tensorflow"
    )


def setup(device: str = "cpu", threads: int = 1) -> None:
    """One intra-op and one inter-op thread per worker process (parallelism comes from processes),
    deterministic kernels, GPUs hidden for ``device="cpu"``.

    Must run before the first TensorFlow op of the process: TensorFlow fixes threads and visible
    devices when its runtime starts. Calling it again with the same settings is harmless.
    """
    check_device(device)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(1)
        if device == "cpu":
            tf.config.set_visible_devices([], "GPU")
    except RuntimeError as e:
        raise RuntimeError(
            f"tf_backend.setup({device!r}, threads={threads}) came after TensorFlow had started with other "
            f"settings ({e}); call it before any TensorFlow op runs in this process"
        ) from e
    if device == "cuda":
        resolve_device("cuda")
        for gpu in tf.config.list_physical_devices("GPU"):
            # several workers may share a GPU (--workers-per-gpu): each takes what it needs, not all of it
            tf.config.experimental.set_memory_growth(gpu, True)
    tf.config.experimental.enable_op_determinism()
    logger = tf.get_logger()
    if not any(isinstance(f, _OneTracePerModel) for f in logger.filters):
        logger.addFilter(_OneTracePerModel())


class _OneTracePerModel(logging.Filter):
    """Drops TensorFlow's "triggered tf.function retracing" warning. Each model traces its own
    functions once (they capture its variables), and TF counts those traces across models because they
    share their code; a worker that runs many trials would print it for every trial."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


def check_device(device: str) -> str:
    if device not in ("cpu", "cuda"):
        raise UsageError(f"unknown device {device!r}; valid: cpu, cuda")
    return device


def resolve_device(device: str) -> str:
    """The TensorFlow device string for ``device`` ('cpu' or 'cuda'), or ``UsageError``."""
    if check_device(device) == "cuda":
        if not tf.config.get_visible_devices("GPU"):
            raise UsageError(
                "device 'cuda' was asked for but TensorFlow sees no GPU here (tensorflow-cpu, no CUDA "
                "build, or GPUs hidden by setup('cpu')); use --device cpu or install a GPU build of "
                "tensorflow (README, 'GPUs')"
            )
        return "/GPU:0"
    return "/CPU:0"


def environment() -> dict[str, Any]:
    env: dict[str, Any] = {"tensorflow": tf.__version__, "keras": keras.__version__}
    gpus = tf.config.get_visible_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        env["gpu"] = details.get("device_name", gpus[0].name)
        env["gpus"] = len(gpus)
        build = tf.sysconfig.get_build_info()
        if "cuda_version" in build:
            env["cuda"] = build["cuda_version"]
    return env


def matmul(members: int, m: int, k: int, n: int, device: str = "cpu") -> Callable[[int], Any]:
    """``products(r)``: ``r`` products of ``members`` (m×k)·(k×n) float32 matrices (batched when ``members`` >
    1) in one traced loop, as a training step's products run inside its traced graph, then one wait for
    the device: what ``harness.diagnostics.roofline`` times. TensorFlow's default float32 (TF32 on Ampere
    and later GPUs)."""
    with tf.device(resolve_device(device)):
        gen = tf.random.Generator.from_seed(0)
        a, b = gen.normal((members, m, k)), gen.normal((members, k, n))

    @tf.function(reduce_retracing=True)
    def repeated(count: tf.Tensor) -> tf.Tensor:
        # each product feeds the loop's carried value, so the graph cannot drop it; one call per batch, since a
        # call per product would time tf.function's call overhead (about 0.25 ms) instead of a small product
        def body(i: tf.Tensor, acc: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            return i + 1, acc + tf.linalg.matmul(a, b)[0, 0, 0]

        return tf.while_loop(lambda i, acc: i < count, body, (tf.constant(0), tf.constant(0.0)))[1]

    def products(repeats: int) -> None:
        with tf.device(resolve_device(device)):
            repeated(tf.constant(repeats)).numpy()  # a scalar read back: waits for the last product

    return products


def masked_loss(task: Task, outputs: tf.Tensor, targets: tf.Tensor, axis: tuple[int, ...]) -> tf.Tensor:
    """``loss_at = "mask"`` (``harness.task``): outputs (..., L, O), targets (..., L, O + 1); the mean of
    the per-step loss over the steps the mask reads, reduced over ``axis`` (as ``torch_backend``'s)."""
    values, mask = targets[..., :-1], targets[..., -1]
    if task.loss == "cross_entropy":  # one-hot classes: −Σ_o y_o log softmax(outputs)_o
        per_step = tf.nn.softmax_cross_entropy_with_logits(labels=values, logits=outputs)
    elif task.loss == "mse":
        per_step = tf.reduce_mean(tf.square(outputs - values), axis=-1)
    else:
        per_step = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=values, logits=outputs), axis=-1)
    count = tf.maximum(tf.reduce_sum(mask, axis=axis), tf.ones([], mask.dtype))
    return tf.reduce_sum(per_step * mask, axis=axis) / count


def task_loss(task: Task, outputs: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    """The loss of ``harness.cell.model``'s docstring, read where the task says (as ``torch_backend``'s)."""
    if task.loss_at == "mask":
        return masked_loss(task, outputs, targets, (0, 1))
    if task.loss == "mse":
        return tf.reduce_mean(tf.square(outputs[:, -1, 0] - targets))
    if task.loss_at == "last":
        logits, labels = outputs[:, -1, :], targets
    else:
        logits, labels = tf.reshape(outputs, [-1, tf.shape(outputs)[-1]]), tf.reshape(targets, [-1])
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))


def clip_by_global_norm(grads: list[tf.Tensor | None], clip_norm: float) -> list[tf.Tensor | None]:
    """g ← g · min(1, clip / ‖g‖), ‖g‖ over all gradients together; clip 0 disables it."""
    present = [g for g in grads if g is not None]
    if clip_norm <= 0 or not present:
        return grads
    norm = tf.norm(tf.stack([tf.norm(g) for g in present]))
    scale = tf.minimum(tf.constant(clip_norm, norm.dtype) / norm, tf.ones_like(norm))
    scale = tf.where(tf.math.is_finite(scale), scale, tf.ones_like(scale))
    return [None if g is None else g * scale for g in grads]


class Adam:
    """torch.optim.Adam's update (see the module docstring), one (m, v) pair per variable."""

    def __init__(self, variables: list[tf.Variable], learning_rate: float, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-8) -> None:  # fmt: skip
        self.lr, self.beta_1, self.beta_2, self.epsilon = float(learning_rate), beta_1, beta_2, epsilon
        self.m = [tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False) for v in variables]
        self.v = [tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False) for v in variables]
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False)

    def apply(self, grads: list[tf.Tensor | None], variables: list[tf.Variable]) -> None:
        t = tf.cast(self.step.assign_add(1), tf.float64)
        # torch computes the bias corrections in double precision, then rounds them into the update
        correction_1 = 1.0 - tf.pow(tf.constant(self.beta_1, tf.float64), t)
        correction_2 = 1.0 - tf.pow(tf.constant(self.beta_2, tf.float64), t)
        for g, var, m, v in zip(grads, variables, self.m, self.v):
            if g is None:
                continue
            dtype = var.dtype
            m.assign(m + (1.0 - self.beta_1) * (g - m))
            v.assign(v * self.beta_2 + (1.0 - self.beta_2) * (g * g))
            denom = tf.sqrt(v) / tf.cast(tf.sqrt(correction_2), dtype) + tf.constant(self.epsilon, dtype)
            var.assign_sub(tf.cast(self.lr / correction_1, dtype) * m / denom)


class SGD:
    """torch.optim.SGD's update with dampening 0 (see the module docstring)."""

    def __init__(self, variables: list[tf.Variable], learning_rate: float, momentum: float = 0.0,
                 nesterov: bool = False) -> None:  # fmt: skip
        self.lr, self.momentum, self.nesterov = float(learning_rate), float(momentum), bool(nesterov)
        self.buffers = [tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False) for v in variables]

    def apply(self, grads: list[tf.Tensor | None], variables: list[tf.Variable]) -> None:
        for g, var, b in zip(grads, variables, self.buffers):
            if g is None:
                continue
            if self.momentum == 0:
                var.assign_sub(self.lr * g)
                continue
            # b starts at 0, so μ·0 + g is torch's first-step b = g exactly
            b.assign(b * self.momentum + g)
            step = g + self.momentum * b if self.nesterov else b
            var.assign_sub(self.lr * step)


def make_optimizer(settings: Settings, variables: list[tf.Variable]) -> Adam | SGD:
    if settings.optimizer == "adam":
        return Adam(variables, settings.learning_rate, epsilon=1e-8)
    return SGD(variables, settings.learning_rate, *settings.sgd_momentum())


class TfModel:
    """A trial's model in TensorFlow: contract parameters as variables, layer + readout, optimiser.

    ``train_step`` runs under ``tf.function`` (traced once per model for the trial's batch shape;
    ``jit_compile=settings.xla``). With XLA the fused layers do not use cuDNN (its ops are not XLA
    ops); otherwise Keras decides (cuDNN on a GPU for LSTM and GRU).
    """

    def __init__(self, variant: Variant, task: Task, settings: Settings, params: dict[str, np.ndarray],
                 device: str = "cpu", dtype: str = "float32", scan: bool = False) -> None:  # fmt: skip
        self.variant, self.task, self.settings, self.dtype = variant, task, settings, dtype
        self.device = resolve_device(device)
        self.hidden_size = settings.hidden_size
        xla = settings.xla
        layer_params, readout = split_params(params)
        with tf.device(self.device):
            self.layer = RecurrentLayer(
                variant, task.input_size, self.hidden_size, layer_params,
                fused=settings.fused, dtype=dtype, use_cudnn=False if xla else "auto", scan=scan,
            )  # fmt: skip
            self.readout = {
                k: tf.Variable(np.asarray(v), dtype=dtype, name=k.replace(".", "_"))
                for k, v in readout.items()
            }
            self.variables: dict[str, Any] = {**self.layer.variables, **self.readout}
            self._list = list(self.variables.values())
            self.optimizer = make_optimizer(settings, self._list)
        self.path = self.layer.path
        # under uniform training lengths every length would trace again: the while loop of steps is traced
        # once for any length after the first few; a linear form is traced per length, since its form for
        # an unknown length is far slower (mLSTM's stepwise scan: 3.7 s a step against 0.01 s at H = 249)
        dynamic = settings.train_lengths == "uniform" and self.layer.path != "scan"
        self._train = tf.function(self._train_step, jit_compile=xla, reduce_retracing=dynamic)
        self._predictors: dict[int | None, Any] = {}  # the length traced for (None: any) -> traced forward

    def forward(self, inputs: tf.Tensor) -> tf.Tensor:
        h = self.layer(inputs)
        return tf.matmul(h, self.readout["readout.W"]) + self.readout["readout.b"]

    def _train_step(self, inputs: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = task_loss(self.task, self.forward(inputs), targets)
        grads = tape.gradient(loss, self._list)
        grads = clip_by_global_norm(grads, self.settings.clip_norm)
        self.optimizer.apply(grads, self._list)
        return loss

    def _tensor(self, a: np.ndarray) -> tf.Tensor:
        a = np.asarray(a)
        return tf.convert_to_tensor(a, dtype=self.dtype if a.dtype.kind == "f" else tf.int64)

    def train_step(self, inputs: np.ndarray, targets: np.ndarray) -> float:
        with tf.device(self.device):
            return float(self._train(self._tensor(inputs), self._tensor(targets)))

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        with tf.device(self.device):
            return self._predictor(np.shape(inputs)[1])(self._tensor(inputs)).numpy()

    def _predictor(self, length: int) -> Any:
        """The forward traced once for every batch size and length; for a linear form, once per length,
        since its chunks are cut where the length is known (an unknown one takes its slower, larger form:
        ``variants/xlstm_scan.py``)."""
        key = length if self.path == "scan" else None
        if key not in self._predictors:
            spec = tf.TensorSpec([None, key, self.task.input_size], tf.as_dtype(self.dtype))
            self._predictors[key] = tf.function(self.forward, input_signature=[spec])
        return self._predictors[key]

    def get_params(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v.numpy(), dtype=np.float32) for k, v in self.variables.items()}

    def set_params(self, params: dict[str, np.ndarray]) -> None:
        missing = sorted(set(self.variables) ^ set(params))
        if missing:
            raise ValueError(f"parameter names differ from the model's: {missing}")
        for k, v in params.items():
            self.variables[k].assign(np.asarray(v, dtype=self.dtype))


def build_model(variant: Variant, task: Task, settings: Settings, params: dict[str, np.ndarray],
                device: str = "cpu", scan: bool = False, dtype: str = "float32") -> TfModel:  # fmt: skip
    """``scan``: run the variant's linear form where it has one (``harness.cell.scan_choice`` decides);
    ``dtype``: ``float32`` (every trial) or ``float64`` (a reference for rounding, ``rnn-bench check``)."""
    return TfModel(variant, task, settings, params, device, dtype=dtype, scan=scan)


def _dtype_of(inputs: np.ndarray) -> str:
    return "float64" if np.asarray(inputs).dtype == np.float64 else "float32"


def run_cell(variant: Variant, params: dict[str, np.ndarray], inputs: np.ndarray, fused: bool = False,
             device: str = "cpu", scan: bool = False) -> np.ndarray:  # fmt: skip
    """The variant's hidden outputs (B, L, H) for ``inputs`` (B, L, I), in the inputs' float precision
    (float64 inputs build the layer in float64; ``scan``: its linear form, where it has one)."""
    from harness.cell.contract import sizes_of

    dtype = _dtype_of(inputs)
    input_size, hidden = sizes_of(variant, params)
    with tf.device(resolve_device(device)):
        layer = RecurrentLayer(variant, input_size, hidden, params, fused, dtype, scan=scan)
        return layer(tf.convert_to_tensor(np.asarray(inputs), dtype=dtype)).numpy()


def cell_gradients(variant: Variant, params: dict[str, np.ndarray], inputs: np.ndarray, upstream: np.ndarray,
                   fused: bool = False,
                   scan: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:  # fmt: skip
    """Outputs (B, L, H), and the gradients of the fixed loss ``sum(outputs * upstream)`` with respect to
    every parameter and to the inputs; in the inputs' float precision. For parity checks (``scan``: of
    the linear form against the loop)."""
    from harness.cell.contract import sizes_of

    dtype = _dtype_of(inputs)
    input_size, hidden = sizes_of(variant, params)
    layer = RecurrentLayer(variant, input_size, hidden, params, fused, dtype, scan=scan)
    x = tf.convert_to_tensor(np.asarray(inputs), dtype=dtype)
    names = list(layer.variables)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = layer(x)
        loss = tf.reduce_sum(out * tf.convert_to_tensor(np.asarray(upstream), dtype=dtype))
    grads = tape.gradient(loss, [*(layer.variables[n] for n in names), x])
    as_np = [
        np.zeros(np.shape(params[n] if n in params else inputs), dtype=dtype) if g is None else g.numpy()
        for n, g in zip([*names, "inputs"], grads)
    ]  # fmt: skip
    return out.numpy(), dict(zip(names, as_np[:-1])), as_np[-1]
