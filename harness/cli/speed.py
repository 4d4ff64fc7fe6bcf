"""``rnn-bench speed``: the cost of a training step per trial, solo and in populations, against the
framework's fused solo LSTM measured in the same run.

Each framework is measured in a spawned child of its own (``harness.workers.worker.Workers``: one intra-op
thread, never both frameworks in one process), one framework after the other so that they do not
share the cores. A row is ``harness.diagnostics.speed.step_ms``: the median over ``steps`` timed steps after two
warm-up steps, divided by the trials the step advances. Population 1 is the solo model (the fused
kernel where the variant has one, unless ``fused`` is off); the reference row is ``np`` at population
1 with its fused kernel (``torch.nn.LSTM`` / ``keras.layers.LSTM``).

Variants with a linear form (``harness.scan``) are measured on their loop of steps and as a parallel
scan (``scan="both"``), so the two paths meet in one table: path ``scan`` (solo) or ``population-scan``.

    ms_per_trial_step   median ms of one training step / population size
    trials_per_hour     3.6e6 / (ms_per_trial_step x steps_per_trial), one worker
    ratio_to_fused      ms_per_trial_step / the fused solo LSTM's, same framework, device and sizes

and the distance to the machine's limit (``harness.diagnostics.roofline``, which defines them): the step's
matrix-product MFLOP per trial (counted in PyTorch on the CPU), the GFLOP/s it achieves, the GFLOP/s of a
lone LSTM-shaped recurrent product at the row's B, H and population and of a large product (1024³ on a
CPU, 4096³ on a GPU) in the same framework and process, and the fraction of the latter the step achieves
(``of_peak``). Those cells are blank, with a note on stderr, where they cannot be had: the count without
PyTorch, or a count or a product that failed.
"""

from __future__ import annotations

import csv
import io
import sys
from typing import Any

from harness.diagnostics.speed import FUSED_REFERENCE
from harness.error_text import headline
from harness.errors import UsageError

COLUMNS = ("variant", "framework", "device", "hidden_size", "population", "path", "ms_per_trial_step",
           "trials_per_hour", "ratio_to_fused", "mflop_per_trial_step", "gflop_per_s", "shape_gflop_per_s",
           "peak_gflop_per_s", "of_peak")  # fmt: skip


def measure(variants: list[str], frameworks: list[str], device: str, hidden_sizes: list[int],
            populations: list[int], length: int, batch: int, steps: int, steps_per_trial: int,
            fused: bool = True, scan: str = "both") -> list[dict[str, Any]]:  # fmt: skip
    """One row per framework x hidden size x variant x population x path (see the module docstring);
    ``scan``: ``off`` (loops only), ``on`` (scans where a variant has a linear form) or ``both``."""
    from harness.diagnostics.roofline import LARGE, MatmulJob, step_shape
    from harness.diagnostics.speed import SpeedJob
    from harness.workers.worker import Workers

    rows = []
    for framework in frameworks:
        jobs = _jobs(variants, hidden_sizes, populations, length, batch, steps, fused, device, scan)
        large = LARGE[device]
        shapes = tuple(dict.fromkeys([large] + [step_shape(j["members"], batch, j["hidden"]) for j in jobs]))
        with Workers((framework,), device) as workers:
            results = workers.run({framework: SpeedJob(framework, tuple(jobs))})[framework]
            products = workers.run({framework: MatmulJob(framework, shapes, device)})[framework]
        rows += _rows(framework, device, jobs, results, steps_per_trial)
        _add_products([r for r in rows if r["framework"] == framework], dict(zip(shapes, products)), batch, large)
    _add_flops(rows, length, batch)
    return rows


def _add_products(rows: list[dict], products: dict[tuple, dict], batch: int, large: tuple) -> None:
    """Each row's matrix-product GFLOP/s at its step's shape and at the large shape (the peak); a product
    whose timing failed leaves its cells blank, with a note."""
    from harness.diagnostics.roofline import step_shape

    for shape, result in products.items():
        if "error" in result:
            _note(f"timing a matrix product of shape {shape} failed, its cells are blank: {headline(result['error'])}")
    for r in rows:
        at_shape, peak = products[step_shape(r["population"], batch, r["hidden_size"])], products[large]
        r["shape_gflop_per_s"], r["peak_gflop_per_s"] = at_shape.get("gflops"), peak.get("gflops")


def _add_flops(rows: list[dict], length: int, batch: int) -> None:
    """Each row's matrix-product MFLOP per trial-step, counted in one PyTorch worker on the CPU (the same
    count for a TensorFlow row or a GPU: the same products), its achieved GFLOP/s and its fraction of the
    peak; blank, with a note, where PyTorch is not installed or a count failed."""
    from harness.backends import installed_frameworks
    from harness.diagnostics.roofline import FlopJob
    from harness.workers.worker import Workers

    for r in rows:
        r.update(mflop_per_trial_step=None, gflop_per_s=None, of_peak=None)
    if "torch" not in installed_frameworks():
        _note("the FLOP columns are blank: they are counted by PyTorch, which is not installed here")
        return
    cases = list(dict.fromkeys(_flop_case(r) for r in rows))
    jobs = tuple({"variant_id": v, "members": m, "T": length, "batch": batch, "hidden": h, "scan": s}
                 for v, m, h, s in cases)  # fmt: skip
    with Workers(("torch",), "cpu") as workers:
        counts = dict(zip(cases, workers.run({"torch": FlopJob(jobs)})["torch"]))
    for case, count in counts.items():
        if "error" in count:
            _note(f"counting the FLOPs of {case[0]} at population {max(case[1], 1)} failed, its FLOP cells are "
                  f"blank: {headline(count['error'])}")  # fmt: skip
    for r in rows:
        flops = counts[_flop_case(r)].get("flops")
        if flops is None:
            continue
        r["mflop_per_trial_step"] = flops / 1e6
        r["gflop_per_s"] = flops / (r["ms_per_trial_step"] / 1000) / 1e9
        if r["peak_gflop_per_s"]:
            r["of_peak"] = r["gflop_per_s"] / r["peak_gflop_per_s"]


def _note(text: str) -> None:
    print(f"rnn-bench speed: note: {text}", file=sys.stderr)


def _jobs(variants: list[str], hidden_sizes: list[int], populations: list[int], length: int, batch: int,
          steps: int, fused: bool, device: str, scan: str = "both") -> list[dict[str, Any]]:  # fmt: skip
    """``harness.diagnostics.speed.step_ms`` arguments: per hidden size, the fused reference first, then each variant at
    each population (population 1 is ``members`` 0, the solo model), on each path ``scan`` asks for."""
    from harness.plugins.registry import registry
    from harness.scan import LINEAR_FORMS

    registry()  # loads the variant files, which register their linear forms
    paths = {"off": (False,), "on": (True,), "both": (False, True)}[scan]

    def paths_of(variant_id: str) -> tuple[bool, ...]:
        return paths if variant_id in LINEAR_FORMS else (False,)  # no linear form: its loop, whatever --scan

    jobs: list[dict[str, Any]] = []
    for h in hidden_sizes:
        wanted = [(FUSED_REFERENCE, 0, True, False)] + [
            (v, 0 if m == 1 else m, fused, s) for v in variants for m in populations for s in paths_of(v)
        ]  # fmt: skip
        for vid, members, use_fused, use_scan in dict.fromkeys(wanted):  # np at population 1 is the reference
            jobs.append({"variant_id": vid, "members": members, "T": length, "batch": batch, "hidden": h,
                         "steps": steps, "fused": use_fused, "device": device, "scan": use_scan})  # fmt: skip
    return jobs


def _rows(framework: str, device: str, jobs: list[dict], results: list[dict], steps_per_trial: int) -> list[dict]:
    """Rows of one framework's measurements, each with its ratio to the fused LSTM of its hidden size."""
    from harness.plugins.registry import registry

    for job, result in zip(jobs, results):
        if "error" in result:
            raise UsageError(f"measuring {job['variant_id']} at population {max(job['members'], 1)} and hidden "
                             f"size {job['hidden']} in {framework} failed: {headline(result['error'])}")  # fmt: skip
    reference = {j["hidden"]: r["ms"] for j, r in zip(jobs, results)
                 if j["variant_id"] == FUSED_REFERENCE and j["members"] == 0 and j["fused"]}  # fmt: skip
    rows = []
    for job, result in zip(jobs, results):
        ms, kernel = result["ms"], registry().variant_class(job["variant_id"]).fused_kernel
        path = "population" if job["members"] else "fused" if job["fused"] and kernel else "generic"
        if job["scan"]:
            path = "population-scan" if job["members"] else "scan"
        rows.append({
            "variant": job["variant_id"], "framework": framework, "device": device, "hidden_size": job["hidden"],
            "population": max(job["members"], 1), "path": path, "ms_per_trial_step": ms,
            "trials_per_hour": 3.6e6 / (ms * steps_per_trial), "ratio_to_fused": ms / reference[job["hidden"]],
        })  # fmt: skip
    return rows


def format_rows(rows: list[dict[str, Any]], fmt: str) -> str:
    """``table`` (aligned, for people) or ``csv``."""
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: _cell(k, r[k]) for k in COLUMNS} for r in rows)
        return buffer.getvalue()
    from harness.text_table import text_table

    return text_table([COLUMNS, *[[_cell(k, r[k]) for k in COLUMNS] for r in rows]]) + "\n"


def _flop_case(row: dict) -> tuple[str, int, int, bool]:
    """(variant, members (0: solo), hidden size, scan): what a row's FLOP count depends on (a fused row
    computes its generic path's products)."""
    members = 0 if row["population"] == 1 else row["population"]
    return row["variant"], members, row["hidden_size"], row["path"] in ("scan", "population-scan")


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if column in ("mflop_per_trial_step", "gflop_per_s", "shape_gflop_per_s", "peak_gflop_per_s", "of_peak"):
        return f"{value:.3g}"
    if column == "ms_per_trial_step":
        return f"{value:.3f}"
    if column == "trials_per_hour":
        return f"{value:.0f}"
    if column == "ratio_to_fused":
        return f"{value:.2f}"
    return str(value)
