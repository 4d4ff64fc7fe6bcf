"""``build_report`` on synthetic stores: the files, well-formed self-contained HTML with every image
embedded, the numbers against the store, determinism, degraded stores, errors, the gradient-flow
probe, and a headless-Chromium rendering of the page (skipped where Chromium is absent)."""

from __future__ import annotations

import base64
import errno
import html
import os
import re
import subprocess
import sys
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic_store import write_synthetic_store

from harness.errors import UsageError
from harness.report import build_report
from harness.store.database import Store
from harness.trials.trial import Trial

CHROMIUM = Path("/usr/bin/chromium")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The full report (with the gradient-flow probe) of a synthetic store with unfinished trials."""
    root = tmp_path_factory.mktemp("report")
    store = write_synthetic_store(root / "store.sqlite", trials_per_cell=16, remaining=1)
    started = time.perf_counter()
    index = build_report(store, root / "out", probe=True)
    return {"store": store, "index": index, "out": index.parent, "seconds": time.perf_counter() - started}


# ------------------------------------------------------------------------------------------------------
# HTML checks
# ------------------------------------------------------------------------------------------------------
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class StrictParser(HTMLParser):
    """Fails on a closing tag that does not match the open one; collects images and links."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.images: list[dict] = []
        self.links: list[str] = []
        self.ids: list[str] = []
        self.saw_doctype = False

    def handle_decl(self, decl: str) -> None:
        self.saw_doctype = self.saw_doctype or decl.lower() == "doctype html"

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "img":
            self.images.append(a)
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else 'nothing'}> at {self.getpos()}")
            return
        self.stack.pop()


def parse(path: Path) -> StrictParser:
    p = StrictParser()
    p.feed(path.read_text(encoding="utf-8"))
    p.close()
    return p


def test_report_files(report):
    out = report["out"]
    assert (out / "index.html").is_file() and (out / "report.md").is_file()
    pngs = sorted(p.stem for p in (out / "figures").glob("*.png"))
    assert pngs == sorted(p.stem for p in (out / "figures").glob("*.pdf"))
    expected = {
        "box_adding_T20",
        "box_adding_T50",
        "box_delayed_recall_T10",
        "box_delayed_recall_T40",
        "dependency_adding",
        "dependency_delayed_recall",
        "learning_adding",
        "learning_delayed_recall",
        "importance",
        "marginals_adding",
        "marginals_delayed_recall",
        "interaction_adding",
        "interaction_delayed_recall",
        "frameworks_metric",
        "frameworks_speed",
        "ranking",
    }
    assert expected <= set(pngs)
    for p in (out / "figures").glob("*.png"):
        assert p.read_bytes()[:8] == PNG_MAGIC
    for p in (out / "figures").glob("*.pdf"):
        assert p.read_bytes()[:5] == b"%PDF-"
    for key in ("verdicts", "summary", "ranking", "comparisons", "dependency", "importance", "marginals", "speed",
                "framework_pairs", "framework_tests"):
        for ext in ("csv", "md", "tex", "html"):
            assert (out / "tables" / f"{key}.{ext}").stat().st_size > 0, f"{key}.{ext}"
    assert (out / "tables" / "trials.csv").is_file()


def test_report_is_quick(report):
    # includes the probe (< 20 s) and ~15 figures in two formats; generous for a loaded 2-core CI machine
    assert report["seconds"] < 120


def test_html_is_well_formed_and_self_contained(report):
    p = parse(report["index"])
    assert p.saw_doctype
    assert not p.errors, p.errors[:5]
    assert not p.stack, f"unclosed tags: {p.stack}"
    assert len(p.ids) == len(set(p.ids)), "duplicate ids"
    figures = list((report["out"] / "figures").glob("*.png"))
    assert len(p.images) == len(figures)
    for img in p.images:
        src = img["src"]
        assert src.startswith("data:image/png;base64,"), src[:60]
        assert base64.b64decode(src.split(",", 1)[1])[:8] == PNG_MAGIC
        assert img.get("alt")
    text = report["index"].read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=['"]https?://""", text), "the page must not load anything from the network"
    csv_links = [h for h in p.links if h.startswith("data:text/csv;base64,")]
    assert len(csv_links) >= 8
    embedded = [base64.b64decode(h.split(",", 1)[1]).decode() for h in csv_links]
    assert embedded[0] == (report["out"] / "tables" / "verdicts.csv").read_text()  # the first table shown
    assert (report["out"] / "tables" / "summary.csv").read_text() in embedded
    for href in p.links:  # relative links point at files that exist
        if not href.startswith(("data:", "#")):
            assert (report["out"] / href).is_file(), href


def test_page_content(report):
    text = report["index"].read_text(encoding="utf-8")
    md = (report["out"] / "report.md").read_text(encoding="utf-8")
    for page in (text, md):
        assert "significantly worse than v on adding" in page
        assert "planned trials have no result yet" in page  # the store is partial
        assert "diverged" in page and "failed" in page
        assert "lower is better" in page or "higher is better" in page or "↓" in page
    assert "Synthetic CPU" in text  # the benchmark's environment from the store
    assert "matplotlib" in text  # the report's own environment
    assert "figures/box_adding_T20.png" in md


def test_summary_matches_the_store(report):
    with Store(report["store"], create=False) as store:
        trials = store.trials_frame()
    s = pd.read_csv(report["out"] / "tables" / "summary.csv")
    assert s["trials"].sum() == len(trials)
    for status in ("ok", "diverged", "failed", "timeout"):
        assert s[status].sum() == int((trials["status"] == status).sum())
    assert (s["diverged"].sum() + s["failed"].sum()) > 0  # the fixture has some, shown as counts
    assert (s["planned"] >= s["trials"]).all() and (s["planned"] > s["trials"]).any()
    cell = trials[
        (trials.task == "adding") & (trials.length == 20) & (trials.variant == "nfg") & (trials.framework == "tf")
    ]
    row = s[(s.task == "adding") & (s.length == 20) & (s.variant == "nfg") & (s.framework == "tf")].iloc[0]
    assert row["mean"] == pytest.approx(cell["test_metric"].dropna().mean())
    assert row["median"] == pytest.approx(cell["test_metric"].dropna().median())
    assert row["best"] == pytest.approx(cell["test_metric"].dropna().min())
    assert row["direction"] == "worse"
    finished = cell["status"].isin(["ok", "diverged"])
    assert row["solved_rate"] == pytest.approx(cell.loc[finished, "solved"].mean())
    ranking = pd.read_csv(report["out"] / "tables" / "ranking.csv")
    assert set(ranking["variant"]) == {"v", "nfg", "cifg", "gru", "rnn"}


def test_forget_bias_finding_matches_the_store(report):
    """The findings give, per task and T, the solved rate at each forget-gate bias the search tried,
    counted here straight from the store: configurations (a task, T, variant, hyperparameters and seed,
    whatever the framework) that have the setting and trained to an outcome, solved when every framework
    run of theirs that trained to an outcome solved."""
    import sqlite3

    conn = sqlite3.connect(report["store"])
    rows = conn.execute(
        "WITH c AS (SELECT task, length, json_extract(hparams, '$.forget_bias') AS fb, MIN(solved) AS solved "
        "  FROM trials WHERE status IN ('ok', 'diverged') AND json_extract(hparams, '$.forget_bias') IS NOT NULL "
        "  GROUP BY task, length, variant, seed, json_extract(hparams, '$.learning_rate'), "
        "           json_extract(hparams, '$.hidden_size'), fb) "
        "SELECT task, length, fb, SUM(solved), COUNT(*) FROM c GROUP BY 1, 2, 3"
    ).fetchall()
    trials = conn.execute("SELECT COUNT(*) FROM trials WHERE status IN ('ok', 'diverged') "
                          "AND json_extract(hparams, '$.forget_bias') IS NOT NULL").fetchone()[0]  # fmt: skip
    conn.close()
    assert sum(r[4] for r in rows) < trials  # configurations, not trials: the frameworks count once
    expected: dict[tuple, list[str]] = {}
    for task, length, setting, solved, n in rows:
        name = setting if isinstance(setting, str) else f"{setting:g}"
        expected.setdefault((task, length), []).append(f"{name}: {100 * solved / n:.0f} % ({solved} of {n}; 95 % CI ")
    assert len(expected) == 4 and all(len(parts) == 3 for parts in expected.values())  # 1, 3 and chrono
    md = (report["out"] / "report.md").read_text(encoding="utf-8")
    page = html.unescape(report["index"].read_text(encoding="utf-8"))
    for (task, length), parts in expected.items():
        sentence = f"On {task}, T = {length}, the solved rate by initial forget-gate bias is "
        for text in (md, page):
            assert sentence in text
            start = text.index(sentence)
            line = text[start : text.index("a configuration counts once", start)]
            for part in parts:
                assert part in line, (part, line)


def test_frameworks_are_compared_with_a_paired_test(report):
    """The synthetic store runs every configuration in both frameworks with a little noise between them:
    the framework table pairs them (n = configurations) and the findings and the figure report the test."""
    tests = pd.read_csv(report["out"] / "tables" / "framework_tests.csv")
    pairs = pd.read_csv(report["out"] / "tables" / "framework_pairs.csv")
    assert len(tests) == 4  # 2 tasks x 2 lengths
    counts = pairs.groupby(["task", "length"]).size()
    assert tests.set_index(["task", "length"])["pairs"].to_dict() == counts.to_dict()
    assert tests["p_holm"].between(0, 1).all() and (tests["p_holm"] >= tests["p"]).all()
    md = (report["out"] / "report.md").read_text(encoding="utf-8")
    assert "Wilcoxon signed-rank test of the pairs" in md and "### Frameworks compared (paired)" in md


def test_verdict_table_lays_out_the_baseline_tests_per_framework(report):
    """Every (variant, task, T) of the comparisons has one verdict row whose per-framework verdicts are the
    comparisons' own; the table opens the page's tables and is in report.md, with the agreement finding."""
    v = pd.read_csv(report["out"] / "tables" / "verdicts.csv")
    c = pd.read_csv(report["out"] / "tables" / "comparisons.csv")
    c = c[c["selection"] == "all"].set_index(["variant", "task", "length", "framework"])["direction"]
    assert len(v) == len(c) // 2 == 16  # 4 variants x 2 tasks x 2 lengths, both frameworks in one row
    for r in v.itertuples(index=False):
        for fw in ("torch", "tf"):
            assert getattr(r, f"direction_{fw}") == c[(r.variant, r.task, r.length, fw)]
        assert r.agree == (r.direction_torch == r.direction_tf)
    md = (report["out"] / "report.md").read_text(encoding="utf-8")
    assert "### Verdicts against the baseline" in md
    assert re.search(r"\| nfg \| worse\??\s\(both\): 0\.0\d+ \(", md)  # synthetic nfg: far worse than v at T = 20
    agree = int(v["agree"].sum())
    assert f"reach the same verdict against v in {agree} of the 16 variant, task and T comparisons" in md
    page = report["index"].read_text(encoding="utf-8")
    assert "<details id='table-verdicts' open>" in page and re.search(r'<td class="worse">worse\??\s\(both\)', page)


def test_marginals_show_every_searched_hyperparameter_and_the_strongest_effect(report):
    """The marginals table holds every searched hyperparameter per task and T, the forget bias with chrono as a
    point of its own, counts of configurations (never trials); the findings phrase the strongest effect."""
    m = pd.read_csv(report["out"] / "tables" / "marginals.csv")
    assert set(m["hyperparameter"]) == {"learning_rate", "hidden_size", "forget_bias"}
    fb = m[m["hyperparameter"] == "forget_bias"]
    assert set(fb["point"]) == {"1", "3", "chrono"} and fb.loc[fb["point"] == "chrono", "named"].all()
    per = m.groupby(["task", "length", "hyperparameter"])["configurations"].sum()
    configs_per_cell, variants = 16, 5
    assert (per <= configs_per_cell * variants).all()  # configurations: the 2 frameworks count once
    ok = m[m["low"].notna()]
    assert (ok["low"] <= ok["median"]).all() and (ok["median"] <= ok["high"]).all()
    md = (report["out"] / "report.md").read_text(encoding="utf-8")
    for task in ("adding", "delayed_recall"):
        assert f"The strongest marginal effect on {task} is the " in md
        assert f"![{task}: learning rate × hidden size](figures/interaction_{task}.png)" in md
    page = html.unescape(report["index"].read_text(encoding="utf-8"))
    assert "The strongest marginal effect on adding is the " in page and "id='fig-marginals_adding'" in page


def test_intervals_and_counts_in_the_tables(report):
    s = pd.read_csv(report["out"] / "tables" / "summary.csv")
    done = s[s["finished"] > 0]
    assert (done["solved_low"] <= done["solved_rate"]).all() and (done["solved_rate"] <= done["solved_high"]).all()
    assert (done["solved"] <= done["finished"]).all() and (done["finished"] <= done["trials"]).all()
    d = pd.read_csv(report["out"] / "tables" / "dependency.csv")
    assert {"solved_low", "solved_high", "finished", "trials"} <= set(d.columns)
    imp = pd.read_csv(report["out"] / "tables" / "importance.csv")
    assert (imp["low"] <= imp["importance"] + 1e-9).all() and (imp["importance"] <= imp["high"] + 1e-9).all()
    configs_per_cell = 16  # the fixture's trials per cell: one configuration each, run in both frameworks
    lstm = imp[imp["family"] == "lstm"]
    assert (lstm["configurations"] > configs_per_cell).all()  # the family's variants pooled, failed trials left out
    assert imp["configurations"].max() <= 3 * configs_per_cell  # never the 96 trials of 3 variants x 2 frameworks


def test_a_too_small_top_10_percent_is_explained_not_left_untested(report):
    """16 trials per cell: each top 10 % holds 2 trials. The report says why it shows and tests none."""
    md = (report["out"] / "report.md").read_text(encoding="utf-8")
    assert "In every task/length/variant/framework cell the best 10 % holds 2 trials, fewer than the 4" in md
    s = pd.read_csv(report["out"] / "tables" / "summary.csv")
    tested = s[s["variant"] != "v"]
    assert set(tested["direction_top"].dropna()) == {"top 10 % from under 4 configurations"}
    assert "not tested" not in set(tested["direction_top"].dropna())
    ranking = pd.read_csv(report["out"] / "tables" / "ranking.csv")
    assert set(ranking["blocks"]) == {4}  # 2 tasks x 2 lengths; the frameworks are not blocks of their own


def test_same_store_same_numbers(report, tmp_path):
    again = build_report(report["store"], tmp_path / "again", probe=False).parent
    for csv in sorted((report["out"] / "tables").glob("*.csv")):
        if csv.stem == "gradient_flow":
            continue
        assert (again / "tables" / csv.name).read_bytes() == csv.read_bytes(), csv.name
    pdfs = sorted(p.name for p in (again / "figures").glob("*.pdf"))
    assert (again / "figures" / pdfs[0]).read_bytes() == (report["out"] / "figures" / pdfs[0]).read_bytes()


# ------------------------------------------------------------------------------------------------------
# the gradient-flow probe
# ------------------------------------------------------------------------------------------------------
def test_gradient_flow_in_the_report(report):
    out = report["out"]
    if not (out / "figures" / "gradient_flow.png").exists():
        pytest.skip("PyTorch is not installed: the report shows a note instead (test_probe_degrades covers it)")
    g = pd.read_csv(out / "tables" / "gradient_flow.csv")
    assert set(g["phase"]) == {"init", "trained"}
    assert {"v", "rnn", "gru"} <= set(g["variant"])
    assert (g["grad_norm"] >= 0).all() and np.isfinite(g["grad_norm"]).all()
    assert "gradient that reaches the first step" in report["index"].read_text(encoding="utf-8")


def test_hidden_gradient_is_the_total_derivative():
    """Against an independent route: add a zero perturbation d_t to each h_t; ∂loss/∂d_t = ∂loss/∂h_t."""
    torch = pytest.importorskip("torch")
    from harness.backends.torch_backend import task_loss
    from harness.backends.torch_ops import TORCH_OPS
    from harness.cell.model import init_model_params, split_params
    from harness.diagnostics.probes import hidden_gradient_norms
    from harness.plugins.registry import registry

    task = registry().task("adding")
    batch = task.batch(12, 4, seed=3)
    for vid in ("rnn", "v", "gru"):
        variant = registry().variant(vid)
        params = init_model_params(variant, task, 8, seed=1, lag=12)
        norms, loss = hidden_gradient_norms(variant, params, task, batch.inputs, batch.targets)
        p = {k: torch.tensor(v, dtype=torch.float64) for k, v in params.items()}
        layer, readout = split_params(p)
        x = torch.as_tensor(batch.inputs, dtype=torch.float64)
        state = tuple(torch.zeros(4, s, dtype=torch.float64) for s in variant.state_sizes(8))
        deltas, hs = [], []
        for t in range(x.shape[1]):
            h, state = variant.step(TORCH_OPS, layer, x[:, t, :], state)
            d = torch.zeros_like(h, requires_grad=True)
            h = h + d
            state = (h, *state[1:])
            deltas.append(d)
            hs.append(h)
        out = torch.stack(hs, 1) @ readout["readout.W"] + readout["readout.b"]
        ref_loss = task_loss(task, out, torch.as_tensor(batch.targets, dtype=torch.float64))
        grads = torch.autograd.grad(ref_loss, deltas)
        ref = np.array([float(g.norm(dim=-1).mean()) for g in grads])
        assert loss == pytest.approx(float(ref_loss.detach()))
        np.testing.assert_allclose(norms, ref, rtol=1e-10, atol=1e-300)
        assert norms[0] < norms[-1]  # the signal fades going back in time at initialisation


def test_probe_is_seeded():
    pytest.importorskip("torch")
    from harness.diagnostics.probes import probe

    spec = {
        "backend": "harness.backends.torch_backend",
        "task": "adding",
        "length": 8,
        "variants": ["rnn", "v"],
        "hidden_size": 8,
        "batch_size": 4,
        "train_steps": 3,
        "learning_rate": 0.01,
        "seed": 0,
    }
    a, b = probe(spec), probe(spec)
    assert a == b
    assert {r["phase"] for r in a["rows"]} == {"init", "trained"}


def test_probe_degrades_to_a_note(tmp_path, monkeypatch):
    import harness.report.build as build
    from harness.diagnostics.probes import gradient_flow

    result = gradient_flow(["v"], "adding", 10, backend="harness.backends.no_such_backend", timeout=60)
    assert result.note and "could not load" in result.note and not result.ok
    monkeypatch.setattr(
        build, "gradient_flow", lambda v, t, T: gradient_flow(v, t, T, backend="torch_is_missing_here", timeout=60)
    )
    store = write_synthetic_store(
        tmp_path / "s.sqlite", tasks={"adding": (10,)}, variants=("v", "rnn"), trials_per_cell=3
    )
    index = build_report(store, tmp_path / "out", probe=True)
    text = index.read_text(encoding="utf-8")
    assert "Gradient flow: " in text and "torch_is_missing_here" in text
    assert not (index.parent / "figures" / "gradient_flow.png").exists()


# ------------------------------------------------------------------------------------------------------
# degraded stores and errors
# ------------------------------------------------------------------------------------------------------
def test_one_task_one_variant_one_framework(tmp_path):
    store = write_synthetic_store(
        tmp_path / "s.sqlite",
        tasks={"adding": (20,)},
        variants=("v",),
        frameworks=("torch",),
        trials_per_cell=4,
        failures=False,
    )
    index = build_report(store, tmp_path / "out", probe=False)
    text = index.read_text(encoding="utf-8")
    assert not parse(index).errors
    assert "one length only" in text  # dependency figure skipped with a note
    assert "no configuration has a test metric in both" in text  # framework comparison skipped
    assert "Only one variant" in text
    assert (index.parent / "figures" / "box_adding_T20.png").exists()


def test_subset_without_v_and_a_named_baseline(tmp_path):
    store = write_synthetic_store(
        tmp_path / "s.sqlite",
        tasks={"delayed_recall": (10, 20)},
        variants=("rnn", "gru"),
        frameworks=("tf",),
        trials_per_cell=4,
    )
    index = build_report(store, tmp_path / "default", probe=False)
    comp = pd.read_csv(index.parent / "tables" / "comparisons.csv")
    assert set(comp["baseline"]) == {"gru"}  # no v: the first in the catalogue's order
    index = build_report(store, tmp_path / "named", baseline="rnn", probe=False)
    comp = pd.read_csv(index.parent / "tables" / "comparisons.csv")
    assert set(comp["baseline"]) == {"rnn"} and set(comp["variant"]) == {"gru"}
    index = build_report(store, tmp_path / "missing", baseline="v", probe=False)
    assert "The requested baseline 'v' has no trials" in html.unescape(index.read_text(encoding="utf-8"))


def test_suite_filter_and_default_folder(tmp_path, monkeypatch):
    store = write_synthetic_store(
        tmp_path / "s.sqlite", tasks={"adding": (10,)}, variants=("v", "nfg"), trials_per_cell=3, suite="tiny"
    )
    monkeypatch.chdir(tmp_path)
    index = build_report(store, suite="tiny", probe=False)
    assert index.resolve() == (tmp_path / "reports" / "tiny" / "index.html").resolve()
    with pytest.raises(UsageError, match="no trials of suite 'nope'.*tiny"):
        build_report(store, suite="nope", probe=False)
    index = build_report(store, probe=False)  # no suite: every trial, named after the latest run's suite
    assert index.parent.name == "tiny"


def test_a_suites_report_follows_its_current_plan(tmp_path):
    """Trials an edited suite file no longer plans leave its report, which says how many it left out."""
    path = write_synthetic_store(
        tmp_path / "s.sqlite", tasks={"adding": (10, 20)}, variants=("v", "nfg"), trials_per_cell=3, suite="tiny"
    )
    with Store(path) as store:
        plans = store.plans_frame()
        kept = [Trial.from_json(t) for t in plans["trial"] if Trial.from_json(t).length == 10]
        dropped = int((store.trials_frame()["length"] == 20).sum())
        store.add_plan("tiny", kept, whole=True)  # the file now plans adding T = 10 only
    index = build_report(path, tmp_path / "out", suite="tiny", probe=False)
    summary = pd.read_csv(index.parent / "tables" / "summary.csv")
    assert set(summary["length"]) == {10}
    assert f"{dropped} stored trials of suite 'tiny' are left out" in (index.parent / "report.md").read_text()
    everything = build_report(path, tmp_path / "all", probe=False)  # no suite named: every stored trial
    assert set(pd.read_csv(everything.parent / "tables" / "summary.csv")["length"]) == {10, 20}


def test_missing_and_empty_stores_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="no results store") as err:
        build_report(tmp_path / "nothing.sqlite", tmp_path / "out")
    assert err.value.exit_code == 2
    Store(tmp_path / "empty.sqlite").close()
    with pytest.raises(UsageError, match="no finished trial"):
        build_report(tmp_path / "empty.sqlite", tmp_path / "out")
    (tmp_path / "junk.sqlite").write_text("not a database at all, just some text " * 20)
    with pytest.raises(UsageError):
        build_report(tmp_path / "junk.sqlite", tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------------
# in a real browser
# ------------------------------------------------------------------------------------------------------
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"headless Chromium is not installed ({CHROMIUM} is absent)")
def test_page_renders_in_headless_chromium(report, tmp_path):
    url = report["index"].resolve().as_uri()
    flags = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=10000",
    ]
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    n = len(list((report["out"] / "figures").glob("*.png")))
    # the page's own load handler counts images that decoded and take up space on the page
    assert f'data-figures-loaded="{n}/{n}"' in dom, re.findall(r"data-figures-loaded=\"[^\"]*\"", dom)
    assert '<p class="broken">' not in dom
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, "--window-size=1280,2000", f"--screenshot={shot}", url], capture_output=True, timeout=120)
    from matplotlib.image import imread

    pixels = imread(shot)[..., :3]
    assert pixels.shape[0] >= 1000
    # the first box plot is on screen: the baseline's blue (#0173b2) fills its boxes
    blue = np.abs(pixels - np.array([0x01, 0x73, 0xB2]) / 255).max(axis=-1) < 0.06
    assert blue.sum() > 500, blue.sum()


def test_report_imports_no_framework(tmp_path):
    """Analysis and report never import PyTorch or TensorFlow (only the probe's child process does)."""
    store = write_synthetic_store(
        tmp_path / "s.sqlite", tasks={"adding": (10,)}, variants=("v", "rnn"), trials_per_cell=3
    )
    code = (
        "import sys; from harness.report import build_report; "
        f"build_report({str(store)!r}, {str(tmp_path / 'out')!r}, probe=False); "
        "loaded = sorted(m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules); "
        "assert not loaded, loaded"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_rebuilding_removes_only_report_files_the_manifest_names(tmp_path):
    """An older build listed "whatever changed meanwhile": the store, its -wal, a user's file. A rebuild
    removes only what the report itself writes, and never an SQLite database or its companions."""
    from harness.report.build import MANIFEST, _clear_previous

    out = tmp_path / "paper"
    (out / "figures").mkdir(parents=True)
    Store(out / "live.sqlite").close()
    keep = [out / "live.sqlite", out / "live.sqlite-wal", out / "notes.txt", out / "figures" / "my_fig1.pdf"]
    for path in keep[1:]:
        path.write_text("not the report's")
    Store(out / "figures" / "copy.sqlite").close()
    keep.append(out / "figures" / "copy.sqlite")
    generated = [out / "index.html", out / "figures" / "box.png"]
    for path in generated:
        path.write_text("generated")
    listed = [*keep[:3], keep[4], *generated, "../outside.txt"]
    (tmp_path / "outside.txt").write_text("outside")
    (out / MANIFEST).write_text("\n".join(str(Path(p).relative_to(out)) if Path(p).is_absolute() else p
                                          for p in listed) + "\n")  # fmt: skip
    _clear_previous(out)
    assert all(p.exists() for p in keep) and (tmp_path / "outside.txt").exists()
    assert not any(p.exists() for p in generated)


def _writer(path: Path, stop: threading.Event, started: threading.Event, user_file: Path) -> None:
    """A run writing trials into the store at ``path`` until ``stop`` (each in its own transaction)."""
    from harness.plugins.registry import registry
    from harness.training.solo import TrialResult
    from harness.trials.protocol import check_hparams
    from harness.trials.trial import Trial

    task = registry().task("adding")
    with Store(path) as store:
        seed = 0
        while not stop.is_set():
            trial = Trial("adding", 10, "rnn", "torch", "cpu", check_hparams({"max_steps": 5}), 1000 + seed)
            result = TrialResult(status="ok", steps=5, validation={"mse": 0.1, "loss": 0.1},
                                 test_best={"mse": 0.1, "loss": 0.1}, test_last={"mse": 0.1, "loss": 0.1},
                                 curve=[(0, "validation", 0.2, 0.2)])  # fmt: skip
            store.record("live", "live", trial, task, result)
            seed += 1
            if seed == 3:
                user_file.write_text("dropped into the folder during a build")
                started.set()
            time.sleep(0.02)


def test_report_into_the_store_folder_while_a_run_writes_there_keeps_the_store(tmp_path):
    store = write_synthetic_store(tmp_path / "live.sqlite", tasks={"adding": (10,)}, variants=("v", "rnn"),
                                  frameworks=("torch",), trials_per_cell=3)  # fmt: skip
    before = Store(store, read_only=True).count()
    user_file = tmp_path / "notes.txt"
    stop, started = threading.Event(), threading.Event()
    writer = threading.Thread(target=_writer, args=(store, stop, started, user_file))
    writer.start()
    try:
        assert started.wait(30)
        for _ in range(2):
            build_report(store, tmp_path, probe=False)
            assert store.exists() and user_file.exists()
    finally:
        stop.set()
        writer.join()
    with Store(store, read_only=True) as s:
        assert s.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert s.count() > before + 3
    build_report(store, tmp_path, probe=False)  # a third build, the run over: still nothing of the store goes
    assert store.exists() and user_file.exists() and Store(store, read_only=True).count() > before + 3


def test_a_store_where_the_report_writes_is_refused(tmp_path):
    store = write_synthetic_store(tmp_path / "index.html", tasks={"adding": (10,)}, variants=("v",),
                                  frameworks=("torch",), trials_per_cell=2)  # fmt: skip
    with pytest.raises(UsageError, match="lies where the report writes"):
        build_report(store, tmp_path, probe=False)
    assert Store(store, read_only=True).count() > 0


def test_a_suite_named_dot_dot_reports_inside_reports(tmp_path, monkeypatch):
    store = write_synthetic_store(tmp_path / "s.sqlite", tasks={"adding": (10,)}, variants=("v",),
                                  frameworks=("torch",), trials_per_cell=2, suite="..")  # fmt: skip
    monkeypatch.chdir(tmp_path)
    index = build_report(store, probe=False)
    folder = index.parent.resolve()
    assert folder.parent == (tmp_path / "reports").resolve(), folder
    assert not (tmp_path / "index.html").exists()


def test_report_out_at_a_file_exits_2(cli, tmp_path):
    store = write_synthetic_store(tmp_path / "s.sqlite", tasks={"adding": (10,)}, variants=("v",),
                                  frameworks=("torch",), trials_per_cell=2)  # fmt: skip
    target = tmp_path / "a-file.txt"
    target.write_text("mine")
    code, out, err = cli("report", "--store", store, "--out", target, "--no-probe")
    assert code == 2 and str(target) in err and "Traceback" not in err
    assert target.read_text() == "mine"


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"),
                                   PermissionError(errno.EACCES, "Permission denied")])  # fmt: skip
def test_report_that_cannot_be_written_exits_2_naming_the_file(cli, tmp_path, monkeypatch, error):
    import harness.report.build as build

    store = write_synthetic_store(tmp_path / "s.sqlite", tasks={"adding": (10,)}, variants=("v",),
                                  frameworks=("torch",), trials_per_cell=2)  # fmt: skip

    def full(path, *args, **kwargs):
        error.filename = str(path)
        raise error

    monkeypatch.setattr(build, "write_markdown", full)
    code, out, err = cli("report", "--store", store, "--out", tmp_path / "out", "--no-probe")
    assert code == 2 and "Traceback" not in err, err
    assert str(tmp_path / "out" / "report.md") in err and error.strerror in err


def test_report_of_a_read_only_store_leaves_nothing_beside_it(cli, tmp_path, monkeypatch):
    store = write_synthetic_store(tmp_path / "ro" / "s.sqlite", tasks={"adding": (10,)}, variants=("v",),
                                  frameworks=("torch",), trials_per_cell=2)  # fmt: skip
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if mode & os.W_OK else real_access(p, mode, **kw))
    code, out, err = cli("report", "--store", store, "--out", tmp_path / "out", "--no-probe")
    assert code == 0, err
    assert sorted(p.name for p in store.parent.iterdir()) == ["s.sqlite"]


def test_unknown_baseline_is_a_usage_error(tmp_path):
    from harness.errors import UsageError
    from harness.report.build import build_report
    from tests.synthetic_store import write_synthetic_store

    store = write_synthetic_store(tmp_path / "s.sqlite")
    with pytest.raises(UsageError, match=r"unknown variant 'nope' \(from --baseline\)"):
        build_report(store, out_dir=tmp_path / "r", baseline="nope", probe=False)


# ------------------------------------------------------------------------------------------------------
# trials still running, and stores that do not record metadata
# ------------------------------------------------------------------------------------------------------
def start_running(path: Path, seeds_by_variant: dict[str, list[int]]) -> list[str]:
    """Claim trials of adding T=10 in PyTorch (as this process: a live driver) and give each two
    evaluation points, through the Store API as a run does. Returns their ids."""
    from harness.store.metadata import from_registry
    from harness.trials.protocol import check_hparams
    from harness.trials.trial import Trial

    ids = []
    with Store(path) as store:
        run = store.start_run("synthetic", ["rnn-bench", "run"], {}, metadata=from_registry(seeds_by_variant, []))
        for variant, seeds in seeds_by_variant.items():
            for seed in seeds:
                trial = Trial("adding", 10, variant, "torch", "cpu", check_hparams({"max_steps": 1000}), seed)
                assert store.claim(trial.id, run, None)
                store.record_progress(run, trial, 100, "validation", 0.15, 0.15)
                store.record_progress(run, trial, 200, "validation", 0.12, 0.12)
                ids.append(trial.id)
    return ids


def test_running_trials_are_counted_and_drawn_as_running_and_in_no_statistic(tmp_path):
    store = write_synthetic_store(tmp_path / "s.sqlite", tasks={"adding": (10,)}, variants=("v", "rnn"),
                                  frameworks=("torch",), trials_per_cell=4, failures=False)  # fmt: skip
    before = build_report(store, tmp_path / "before", probe=False).parent
    start_running(store, {"rnn": [100], "v": [100, 101], "gru": [100]})  # gru: a cell with no finished trial
    index = build_report(store, tmp_path / "after", probe=False)
    md = (index.parent / "report.md").read_text(encoding="utf-8")
    assert "4 trials were still running when this report was built" in md
    after = pd.read_csv(index.parent / "tables" / "summary.csv").set_index("variant")
    assert dict(after["running"]) == {"v": 2, "rnn": 1, "gru": 1}
    assert after.loc["gru", "trials"] == 0 and after.loc["gru", "failed"] == 0 and after.loc["gru", "solved"] == 0
    assert np.isnan(after.loc["gru", "solved_rate"])  # running: not unsolved
    old = pd.read_csv(before / "tables" / "summary.csv").set_index("variant")
    for col in ("trials", "failed", "solved", "solved_rate", "mean", "top_mean", "p_adjusted"):
        assert after.loc[["v", "rnn"], col].equals(old.loc[["v", "rnn"], col]), col  # finished trials only
    assert (index.parent / "tables" / "ranking.csv").read_bytes() == (before / "tables" / "ranking.csv").read_bytes()
    assert "running" in (index.parent / "tables" / "summary.md").read_text(encoding="utf-8")
    assert "still running when the report was built" in md  # the learning curves' caption
    assert "gru" in index.read_text(encoding="utf-8")  # its curve so far is drawn: a colour in the legend


def test_a_store_without_metadata_reports_with_the_codes_and_says_so(tmp_path):
    store = write_synthetic_store(tmp_path / "s.sqlite", tasks={"adding": (10,)}, variants=("v", "rnn"),
                                  frameworks=("torch",), trials_per_cell=3, metadata=False)  # fmt: skip
    index = build_report(store, tmp_path / "out", probe=False)
    md = (index.parent / "report.md").read_text(encoding="utf-8")
    assert "metadata of variant 'rnn', variant 'v', task 'adding' (T = 10)" in md
    assert "come from the current code" in md
    assert "solved when mse < 0.01" in md and "vanilla (peephole) LSTM" in index.read_text(encoding="utf-8")


def test_a_read_only_version_2_store_still_reports(cli, tmp_path, monkeypatch):
    store = write_synthetic_store(tmp_path / "ro" / "s.sqlite", tasks={"adding": (10,)}, variants=("v", "rnn"),
                                  frameworks=("torch",), trials_per_cell=3, metadata=False)  # fmt: skip
    import sqlite3

    with sqlite3.connect(store) as conn:  # back to schema version 2
        conn.executescript("DROP TABLE variants; DROP TABLE tasks; DROP TABLE progress; "
                           "ALTER TABLE runs DROP COLUMN suite_text; "
                           "UPDATE meta SET value = '2' WHERE key = 'schema_version';")  # fmt: skip
    conn.close()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if mode & os.W_OK else real_access(p, mode, **kw))
    code, out, err = cli("report", "--store", store, "--out", tmp_path / "out", "--no-probe", "--suite", "synthetic")
    assert code == 0, err
    md = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "come from the current code" in md and "solved when mse < 0.01" in md
    assert sorted(p.name for p in store.parent.iterdir()) == ["s.sqlite"]
    tables = {r[0] for r in sqlite3.connect(store).execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "variants" not in tables  # a read-only open adds nothing


def test_gradient_finding_phrases_the_probes_own_ratios():
    """The probe computes ‖∂loss/∂h_0‖ / ‖∂loss/∂h_(L-1)‖ per variant; the finding only words it."""
    from harness.diagnostics.probes import GradientFlow
    from harness.report.findings import gradient_sentences

    rows = [{"variant": v, "phase": "init", "t": t, "grad_norm": g}
            for v, norms in (("v", (0.5, 1.0)), ("rnn", (0.001, 1.0)), ("dead", (1.0, 0.0)))
            for t, g in enumerate(norms)]  # fmt: skip
    flow = GradientFlow("adding", 2, ["v", "rnn", "dead"], 8, 4, 0, 0.01, 0, rows=rows)
    assert flow.reach_ratios() == {"rnn": 0.001, "v": 0.5}  # increasing; "dead" has no last-step gradient
    (sentence,) = gradient_sentences(flow)
    assert "rnn 0.001, v 0.5" in sentence and "(rnn loses the most)" in sentence


def test_a_comparisons_n_is_stated_in_the_units_its_tests_counted():
    from types import SimpleNamespace

    from harness.report.findings import _n_words

    def row(**kw):
        base = dict(paired=True, pairs=10, configurations=10, n=10, n_baseline=10, units=10, units_baseline=10)
        return SimpleNamespace(**{**base, **kw})

    assert _n_words(row()) == "10 pairs"
    assert _n_words(row(pairs=40, configurations=20)) == "40 pairs of 20 configurations"
    assert _n_words(row(paired=False, n=40, n_baseline=38, units=20, units_baseline=20)) == (
        "20 vs 20 configurations (40 vs 38 trials)")
    assert _n_words(row(paired=False, n=12, n_baseline=11, units=12, units_baseline=11)) == "12 vs 11 trials"


def test_the_page_template_escapes_every_text_it_shows(tmp_path):
    """Suite names, notes, findings and the suite file are text: markup in them must not become markup."""
    from markupsafe import Markup

    from harness.report.context import Context
    from harness.report.findings import Findings
    from harness.report.page import page_template

    ctx = Context(suite="<b>s</b>", store_path=tmp_path / "x.sqlite", progress={}, suite_lines=[("k", "<i>v</i>")],
                  environment={}, report_environment={}, generated="now", notes=["<script>alert(1)</script>"],
                  description="a & b", suite_text="[x]\n<y>")  # fmt: skip
    page = page_template().render(
        ctx=ctx, css=Markup("p{}"), script=Markup("var a = 1 < 2;"), n_trials=0, baseline="<v>", toc=[("a", "<t>")],
        found=Findings("<c>", ["<h>"], {}), verdicts=None, sections=[], tables=[], method=["<m>"], legend=[],
        environment=[], report_environment=[("<k>", "<w>")], downloads=[], trials_csv="",
    )  # fmt: skip
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    for raw in ("<b>s</b>", "<i>v</i>", "<t>", "<c>", "<h>", "<m>", "<y>", "<v>", "<k>", "<w>"):
        assert raw not in page, raw
    assert "a &amp; b" in page and "var a = 1 < 2;" in page  # the page's own script is markup, kept as it is
    assert page.startswith("<!DOCTYPE html>\n") and page.endswith("</html>\n")
