"""The run's preflight: every variant's contract, checked before a run touches the store.

``contract_problems`` finds, with numpy alone, parameters that break what ``parameter_shapes`` declares
(names, shapes, float32, finite) and a step that fails or returns non-finite outputs;
``autograd_problems`` runs the step under PyTorch autograd (where PyTorch is installed), which catches a
step that escapes the ops namespace. ``preflight`` runs both as a ``PreflightJob`` in a worker process of
no framework, so a step that exits, crashes or hangs costs the check, not the runner; ``rnn-bench check``
reuses the same two checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from harness.backends import installed_frameworks
from harness.cell.unroll import check_params, unroll_numpy
from harness.errors import UsageError
from harness.plugins.registry import registry
from harness.variant import StepError, Variant
from harness.workers.job import JobContext

I, B, L = 3, 2, 6  # input size, batch and length of every contract case: small, and enough to show a fault


def small_hidden_size(variant: Variant) -> int:
    """A small H the variant accepts (clockwork wants H divisible by its modules)."""
    for h in (4, 6, 8, 12, 16, 24, 32, 64):
        try:
            variant.parameter_shapes(I, h)
            return h
        except Exception:
            continue
    raise StepError(variant.id, "parameter_shapes accepts no hidden size among 4..64")


def contract_problems(variant: Variant, hidden_size: int) -> list[str]:
    """Everything wrong with the variant's contract, found with numpy alone (also the runner's preflight)."""
    try:
        params = variant.init_params(I, hidden_size, 0, lag=L)
    except Exception as e:  # e.g. a parameter name no default initialiser knows
        return [f"init_params raised {type(e).__name__}: {e}"]
    problems = []
    try:
        check_params(variant, params, I, hidden_size)
    except StepError as e:
        problems.append(f"init_params: {e.message}")
    bad_dtype = sorted(k for k, v in params.items() if np.asarray(v).dtype != np.float32)
    if bad_dtype:
        problems.append(f"init_params returns non-float32 arrays for {bad_dtype} (the contract is float32)")
    not_finite = sorted(k for k, v in params.items() if not np.all(np.isfinite(v)))
    if not_finite:
        problems.append(f"init_params returns non-finite values in {not_finite}")
    if not problems:
        x = np.random.default_rng(0).normal(size=(B, L, I)).astype(np.float32)
        try:
            out = unroll_numpy(variant, params, x)
            if not np.all(np.isfinite(out)):
                problems.append("the step returns non-finite outputs at the initial parameters")
        except StepError as e:
            problems.append(e.message)
        except Exception as e:  # the step itself is broken: say so with the type and text
            problems.append(f"the step raised {type(e).__name__}: {e}")
    return problems


def autograd_problems(variant: Variant, hidden_size: int) -> list[str]:
    """The step under PyTorch autograd (when PyTorch is installed): catches steps that escape the ops
    namespace (``np.tanh`` on a tensor works in numpy, not in a framework)."""
    if "torch" not in installed_frameworks():
        return []
    from harness.backends import torch_backend

    params = variant.init_params(I, hidden_size, 0, lag=L)
    rng = np.random.default_rng(0)
    x, upstream = rng.normal(size=(B, L, I)), rng.normal(size=(B, L, hidden_size))
    try:
        torch_backend.cell_gradients(variant, {k: v.astype(np.float64) for k, v in params.items()}, x, upstream)
    except StepError as e:
        return [e.message]
    except Exception as e:
        return [f"the step fails under PyTorch autograd: {type(e).__name__}: {e} (use only ops.* and + - * /)"]
    return []


def preflight_problems(variant_ids: list[str], variant_hparams: dict[str, dict]) -> dict[str, list[str]]:
    """Worker side of ``preflight`` (a ``PreflightJob``): each variant's contract problems (empty when fine)."""
    reg = registry()
    out = {}
    for vid in variant_ids:
        try:
            variant = reg.variant(vid, **variant_hparams.get(vid, {}))
            hidden = small_hidden_size(variant)
            out[vid] = contract_problems(variant, hidden) or autograd_problems(variant, hidden)
        except Exception as e:
            out[vid] = [f"{type(e).__name__}: {e}"]
    return out


def preflight(variant_ids: list[str], variant_hparams: dict[str, dict] | None = None, timeout: float = 120) -> None:
    """Refuse to run variants whose contract is broken, before any work or store write.

    The check runs the variants' code, so it runs in a worker process (a ``PreflightJob``): a step that
    exits, crashes or hangs costs the check, not the runner."""
    from harness.workers.worker import WorkerError, WorkerProcess

    reg = registry()
    worker = WorkerProcess(None)
    try:
        problems = worker.call(PreflightJob(tuple(variant_ids), variant_hparams or {}), timeout=timeout)
    except WorkerError as e:
        raise UsageError(
            f"checking the contracts of {', '.join(variant_ids)} failed ({e}): does a step exit, crash or loop "
            "forever? Run 'rnn-bench check VARIANT' on each to find the one at fault"
        ) from e
    finally:
        worker.stop(kill=True)  # a hung child must not outlive the check
    if "error" in problems and isinstance(problems["error"], str):
        raise UsageError(f"checking the contracts of {', '.join(variant_ids)} failed: {problems['error']}")
    for vid, found in problems.items():
        if found:
            source = reg.variant_class(vid).source_file
            raise UsageError(
                f"variant {vid!r} ({source}) breaks its contract: {'; '.join(found)}. "
                f"Run 'rnn-bench check {vid}' for details."
            )


@dataclass(frozen=True)
class PreflightJob:
    """The contract problems of each variant (``contract_problems``, then under PyTorch autograd where
    PyTorch is installed): ``{variant_id: [problem, ...]}``. Runs the variants' own code, so a step that
    exits, crashes or hangs costs the worker's process, not the driver."""

    variant_ids: tuple[str, ...]
    variant_hparams: dict = field(default_factory=dict)
    framework: None = None

    def run(self, context: JobContext) -> dict[str, list[str]]:
        return preflight_problems(list(self.variant_ids), self.variant_hparams)
