"""What a run needs in memory: an estimate per job, populations split to fit, and a refusal (exit 2) of a
plan whose single trials would not fit, instead of a worker killed by the kernel halfway through a run.

Training keeps, for the backward pass, what every time step computed. A step's size is the variant's
own business (an LSTM computes about 40 H floats per sequence and step, mLSTM's matrix memory makes
it H²), so it is counted, not guessed: ``floats_per_step`` runs the variant's step once in numpy on
arrays that count every float they allocate. A job of M members, batch B, sequence length L and
(padded) hidden size H then needs about

    bytes = M × B × L × floats_per_step(H) × bytes_per_float(framework, variant)

``bytes_per_float`` is measured (``python -m benchmarks.memory_ratios``): the growth of a worker's peak
resident memory from one training step at L = 50 to one at L = 200, per sequence and step, divided by
the counted floats, per framework and variant on the reference machine (docs/variants.md, "Memory"),
times a margin; a plugin variant gets the largest ratio measured. It covers what autograd keeps, the
gradients' temporaries and the allocator's slack.
Evaluation keeps nothing for a backward pass, but runs ``EVAL_BATCH`` sequences at once: one step of
those is the other peak (mLSTM's H × H temporaries for 1024 sequences), and a job needs the larger of
the two (at the longest test length, ``harness.training.lengths``, where that grows with the length).
Each member's parameters are added, with their gradients and Adam's two moments (``PARAMETER_BYTES``,
float32): small beside either at the usual sizes, nearly all of it at a hidden size of tens of
thousands. Above ``PROBE_HIDDEN`` the step is not run at the trial's size (the probe would allocate its
H × H weights in the driver: 71 PiB at H = 10^8); its floats are extrapolated from ``PROBE_HIDDEN / 2``
and ``PROBE_HIDDEN`` with the power of H they grow by there (1 for an LSTM, 2 for mLSTM's matrix memory).

A job that runs its variant's linear form (``harness.scan``; ``--scan``) is counted the same way, from
that form run in numpy on a whole sequence of the job's length (mLSTM's chunkwise form allocates L × L
products per chunk instead of an H × H memory per step). Its evaluation computes every time step at
once too, but keeps nothing for a backward pass: it needs the most floats alive at once while the form
runs, counted as numpy frees them, at ``EVALUATION_BYTES_PER_FLOAT``. Its training's bytes per float
are measured apart (``python -m benchmarks.memory_ratios --scan``).

``fit_to_memory`` halves a population that would not fit in its share of the available memory
(``workers`` jobs run at once) until it does, and refuses a trial that does not fit alone, naming it,
the estimate and what would make it fit.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from functools import cache

import numpy as np

from harness.errors import UsageError
from harness.ops import NUMPY_OPS
from harness.plugins.registry import registry
from harness.training.solo import EVAL_BATCH
from harness.trials.trial import Trial
from harness.variant import Variant

#: bytes of peak resident memory per float a step allocates (per sequence and time step, training), per
#: framework and variant: ``python -m benchmarks.memory_ratios`` (H = 32, populations of 4, batch 32,
#: reference machine, 2026-12-06). Small sizes pay more allocator and per-tensor overhead per float than
#: large ones, so these overstate a large trial's need; ``MARGIN`` covers the measurement's noise.
MEASURED_BYTES_PER_FLOAT: dict[str, dict[str, float]] = {
    "torch": {"v": 1.49, "nig": 1.34, "nfg": 1.42, "nog": 1.33, "niaf": 1.86, "noaf": 1.46, "np": 1.49,
              "cifg": 1.42, "fgr": 2.02, "gru": 1.35, "gru_ra": 2.43, "mut1": 2.08, "mut2": 1.67, "mut3": 1.47,
              "rnn": 1.92, "clockwork": 1.69, "depth_gated": 1.52, "min_gru": 2.58, "min_lstm": 3.01,
              "indrnn": 3.00, "ln_lstm": 2.28, "slstm": 1.99, "mlstm": 4.49, "rg_lru": 3.76},
    "tf": {"v": 12.21, "nig": 12.56, "nfg": 12.78, "nog": 12.74, "niaf": 12.42, "noaf": 12.18, "np": 9.63,
           "cifg": 13.36, "fgr": 11.96, "gru": 13.15, "gru_ra": 13.14, "mut1": 12.96, "mut2": 13.18,
           "mut3": 12.85, "rnn": 17.34, "clockwork": 12.51, "depth_gated": 11.10, "min_gru": 13.48,
           "min_lstm": 14.69, "indrnn": 20.48, "ln_lstm": 13.27, "slstm": 15.07, "mlstm": 7.64, "rg_lru": 15.20},
}  # fmt: skip
#: the same for a population that runs its variant's linear form, per float the form allocates per step
#: (``python -m benchmarks.memory_ratios --scan``, same sizes, 2026-12-06). The elementwise forms' ratios
#: are high because numpy's reference scan is a loop, while the parallel scans keep log2(chunk) rounds
MEASURED_SCAN_BYTES_PER_FLOAT: dict[str, dict[str, float]] = {
    "torch": {"min_gru": 10.80, "min_lstm": 8.18, "mlstm": 2.98, "rg_lru": 5.71},
    "tf": {"min_gru": 16.40, "min_lstm": 11.23, "mlstm": 5.16, "rg_lru": 8.55},
}
MARGIN = 1.25
#: a variant not measured (a plugin): the largest ratio of its framework, so its estimate errs high
BYTES_PER_FLOAT = {fw: max(ratios.values()) for fw, ratios in MEASURED_BYTES_PER_FLOAT.items()}
SCAN_BYTES_PER_FLOAT = {fw: max(ratios.values()) for fw, ratios in MEASURED_SCAN_BYTES_PER_FLOAT.items()}
#: the share of the available memory a run plans to use (the rest: the workers' frameworks, the driver)
USABLE_SHARE = 0.8
#: a scanned evaluation's bytes per float alive at its peak: the count is in float64s, twice what a float32
#: framework holds, which covers the copies numpy does not make (mLSTM, 1024 sequences of T = 1000 at
#: H = 64: PyTorch's peak 1.8-2.0 GiB, TensorFlow's 1.9, estimated 3.4; docs/variants.md, "Memory")
EVALUATION_BYTES_PER_FLOAT = 8.0
PROBE_BATCH, PROBE_INPUT = 4, 2
PROBE_HIDDEN = 1024  # the largest hidden size the step is run at to count its floats (extrapolated above)
PARAMETER_BYTES = 16.0  # per parameter and member: the value, its gradient and Adam's m and v, float32


class _Counting(np.ndarray):
    """An array that adds every array it allocates (not its views) to ``allocated``, in float64s (a
    boolean array counts an eighth); ``live`` is what of it is still referenced, ``peak`` the most that
    was at once (numpy frees an array when its last reference goes, as an eager framework does)."""

    allocated = live = peak = 0.0

    def __array_finalize__(self, obj: object) -> None:
        if not isinstance(self.base, _Counting):  # a ufunc's new result, wrapped; a view's base is counted
            floats = self.nbytes / 8
            _Counting.allocated += floats
            _Counting.live += floats
            _Counting.peak = max(_Counting.peak, _Counting.live)
            weakref.finalize(self, _Counting._freed, floats)

    @staticmethod
    def _freed(floats: float) -> None:
        _Counting.live -= floats

    @staticmethod
    def reset() -> None:
        _Counting.allocated, _Counting.peak = 0.0, _Counting.live

    def __array_function__(self, func, types, args, kwargs):  # noqa: ANN001, ANN204 (numpy's protocol)
        # np.concatenate, np.where, np.split... return plain arrays: wrap them, so that they are counted
        # (in __array_finalize__, once) and what is computed from them is too
        result = super().__array_function__(func, types, args, kwargs)
        if isinstance(result, np.ndarray) and not isinstance(result, _Counting):
            return result.view(_Counting)
        if isinstance(result, (list, tuple)):
            return type(result)(r.view(_Counting) if type(r) is np.ndarray else r for r in result)
        return result


def floats_per_step(variant: Variant, hidden_size: int) -> float:
    """Floats the variant's step allocates per sequence and time step at ``hidden_size`` (numpy, float64;
    the second step is counted, after any constants the step caches); above ``PROBE_HIDDEN``, extrapolated:
    f(H) = f(P) (H / P)^p, p = log2(f(P) / f(P / 2)) kept within [1, 2], P = ``PROBE_HIDDEN``."""
    hparams = tuple(sorted(variant.hparams.items()))
    return _at_size(lambda h: (_floats_per_step(type(variant), hparams, h),), hidden_size)[0]


def _at_size(count: Callable[[int], tuple[float, ...]], hidden_size: int) -> tuple[float, ...]:
    """``count(hidden_size)``, or above ``PROBE_HIDDEN`` each count extrapolated by the power of H it grows
    by from ``PROBE_HIDDEN / 2`` to ``PROBE_HIDDEN``, kept within [1, 2]."""
    if hidden_size <= PROBE_HIDDEN:
        return count(hidden_size)
    top, half = count(PROBE_HIDDEN), count(PROBE_HIDDEN // 2)
    powers = [min(2.0, max(1.0, float(np.log2(t / h)))) if t > 0 and h > 0 else 2.0 for t, h in zip(top, half)]
    return tuple(t * (hidden_size / PROBE_HIDDEN) ** p for t, p in zip(top, powers))


def parameter_count(variant: Variant, input_size: int, hidden_size: int) -> float:
    """The layer's parameters at these sizes, from its declared shapes (nothing allocated)."""
    shapes = variant.parameter_shapes(input_size, hidden_size).values()
    return float(sum(np.prod(shape, dtype=np.float64) for shape in shapes))


@cache
def _floats_per_step(cls: type[Variant], hparams: tuple, hidden_size: int) -> float:
    variant = cls(**dict(hparams))
    p = _probe_params(variant, hidden_size)
    x = np.ones((PROBE_BATCH, PROBE_INPUT)).view(_Counting)
    state = tuple(np.zeros((PROBE_BATCH, s)).view(_Counting) for s in variant.state_sizes(hidden_size))
    variant.step(NUMPY_OPS, p, x, state)
    _Counting.reset()
    variant.step(NUMPY_OPS, p, x, state)
    return _Counting.allocated / PROBE_BATCH


def _probe_params(variant: Variant, hidden_size: int) -> dict[str, np.ndarray]:
    """The declared shapes filled with a constant, as counting arrays: what is allocated does not depend on
    the values, and drawing a large orthogonal matrix per hidden size would cost more than the count."""
    shapes = variant.parameter_shapes(PROBE_INPUT, hidden_size)
    return {k: np.full(shape, 0.1).view(_Counting) for k, shape in shapes.items()}


def floats_of_linear_form(variant: Variant, hidden_size: int, length: int) -> tuple[float, float]:
    """What the variant's linear form allocates at ``hidden_size`` over a sequence of ``length`` steps
    (numpy, float64), per sequence: all of it per time step (training keeps it for the backward pass),
    and the most alive at once over the sequence (evaluation keeps only that)."""
    hparams = tuple(sorted(variant.hparams.items()))
    return _at_size(lambda h: _floats_of_linear_form(type(variant), hparams, h, length), hidden_size)


@cache
def _floats_of_linear_form(cls: type[Variant], hparams: tuple, hidden_size: int, length: int) -> tuple[float, float]:
    from harness.scan import LINEAR_FORMS

    variant = cls(**dict(hparams))
    p = _probe_params(variant, hidden_size)
    xs = np.ones((PROBE_BATCH, length, PROBE_INPUT)).view(_Counting)
    _Counting.reset()
    before = _Counting.live
    hs = LINEAR_FORMS[variant.id](variant, NUMPY_OPS, p, xs)
    del hs
    return _Counting.allocated / (PROBE_BATCH * length), (_Counting.peak - before) / PROBE_BATCH


def job_bytes(job: list[Trial], scan: str = "off") -> float:
    """The estimated peak memory of training ``job`` (one population) in one worker, whose layer runs
    as ``scan`` (a run's ``--scan``) decides."""
    from harness.cell.scan_choice import uses_scan
    from harness.training.grouping import variant_of

    first, variant = job[0], variant_of(job[0])
    settings = [t.settings for t in job]
    hidden = max(s.hidden_size for s in settings)  # members are padded to the largest
    batch = max(s.batch_size for s in settings)
    task = registry().task(first.task)
    length = task.seq_len(first.length)
    longest = task.seq_len(max(first.length * max((*s.test_lengths, 1)) for s in settings))  # the longest test
    evaluated = min(EVAL_BATCH, max(max(s.validation_size, s.test_size) for s in settings))
    if uses_scan(variant, scan, first.framework, first.device, len(job)):
        per_step, _ = floats_of_linear_form(variant, hidden, length)
        _, alive = floats_of_linear_form(variant, hidden, longest)
        per_float = bytes_per_float(first.framework, first.variant, scanned=True)
        evaluation = evaluated * alive * EVALUATION_BYTES_PER_FLOAT  # every step at once, nothing kept
    else:
        per_step = floats_per_step(variant, hidden)
        per_float = bytes_per_float(first.framework, first.variant)
        evaluation = evaluated * per_step * per_float  # one step of the evaluation batch
    weights = PARAMETER_BYTES * parameter_count(variant, task.input_size, hidden)
    return len(job) * (max(batch * length * per_step * per_float, evaluation) + weights)


def bytes_per_float(framework: str, variant_id: str, scanned: bool = False) -> float:
    """The measured ratio of ``variant_id`` in ``framework`` (of its linear form if ``scanned``) times
    ``MARGIN``; for a variant (or framework) never measured, the largest ratio measured, which errs high."""
    table, largest = ((MEASURED_SCAN_BYTES_PER_FLOAT, SCAN_BYTES_PER_FLOAT) if scanned
                      else (MEASURED_BYTES_PER_FLOAT, BYTES_PER_FLOAT))  # fmt: skip
    measured = table.get(framework, {}).get(variant_id)
    if measured is not None:
        return MARGIN * measured
    return largest.get(framework, max(largest.values()))


def available_bytes() -> int:
    """Memory available to new processes now (``psutil``: what the kernel could give without swapping)."""
    import psutil

    return int(psutil.virtual_memory().available)


def fit_to_memory(jobs: list[list[Trial]], workers: int, available: int | None = None,
                  scan: str = "off") -> list[list[Trial]]:  # fmt: skip
    """``jobs`` with every population that would not fit in ``USABLE_SHARE × available / workers`` split
    in halves until it does (their members keep their order); ``UsageError`` for trials that do not fit
    alone. ``scan`` is the run's ``--scan``: a job's path decides what it keeps."""
    budget = USABLE_SHARE * (available_bytes() if available is None else available) / max(1, workers)
    fitted: list[list[Trial]] = []
    too_large: list[tuple[Trial, float]] = []
    todo = list(jobs)
    while todo:
        job = todo.pop(0)
        need = job_bytes(job, scan)
        if need <= budget:
            fitted.append(job)
        elif len(job) == 1:
            too_large.append((job[0], need))
        else:
            half = (len(job) + 1) // 2
            todo[:0] = [job[:half], job[half:]]
    if too_large:
        raise UsageError(_refusal(too_large, budget, workers))
    return fitted


def _refusal(too_large: list[tuple[Trial, float]], budget: float, workers: int) -> str:
    worst = sorted(too_large, key=lambda pair: -pair[1])
    lines = [f"  {t.label()} (hidden_size {t.settings.hidden_size}, batch_size {t.settings.batch_size}): "
             f"about {need / 2**30:.1f} GiB" for t, need in worst[:5]]  # fmt: skip
    more = f"\n  ... and {len(worst) - 5} more" if len(worst) > 5 else ""
    return (f"{len(too_large)} planned trial(s) would not fit in memory even alone: each of the {workers} "
            f"worker(s) may use about {budget / 2**30:.1f} GiB ({USABLE_SHARE:.0%} of the memory available "
            f"now, shared by the workers), and training keeps every time step for the backward pass:\n"
            + "\n".join(lines) + more +
            "\nLower hidden_size (or the suite's parameters budget), batch_size or the length for these cells in "
            "the suite, run fewer --workers, "
            "or leave these variants out (--variants). Nothing was run or stored.")  # fmt: skip
