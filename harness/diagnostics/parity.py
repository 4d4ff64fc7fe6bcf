"""Cross-framework parity: the same variant, parameters and data give the same numbers in PyTorch and
TensorFlow (and on each framework's fused and generic paths).

TensorFlow and PyTorch never share a process (docs/architecture.md): each framework's computation runs in a
worker process of its own (``harness.workers.worker``), which imports only that framework's backend; the parent
draws the inputs with numpy, sends them as a ``ParityJob``, and compares the numpy results. Importing
TensorFlow costs seconds, so ``harness.workers.worker.Workers`` keeps one process per framework for as many calls
as you like, and the ``*_many`` functions batch several variants into one call:

    with Workers() as workers:
        report = compare_frameworks_many(["v", "np", "gru"], workers=workers)
        curves = compare_training("np", workers=workers)

What is compared:

* ``compare_frameworks_many`` / ``compare_fused_many``: the layer's outputs (B, L, H) and the gradients of
  ``sum(outputs * upstream)`` (random upstream) with respect to every contract parameter and to the
  inputs (``cell_gradients`` of each backend), at random parameters: the variant's initialiser, then
  every bias and peephole redrawn from N(0, 0.5²) so that each term of the step matters;
* ``compare_training``: the per-step training losses of one trial run by ``harness.training.solo.train`` in
  both frameworks from the same seed (``eval_every = 1``, so the curve's "train" entries are single
  steps' losses);
* ``transfer_params_many``: a model trained a few steps in one framework, exported with ``get_params``,
  loaded with ``set_params`` into the other framework's model, gives the same ``predict`` outputs.

Every error is the maximum absolute difference (``max |a - b|``) unless its name says otherwise.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.trials.protocol import FRAMEWORKS, check_hparams
from harness.workers.job import JobContext
from harness.workers.worker import Workers


@dataclass(frozen=True)
class ParityJob:
    """``cases`` of one ``kind`` (``CASES``) in ``framework``; one dict per case (``{"error": traceback}``
    for a case that raised)."""

    framework: str
    kind: str
    cases: tuple[dict, ...]

    def run(self, context: JobContext) -> list[dict]:
        return run_cases(context.backend, self.framework, self.kind, list(self.cases))

# --- the worker side: runs in a worker process of one framework (harness.workers.worker) -------------------------


def _variant(variant_id: str, variant_hparams: dict | None) -> Any:
    from harness.plugins.registry import registry

    return registry().variant(variant_id, **(variant_hparams or {}))


def _cell_job(backend: Any, job: dict) -> dict:
    variant = _variant(job["variant"], job["variant_hparams"])
    outputs, grads, input_grad = backend.cell_gradients(
        variant, job["params"], job["inputs"], job["upstream"], fused=job["fused"], scan=job.get("scan", False)
    )
    return {"outputs": outputs, "grads": grads, "input_grad": input_grad}


def _trial_parts(job: dict, framework: str) -> tuple[Any, Any, Any, Any]:
    from harness.plugins.registry import registry
    from harness.trials.trial import Trial

    task = registry().task(job["task"])
    variant = _variant(job["variant"], job["variant_hparams"])
    trial = Trial(job["task"], job["length"], variant.id, framework, job["device"], job["hparams"], job["seed"])
    return trial, task, variant, trial.settings


def _train_job(backend: Any, job: dict, framework: str) -> dict:
    from harness.training.solo import train

    trial, task, variant, settings = _trial_parts(job, framework)
    dtype = job.get("dtype", "float32")
    result = train(trial, task, variant,
                   lambda p: backend.build_model(variant, task, settings, p, job["device"], dtype=dtype))  # fmt: skip
    return {
        "status": result.status,
        "error": result.error,
        "path": result.path,
        "train": [loss for _, split, loss, _ in result.curve if split == "train"],
        "validation": [loss for _, split, loss, _ in result.curve if split == "validation"],
    }


def _fresh_model(backend: Any, job: dict, framework: str) -> Any:
    """The trial's model at its initial parameters."""
    from harness.cell.model import init_model_params

    trial, task, variant, settings = _trial_parts(job, framework)
    params = init_model_params(variant, task, settings.hidden_size, trial.seed, lag=trial.length)
    return backend.build_model(variant, task, settings, params, job["device"])


def _transfer_train_job(backend: Any, job: dict, framework: str) -> dict:
    """Train ``steps`` steps from the trial's initial parameters; export them and predict the probe."""
    trial, task, _, settings = _trial_parts(job, framework)
    model = _fresh_model(backend, job, framework)
    stream = task.training_stream(trial.length, settings.batch_size, trial.seed)
    for _ in range(job["steps"]):
        batch = next(stream)
        model.train_step(batch.inputs, batch.targets)
    return {"params": model.get_params(), "predictions": model.predict(job["probe"]), "path": model.path}


def _transfer_load_job(backend: Any, job: dict, framework: str) -> dict:
    """Load exported parameters into a fresh model and predict the probe."""
    model = _fresh_model(backend, job, framework)
    model.set_params(job["params"])
    return {"predictions": model.predict(job["probe"]), "path": model.path}


_JOBS = {
    "cell": _cell_job,
    "train": _train_job,
    "transfer_train": _transfer_train_job,
    "transfer_load": _transfer_load_job,
}


def run_cases(backend: Any, framework: str, kind: str, cases: list[dict]) -> list[dict]:
    """Worker side of a ``ParityJob``: run ``cases`` of one ``kind`` with ``framework``'s ``backend``. A case
    that raises gives ``{"error": traceback}`` instead of failing the others."""
    results = []
    for case in cases:
        try:
            run = _JOBS[kind]
            results.append(run(backend, case) if kind == "cell" else run(backend, case, framework))
        except Exception:
            results.append({"error": traceback.format_exc()})
    return results


# --- the parent side ------------------------------------------------------------------------------------


def _with_workers(workers: Workers | None, frameworks: tuple[str, ...], calls: dict) -> dict[str, list[dict]]:
    """``calls``: ``{framework: (kind, cases)}``, run as one ``ParityJob`` per framework, in parallel."""
    jobs = {fw: ParityJob(fw, kind, tuple(cases)) for fw, (kind, cases) in calls.items()}
    if workers is not None:
        return workers.run(jobs)
    with Workers(frameworks) as own:
        return own.run(jobs)


def random_case(
    variant: Any,
    input_size: int,
    hidden_size: int,
    batch: int,
    length: int,
    seed: int,
    dtype: str = "float32",
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """(params, inputs (B, L, I), upstream (B, L, H)) for a gradient check: the variant's initialiser,
    then every bias (``b*``) and peephole (``p*``) redrawn from N(0, 0.5²) so that no term is zero."""
    rng = np.random.default_rng(seed)
    params = variant.init_params(input_size, hidden_size, rng)
    for name, value in params.items():
        if name.rsplit(".", 1)[-1][:1] in ("b", "p"):
            params[name] = rng.normal(0.0, 0.5, size=value.shape)
    params = {k: np.asarray(v, dtype=dtype) for k, v in params.items()}
    inputs = rng.normal(size=(batch, length, input_size)).astype(dtype)
    upstream = rng.normal(size=(batch, length, hidden_size)).astype(dtype)
    return params, inputs, upstream


def _max_abs(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def compare_cell_results(a: dict, b: dict) -> dict[str, Any]:
    """Errors between two ``cell_gradients`` results: ``outputs``, ``inputs`` (the input gradient),
    ``params`` (per parameter), ``gradients`` (the largest of the gradient errors) and the scales
    (largest magnitudes) they are relative to; ``error`` when either side failed."""
    failed = [r["error"] for r in (a, b) if "error" in r]
    if failed:
        return {"error": "\n".join(failed)}
    params = {name: _max_abs(a["grads"][name], b["grads"][name]) for name in a["grads"]}
    input_grad = _max_abs(a["input_grad"], b["input_grad"])
    return {
        "outputs": _max_abs(a["outputs"], b["outputs"]),
        "inputs": input_grad,
        "params": params,
        "gradients": max([input_grad, *params.values()]),
        "output_scale": float(np.max(np.abs(a["outputs"]))),
        "gradient_scale": float(max(np.max(np.abs(g)) for g in [a["input_grad"], *a["grads"].values()])),
    }


def _cell_jobs(
    variant_ids: list[str],
    hparams: dict[str, dict] | None,
    input_size: int,
    hidden_size: int,
    batch: int,
    length: int,
    seed: int,
    dtype: str,
    fused: bool,
) -> list[dict]:
    from harness.plugins.registry import registry

    jobs = []
    for vid in variant_ids:
        vhp = (hparams or {}).get(vid, {})
        variant = registry().variant(vid, **vhp)
        params, inputs, upstream = random_case(variant, input_size, hidden_size, batch, length, seed, dtype)
        jobs.append(
            {
                "variant": vid,
                "variant_hparams": vhp,
                "params": params,
                "inputs": inputs,
                "upstream": upstream,
                "fused": fused,
            }
        )
    return jobs


def compare_frameworks_many(
    variant_ids: list[str],
    hparams: dict[str, dict] | None = None,
    input_size: int = 3,
    hidden_size: int = 4,
    batch: int = 2,
    length: int = 6,
    seed: int = 0,
    dtype: str = "float32",
    fused: bool = False,
    workers: Workers | None = None,
) -> dict[str, dict[str, Any]]:
    """Torch against tf for several variants, in one child process per framework.

    ``hparams`` maps a variant id to its variant hyperparameters. Returns ``{variant id: errors}``
    (see ``compare_cell_results``) for torch against tf, both on the generic path unless ``fused``.
    """
    jobs = _cell_jobs(variant_ids, hparams, input_size, hidden_size, batch, length, seed, dtype, fused)
    results = _with_workers(workers, ("torch", "tf"), {"torch": ("cell", jobs), "tf": ("cell", jobs)})
    return {vid: compare_cell_results(a, b) for vid, a, b in zip(variant_ids, results["torch"], results["tf"])}


def compare_fused_many(
    variant_ids: list[str],
    frameworks: tuple[str, ...] = FRAMEWORKS,
    hparams: dict[str, dict] | None = None,
    input_size: int = 3,
    hidden_size: int = 4,
    batch: int = 2,
    length: int = 6,
    seed: int = 0,
    dtype: str = "float32",
    workers: Workers | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Fused against generic path within each framework: ``{framework: {variant id: errors}}``.
    Every variant must have a fused kernel (``UsageError`` otherwise)."""
    from harness.errors import UsageError
    from harness.plugins.registry import registry

    for vid in variant_ids:
        if registry().variant_class(vid).fused_kernel is None:
            fused = sorted(k for k, c in registry().variants.items() if c.fused_kernel)
            raise UsageError(f"variant {vid!r} has no fused kernel; fused variants: {fused}")
    case = (input_size, hidden_size, batch, length, seed, dtype)
    return _paths_compared(variant_ids, frameworks, _cell_jobs(variant_ids, hparams, *case, fused=False), "fused",
                           workers)  # fmt: skip


def _paths_compared(variant_ids: list[str], frameworks: tuple[str, ...], jobs: list[dict], path: str,
                    workers: Workers | None) -> dict[str, dict[str, dict[str, Any]]]:  # fmt: skip
    """Each cell job (one per variant) on the generic path against the same job with ``path`` (``fused``,
    ``scan``) switched on, within each framework: ``{framework: {variant id: errors}}``."""
    other = [{**job, path: True} for job in jobs]
    results = _with_workers(workers, tuple(frameworks), {fw: ("cell", jobs + other) for fw in frameworks})
    n = len(variant_ids)
    return {
        fw: {vid: compare_cell_results(a, b) for vid, a, b in zip(variant_ids, res[:n], res[n:])}
        for fw, res in results.items()
    }


def compare_scan_many(
    variant_ids: list[str],
    frameworks: tuple[str, ...] = FRAMEWORKS,
    length: int = 256,
    workers: Workers | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """The linear form (``harness.scan``) against the loop of steps within each framework, float64, at a
    length where a scan and a loop add in different orders: ``{framework: {variant id: errors}}``. Every
    variant must have a linear form (``UsageError`` otherwise)."""
    from harness.errors import UsageError
    from harness.plugins.registry import registry
    from harness.scan import LINEAR_FORMS

    registry()  # loads the variant files, which register their forms
    missing = [vid for vid in variant_ids if vid not in LINEAR_FORMS]
    if missing:
        raise UsageError(f"variant(s) {missing} have no linear form; these do: {sorted(LINEAR_FORMS)}")
    loop = _cell_jobs(variant_ids, None, 3, 4, 2, length, 0, "float64", fused=False)
    return _paths_compared(variant_ids, frameworks, loop, "scan", workers)


#: the small trial of the training checks: cheap, and every step's loss is recorded
TRAINING_DEFAULTS = {
    "hidden_size": 8,
    "batch_size": 16,
    "max_steps": 20,
    "eval_every": 1,
    "validation_size": 64,
    "test_size": 64,
}


def _trial_job(
    variant_id: str,
    task: str,
    length: int,
    hparams: dict | None,
    variant_hparams: dict | None,
    seed: int,
    device: str,
    dtype: str = "float32",
) -> dict:
    hp = check_hparams({**TRAINING_DEFAULTS, **(hparams or {})})
    return {
        "dtype": dtype,
        "task": task,
        "length": length,
        "variant": variant_id,
        "variant_hparams": variant_hparams or {},
        "hparams": hp,
        "seed": seed,
        "device": device,
    }


def compare_training(
    variant_id: str = "np",
    task: str = "adding",
    length: int = 10,
    hparams: dict | None = None,
    variant_hparams: dict | None = None,
    seed: int = 0,
    steps: int = 20,
    workers: Workers | None = None,
    frameworks: tuple[str, ...] = ("torch", "tf"),
    float64_reference: bool = False,
) -> dict[str, Any]:
    """The same trial trained ``steps`` steps in each of ``frameworks`` (``harness.training.solo.train``, the
    same seed, ``eval_every = 1``). Returns each framework's ``train`` (per-step losses), ``validation``
    (after each step) and ``path``; with both frameworks also ``max_abs`` / ``max_rel``
    (``|a - b| / |a|``) over the train losses of the steps both ran. ``float64_reference``: the first
    framework also trains in float64, and ``rounding_rel`` is how far its float32 losses lie from those
    (the scale on which float32 runs of this cell can agree at all)."""
    hp = {**(hparams or {}), "max_steps": steps}
    job = _trial_job(variant_id, task, length, hp, variant_hparams, seed, "cpu")
    wanted = {fw: ("train", [job]) for fw in frameworks}
    if float64_reference:
        wanted[frameworks[0]] = ("train", [job, {**job, "dtype": "float64"}])
    results = _with_workers(workers, tuple(frameworks), wanted)
    out: dict[str, Any] = {fw: res[0] for fw, res in results.items()}
    rounding = _rounding_rel(out[frameworks[0]], results[frameworks[0]][1]) if float64_reference else None
    failed = [f"{fw}: {r['error']}" for fw, r in out.items() if r.get("status", "failed") != "ok"]
    if failed:
        out["error"] = "\n".join(failed)
        return out
    if set(frameworks) != {"torch", "tf"}:
        return out
    n = min(len(out["torch"]["train"]), len(out["tf"]["train"]))
    a, b = np.asarray(out["torch"]["train"][:n]), np.asarray(out["tf"]["train"][:n])
    out["max_abs"] = float(np.max(np.abs(a - b))) if n else 0.0
    out["max_rel"] = float(np.max(np.abs(a - b) / np.abs(a))) if n else 0.0
    if rounding is not None:
        out["rounding_rel"] = rounding
    return out


def _rounding_rel(float32: dict, float64: dict) -> float | None:
    """The largest ``|a - b| / |b|`` of a float32 run's per-step losses ``a`` against the float64 run's
    ``b`` (None when either failed)."""
    if float32.get("status") != "ok" or float64.get("status") != "ok":
        return None
    n = min(len(float32["train"]), len(float64["train"]))
    a, b = np.asarray(float32["train"][:n]), np.asarray(float64["train"][:n])
    return float(np.max(np.abs(a - b) / np.abs(b))) if n else 0.0


def transfer_params_many(
    variant_ids: list[str],
    task: str = "adding",
    length: int = 10,
    hparams: dict | None = None,
    variant_hparams: dict[str, dict] | None = None,
    seed: int = 0,
    steps: int = 5,
    workers: Workers | None = None,
) -> dict[str, dict[str, Any]]:
    """Train ``steps`` steps in each framework, export ``get_params``, load them with ``set_params`` into
    the other framework's model, and compare ``predict`` on a probe batch, for several variants (two
    rounds, one child per framework): ``{variant: {"tf->torch": err, "torch->tf": err}}``."""
    from harness.plugins.registry import registry

    jobs = [_trial_job(v, task, length, hparams, (variant_hparams or {}).get(v), seed, "cpu") for v in variant_ids]
    probe = registry().task(task).fixed_set("validation", length, 32).inputs
    for job in jobs:
        job.update(steps=steps, probe=probe)
    trained = _with_workers(workers, ("torch", "tf"), {fw: ("transfer_train", jobs) for fw in ("torch", "tf")})
    other = {"torch": "tf", "tf": "torch"}
    loads = {}
    for fw in ("torch", "tf"):
        exported = [result.get("params", {}) for result in trained[other[fw]]]
        loads[fw] = ("transfer_load", [{**job, "params": p} for job, p in zip(jobs, exported)])
    loaded = _with_workers(workers, ("torch", "tf"), loads)
    report: dict[str, dict[str, Any]] = {}
    for k, vid in enumerate(variant_ids):
        entry: dict[str, Any] = {}
        for source, target in (("tf", "torch"), ("torch", "tf")):
            exported, imported = trained[source][k], loaded[target][k]
            errors = [r["error"] for r in (exported, imported) if "error" in r]
            entry[f"{source}->{target}"] = (
                {"error": "\n".join(errors)} if errors else _max_abs(exported["predictions"], imported["predictions"])
            )
        report[vid] = entry
    return report
