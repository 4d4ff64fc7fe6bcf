"""``rnn-bench check VARIANT``: is a variant (a user's new one included) fit to benchmark?

    contract    parameters are exactly what ``parameter_shapes`` declares (names, shapes, float32, finite);
                the step returns h (B, H) and the declared states, uses only the ops namespace and only
                declared parameters (numpy reference, in this process)
    gradients   PyTorch's float64 autograd against central finite differences of the numpy reference,
                for every parameter and the input; a parameter the output does not depend on fails
    parity      PyTorch and TensorFlow give the same outputs and gradients, float32 (``TOLERANCE``)
    fused       where the variant has a fused kernel: fused and generic paths agree, in each framework
    scan        where the variant has a linear form (``harness.scan``): the parallel scan and the loop of
                steps agree, outputs and gradients, float64 at T = 256, in each framework
    transfer    parameters trained in one framework load into the other and give the same predictions
    training    a short run on an easy task (adding, T = 10) in each framework: finite losses, and the
                best validation loss clearly below the task's trivial baseline (the variant learns);
                with both frameworks, the two loss curves agree (to ``TOLERANCE``, or to ``ROUNDING_FACTOR``
                times the cell's own float32 stray from float64, whichever is larger)

Framework computations run in worker processes, one per framework (``harness.workers.worker.Workers``): this
process imports neither framework. Checks that need a framework that is not installed are skipped
with the reason. The exit code is 0 only when no check fails.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.backends import installed_frameworks
from harness.cell.unroll import unroll_numpy
from harness.diagnostics.preflight import B, I, L, contract_problems, small_hidden_size
from harness.error_text import headline
from harness.plugins.registry import registry
from harness.variant import StepError, Variant

CHECKS = ("contract", "population", "gradients", "parity", "fused", "scan", "transfer", "training")
#: Float32 tolerances from the arithmetic (unit roundoff u = 6e-8): the two frameworks differ only in the
#: order of their float32 sums, a few ulps per result accumulated over L = 6 steps of H-term sums.
#: outputs and transfer: magnitudes ≤ ~2 (ulp 2.4e-7), 2e-6 ≈ 8 ulps (measured on the shipped variants:
#: ≤ 2.4e-7, transfer ≤ 3.6e-7); gradients: sums over B·L terms, magnitudes ≤ ~6 (ulp 4.8e-7), 1e-5 ≈ 20
#: ulps (measured ≤ 1.0e-6); training: a relative loss difference that starts at ~u and grows over the 40
#: steps at learning rate 0.01 of ``TRAINING_RUN``: 2e-5 (measured ≤ 1.7e-6); a wrong gate order, learning
#: rate or optimiser moves it by far more. fd: float64 autograd against central differences (eps 1e-6).
TOLERANCE = {"outputs": 2e-6, "gradients": 1e-5, "fd": 1e-6, "transfer": 2e-6, "training": 2e-5}
#: The training curves of two frameworks may differ by this many times one framework's own float32 stray
#: from float64 (ln_lstm: layer normalisation amplifies rounding; its float32 curve strays 3.8e-3 from
#: float64 in 40 steps, and PyTorch and TensorFlow differ by as much), up to ``ROUNDING_CAP`` at most
ROUNDING_FACTOR, ROUNDING_CAP = 3.0, 1e-2
#: the scan row compares float64 results: a scan and a loop differ there by the order of additions only
SCAN_TOLERANCE = {"outputs": 1e-10, "gradients": 1e-9}
#: The training check: adding at T = 10, 40 Adam steps at learning rate 0.01 (hidden size 8, batch 16).
#: Every shipped cell's best validation loss there is 0.08-0.15, below the trivial baseline's 1/6;
#: a cell that does not learn stays at or above it.
TRAINING_RUN = {"task": "adding", "length": 10, "steps": 40, "hparams": {"learning_rate": 0.01}}
LEARNS = 0.95  # the variant learns: best validation loss ≤ 0.95 × the trivial baseline's loss


@dataclass
class CheckRow:
    name: str
    frameworks: str
    status: str  # pass | fail | skip
    measured: str = ""
    tolerance: str = ""
    detail: str = ""


def finite_difference_errors(variant: Variant, case: tuple, torch_result: dict, samples: int = 4) -> dict[str, float]:
    """Relative error of torch's gradient against central differences of the numpy float64 reference,
    per parameter (and ``inputs``), on ``samples`` random entries each."""
    params, inputs, upstream = case
    eps = 1e-6

    def loss(p: dict, x: np.ndarray) -> float:
        return float(np.sum(unroll_numpy(variant, p, x) * upstream))

    rng = np.random.default_rng(1)
    errors = {}
    targets = [(name, params[name]) for name in params] + [("inputs", inputs)]
    for name, array in targets:
        analytic = torch_result["input_grad"] if name == "inputs" else torch_result["grads"][name]
        worst = 0.0
        for flat in rng.choice(array.size, size=min(samples, array.size), replace=False):
            idx = np.unravel_index(flat, array.shape)
            plus, minus = array.copy(), array.copy()
            plus[idx] += eps
            minus[idx] -= eps
            if name == "inputs":
                numeric = (loss(params, plus) - loss(params, minus)) / (2 * eps)
            else:
                numeric = (loss({**params, name: plus}, inputs) - loss({**params, name: minus}, inputs)) / (2 * eps)
            worst = max(worst, abs(numeric - analytic[idx]) / max(1.0, abs(numeric)))
        errors[name] = worst
    return errors


def population_row(variant: Variant) -> CheckRow:
    """Whether the variant trains in populations (``harness.cell.batchable``'s two rules, checked numerically in
    float64). Not being batchable is allowed, not a failure: such a variant trains solo, only slower."""
    from harness.cell.batchable import batchability

    ability = batchability(variant)
    if ability.pads:
        detail = "trains in populations, members of any hidden size (rules 1 and 2 of harness/cell/batchable.py hold)"
    elif ability.batchable:
        detail = f"trains in populations of one hidden size: {ability.reason}"
    else:
        detail = f"trains solo, not in populations: {ability.reason}"
    return CheckRow("population", "numpy", "pass", detail=detail)


def _fmt(x: float) -> str:
    return f"{x:.1e}"


def check_variant(
    variant_id: str, only: list[str] | None = None, frameworks: list[str] | None = None
) -> list[CheckRow]:
    """Run the checks and return one row per check (and framework where it applies)."""
    from harness.diagnostics.parity import (
        ParityJob,
        compare_frameworks_many,
        compare_fused_many,
        compare_scan_many,
        compare_training,
        random_case,
        transfer_params_many,
    )
    from harness.workers.worker import Workers

    reg = registry()
    variant = reg.variant(variant_id)
    vid = variant.id
    wanted = [c for c in CHECKS if only is None or c in only]
    available = installed_frameworks()
    fws = [f for f in (frameworks or available) if f in available]
    absent = sorted({"torch", "tf"} - set(available))
    left_out = sorted({"torch", "tf"} - set(fws) - set(absent))
    why_not = "; ".join(
        x
        for x in (
            f"not installed: {', '.join(absent)}" if absent else "",
            f"left out by --frameworks: {', '.join(left_out)}" if left_out else "",
        )
        if x
    )
    rows: list[CheckRow] = []
    try:
        hidden = small_hidden_size(variant)
        problems = contract_problems(variant, hidden)
    except StepError as e:
        hidden, problems = 0, [e.message]
    if "contract" in wanted:
        rows.append(
            CheckRow(
                "contract",
                "numpy",
                "fail" if problems else "pass",
                detail="; ".join(problems)
                or f"{len(variant.parameter_shapes(I, hidden))} parameters, "
                f"state sizes {variant.state_sizes(hidden)} at I={I}, H={hidden}",
            )
        )
    if problems:
        rows += [CheckRow(c, "-", "skip", detail="the contract fails") for c in wanted if c != "contract"]
        return rows
    if "population" in wanted:
        rows.append(population_row(variant))

    def skip(name: str, why: str) -> None:
        rows.append(CheckRow(name, "-", "skip", detail=why))

    both = "torch" in fws and "tf" in fws
    need_both = f"needs torch and tf ({why_not})"
    no_torch = "not installed" if "torch" in absent else "left out by --frameworks"
    with Workers(tuple(fws)) as workers:
        if "gradients" in wanted:
            if "torch" not in fws:
                skip("gradients", f"needs torch (autograd); {no_torch}")
            else:
                case = random_case(variant, I, hidden, B, L, seed=0, dtype="float64")
                job = {
                    "variant": vid,
                    "variant_hparams": {},
                    "params": case[0],
                    "inputs": case[1],
                    "upstream": case[2],
                    "fused": False,
                }
                result = workers.run({"torch": ParityJob("torch", "cell", (job,))})["torch"][0]
                if "error" in result:
                    rows.append(CheckRow("gradients", "torch", "fail", detail=headline(result["error"])))
                else:
                    errs = finite_difference_errors(variant, case, result)
                    unused = sorted(k for k, g in result["grads"].items() if not np.any(g))
                    worst = max(errs, key=errs.get)
                    ok = errs[worst] <= TOLERANCE["fd"] and not unused
                    detail = f"worst: {worst}" + (
                        f"; parameters with zero gradient (unused?): {unused}" if unused else ""
                    )
                    rows.append(
                        CheckRow(
                            "gradients",
                            "torch (float64)",
                            "pass" if ok else "fail",
                            _fmt(errs[worst]),
                            _fmt(TOLERANCE["fd"]),
                            detail,
                        )
                    )
        if "parity" in wanted:
            if not both:
                skip("parity", need_both)
            else:
                r = compare_frameworks_many([vid], workers=workers)[vid]
                rows.append(_parity_row("parity", "torch vs tf", r))
        if "fused" in wanted:
            if not variant.fused_kernel:
                skip("fused", "the variant has no fused kernel")
            else:
                by_fw = compare_fused_many([vid], frameworks=tuple(fws), workers=workers)
                for fw in fws:
                    rows.append(_parity_row("fused", f"{fw}: fused vs generic", by_fw[fw][vid]))
        if "scan" in wanted:
            from harness.scan import LINEAR_FORMS

            if vid not in LINEAR_FORMS:
                skip("scan", "the variant has no linear form")
            else:
                by_fw = compare_scan_many([vid], frameworks=tuple(fws), workers=workers)
                for fw in fws:
                    rows.append(_parity_row("scan", f"{fw}: scan vs loop (float64, T = 256)", by_fw[fw][vid],
                                            SCAN_TOLERANCE))  # fmt: skip
        if "transfer" in wanted:
            if not both:
                skip("transfer", need_both)
            else:
                r = transfer_params_many([vid], workers=workers)[vid]
                for direction, err in r.items():
                    if isinstance(err, dict):
                        rows.append(
                            CheckRow("transfer", direction, "fail", detail=headline(err["error"]))
                        )
                    else:
                        rows.append(
                            CheckRow(
                                "transfer",
                                direction,
                                "pass" if err <= TOLERANCE["transfer"] else "fail",
                                _fmt(err),
                                _fmt(TOLERANCE["transfer"]),
                                "predictions after loading",
                            )
                        )
        if "training" in wanted:
            rows += _training_rows(vid, fws, workers, compare_training)
    return rows


def _parity_row(name: str, frameworks: str, r: dict[str, Any], tolerance: dict[str, float] = TOLERANCE) -> CheckRow:
    if "error" in r:
        return CheckRow(name, frameworks, "fail", detail=headline(r["error"]))
    ok = r["outputs"] <= tolerance["outputs"] and r["gradients"] <= tolerance["gradients"]
    worst = max(r["params"], key=r["params"].get) if r["params"] else "inputs"
    return CheckRow(
        name,
        frameworks,
        "pass" if ok else "fail",
        f"out {_fmt(r['outputs'])}, grad {_fmt(r['gradients'])}",
        f"{_fmt(tolerance['outputs'])} / {_fmt(tolerance['gradients'])}",
        f"largest parameter-gradient error: {worst}",
    )


def _training_rows(vid: str, fws: list[str], workers: Any, compare_training: Any) -> list[CheckRow]:
    """``TRAINING_RUN`` in each framework: one row per framework (finite losses, and the variant learns:
    its best validation loss is at most ``LEARNS`` × the task's trivial baseline loss); with both, one
    more row for the agreement of the two loss curves. Every number in the rows comes from the run."""
    task, length, steps = TRAINING_RUN["task"], TRAINING_RUN["length"], TRAINING_RUN["steps"]
    r = compare_training(
        vid, task=task, length=length, steps=steps, hparams=TRAINING_RUN["hparams"],
        workers=workers, frameworks=tuple(fws), float64_reference=len(fws) == 2,
    )  # fmt: skip
    if "error" in r:
        return [CheckRow("training", ", ".join(fws), "fail", detail=headline(r["error"]))]
    baseline = registry().task(task).baseline(length)["loss"]
    rows = [_learning_row(fw, r[fw]["train"], r[fw]["validation"], task, length, baseline) for fw in fws]
    if "max_rel" in r:
        rows.append(_agreement_row(r, min(len(r[fw]["train"]) for fw in fws), fws[0]))
    return rows


def _agreement_row(r: dict[str, Any], steps: int, reference: str) -> CheckRow:
    """The two frameworks' loss curves agree within ``TOLERANCE["training"]``, or, for a cell whose float32
    training itself strays further from exact arithmetic, within ``ROUNDING_FACTOR`` times that stray
    (``rounding_rel``: ``reference``'s float32 run against its float64 run of the same trial), capped at
    ``ROUNDING_CAP``. Two float32 runs that add in different orders drift apart as far as either drifts
    from the exact curve, so that stray is the scale on which they can be asked to agree."""
    rounding = r.get("rounding_rel", 0.0)
    tolerance = min(ROUNDING_CAP, max(TOLERANCE["training"], ROUNDING_FACTOR * rounding))
    why = f"largest relative difference of the {steps} per-step losses"
    if tolerance > TOLERANCE["training"]:
        why += (f"; this cell's float32 training strays {_fmt(rounding)} from float64 ({reference}), so "
                f"the tolerance is {ROUNDING_FACTOR:g} x that (at most {_fmt(ROUNDING_CAP)})")  # fmt: skip
    return CheckRow("training", "torch vs tf", "pass" if r["max_rel"] <= tolerance else "fail",
                    f"rel {_fmt(r['max_rel'])}", _fmt(tolerance), why)  # fmt: skip


def _learning_row(
    framework: str, train: list[float], validation: list[float], task: str, length: int, baseline: float
) -> CheckRow:
    """Pass when every training loss is finite and the best validation loss is at most ``LEARNS`` ×
    ``baseline`` and below the loss at step 0 (``validation[0]``)."""
    finite = bool(train) and all(math.isfinite(x) for x in [*train, *validation])
    best = min(validation) if validation and all(math.isfinite(x) for x in validation) else math.nan
    learns = finite and best <= LEARNS * baseline and best < validation[0]
    start = f"{validation[0]:.3g}" if validation else "none"
    return CheckRow(
        "training",
        framework,
        "pass" if learns else "fail",
        f"{best / baseline:.2f} x baseline",
        f"<= {LEARNS:.2f} x baseline",
        f"{len(train)} steps on {task} T={length}: validation loss {start} -> best {best:.3g} "
        f"(trivial baseline {baseline:.3g})" + ("" if finite else "; a loss is not finite"),
    )


def format_rows(rows: list[CheckRow]) -> str:
    headers = CheckRow("check", "frameworks", "status", "measured", "tolerance", "detail")
    from harness.text_table import text_table

    cols = ["name", "frameworks", "status", "measured", "tolerance", "detail"]
    return text_table([[getattr(r, c) for c in cols] for r in [headers, *rows]], rule="line")


def run_checks(variant_id: str, frameworks: list[str] | None = None) -> int:
    """The CLI verb: print the table; 0 only when nothing fails."""
    reg = registry()
    vid = reg.canonical_variant(variant_id, "the command line")
    for fw in frameworks or []:
        from harness.backends import check_framework

        check_framework(fw, "--frameworks")
    print(f"checking variant {vid!r} ({reg.variant_class(vid).source_file})", flush=True)
    rows = check_variant(vid, frameworks=frameworks)
    print(format_rows(rows))
    failed = [r for r in rows if r.status == "fail"]
    skipped = [r for r in rows if r.status == "skip"]
    print(f"\n{len(rows) - len(failed) - len(skipped)} passed, {len(failed)} failed, {len(skipped)} skipped")
    not_run = [r for r in skipped if "not installed" in r.detail]
    if not_run and not failed:
        print(f"Not every check ran ({', '.join(r.name for r in not_run)}): a framework is not installed here.")
    return 1 if failed or not_run else 0




if __name__ == "__main__":  # pragma: no cover
    sys.exit(run_checks(sys.argv[1]))
