"""Hyperparameter importance per variant family (issue 16, item 7): on a synthetic set of configurations
whose answer is known (the lstm family's test metric rides on the forget-gate bias, the gru family's, which
has no forget gate, on the learning rate), fANOVA and the one-way η² name the same leader in each family;
the per-task summary never mixes families; and the report's sentence names each family's leader, gives the
forget-gate bias's share and no number averaged over families."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from test_analysis import trials  # a trials frame as the store gives it, from a few fields per row

from harness.analysis import importance as I
from harness.analysis import study as A
from harness.report.findings import importance_sentences
from harness.report.tables import importance_table, pct

TASK = "delayed_recall"
LENGTHS = (10, 40)
N = 48  # configurations per family and length
FAMILIES = {"v": "lstm", "gru": "gru"}
FORGET_BIAS = (1, 3, "chrono")
#: the lstm family's test metric by initial forget-gate bias (chrono solves, 1 does not)
FB_EFFECT = {1: 0.8, 3: 0.5, "chrono": 0.1}


def _configs(lengths: tuple[int, ...] = LENGTHS, n: int = N, seed: int = 0) -> pd.DataFrame:
    """``harness.analysis.study.configurations`` of a made-up search: per length, ``n`` configurations of ``v``
    (lstm: learning rate, hidden size and forget-gate bias searched; the metric is mostly the forget bias)
    and ``n`` of ``gru`` (no forget-gate bias at all; the metric is mostly the learning rate)."""
    rng = np.random.default_rng(seed)
    rows = []
    for T in lengths:
        for variant in ("v", "gru"):
            for k in range(n):
                lr = float(10 ** rng.uniform(-3.5, -1.5))
                hidden = int(rng.choice([16, 32, 64]))
                hp = {"learning_rate": lr, "hidden_size": hidden}
                lr_effect = 0.15 * (math.log10(lr) + 2.5) ** 2  # 0 at 3e-3, 0.15 one decade away
                if variant == "v":
                    hp["forget_bias"] = FORGET_BIAS[k % 3]
                    metric = FB_EFFECT[hp["forget_bias"]] + 0.2 * lr_effect + rng.normal(0, 0.03)
                else:
                    metric = 0.2 + 2.0 * lr_effect + 0.01 * (hidden == 16) + rng.normal(0, 0.03)
                rows.append({"task": TASK, "length": T, "variant": variant, "metric": "error", "test_metric": metric,
                             "val_metric": metric, "hparams": json.dumps(hp), "seed": k,
                             **{f"hp.{key}": v for key, v in hp.items()}})  # fmt: skip
    return A.configurations(trials(rows))


def _leaders(imp: pd.DataFrame, column: str) -> dict[tuple[int, str], str]:
    """(T, family) -> the hyperparameter with the largest ``column``."""
    best = imp.sort_values([column, "hyperparameter"], ascending=[False, True]).groupby(["length", "family"]).head(1)
    return {(int(r.length), r.family): r.hyperparameter for r in best.itertuples()}


@pytest.fixture(scope="module")
def configs() -> pd.DataFrame:
    return _configs()


@pytest.fixture(scope="module")
def fanova(configs) -> pd.DataFrame:
    if not I.fanova_available():
        pytest.skip("Optuna's fANOVA needs scikit-learn, which is not installed")
    imp, method = I.importance(configs, FAMILIES, method="fanova", resamples=2)
    assert method == "fanova"
    return imp


def _analysis(imp: pd.DataFrame, method: str) -> A.Analysis:
    """An Analysis with only what the importance sentence and table read."""
    empty = pd.DataFrame()
    return A.Analysis(
        trials=empty, top=empty, baseline="v", variants=["v", "gru"], frameworks=["torch"], tasks={},
        info={v: A.VariantInfo(v, v, f) for v, f in FAMILIES.items()}, comparisons=empty, summary=empty,
        ranking=None, dependency=empty, learning=empty, pairs=empty, speed=empty, importance=imp,
        importance_method=method, importance_summary=I.importance_by_task(imp),
    )  # fmt: skip


# ------------------------------------------------------------------------------------------------------
# (a) the simple model and fANOVA agree where the answer is known
# ------------------------------------------------------------------------------------------------------
def test_eta_squared_names_the_known_leader_in_each_family(configs):
    eta = I.eta_squared(configs, FAMILIES)
    assert set(eta["family"]) == {"lstm", "gru"}
    assert set(eta.loc[eta["family"] == "gru", "hyperparameter"]) == {"learning_rate", "hidden_size"}  # no forget gate
    assert set(eta.loc[eta["family"] == "lstm", "hyperparameter"]) == {"learning_rate", "hidden_size", "forget_bias"}
    want = {(T, "lstm"): "forget_bias" for T in LENGTHS} | {(T, "gru"): "learning_rate" for T in LENGTHS}
    assert _leaders(eta, "eta2") == want
    lstm = eta[eta["family"] == "lstm"].set_index(["length", "hyperparameter"])["eta2"]
    assert all(lstm[(T, "forget_bias")] > 0.7 for T in LENGTHS)
    assert ((eta["eta2"] >= 0) & (eta["eta2"] <= 1)).all()


def test_eta_squared_is_the_between_over_the_total_sum_of_squares():
    """By hand, on a categorical factor: groups a (1, 3) and b (5, 7) -> between 16, total 20."""
    values = [("a", 1.0), ("a", 3.0), ("b", 5.0), ("b", 7.0)]
    rows = [{"test_metric": y, "hparams": json.dumps({"forget_bias": fb}), "seed": k, "hp.forget_bias": fb,
             "hp.hidden_size": 32} for k, (fb, y) in enumerate(values)]  # fmt: skip
    eta = I.eta_squared(A.configurations(trials(rows)), {"v": "lstm"}, min_configurations=4)
    assert eta.set_index("hyperparameter")["eta2"].to_dict() == pytest.approx({"forget_bias": 0.8})


def test_fanova_and_eta_squared_agree_on_the_leader_per_family(configs, fanova):
    want = {(T, "lstm"): "forget_bias" for T in LENGTHS} | {(T, "gru"): "learning_rate" for T in LENGTHS}
    assert _leaders(fanova, "importance") == want
    assert _leaders(fanova, "eta2") == want  # the eta2 column: the simple model on the same configurations
    eta = I.eta_squared(configs, FAMILIES)
    merged = fanova.merge(eta, on=["task", "length", "family", "hyperparameter"], suffixes=("", "_alone"))
    assert len(merged) == len(fanova) and np.allclose(merged["eta2"], merged["eta2_alone"])
    assert (fanova.loc[fanova["hyperparameter"] == "forget_bias", "family"] == "lstm").all()


def test_the_eta2_fallback_fills_both_columns_alike(configs):
    imp, method = I.importance(configs, FAMILIES, method="eta2", resamples=0)
    assert method == "eta2" and list(imp.columns) == I.COLUMNS
    assert np.allclose(imp["importance"], imp["eta2"])


# ------------------------------------------------------------------------------------------------------
# (b) the summary per task and family, averaged over lengths only
# ------------------------------------------------------------------------------------------------------
def test_summary_is_per_task_and_family_and_never_mixes_families(fanova):
    summary = I.importance_by_task(fanova)
    assert {"task", "family", "hyperparameter", "importance", "eta2", "groups"} <= set(summary.columns)
    assert not summary.duplicated(["task", "family", "hyperparameter"]).any()
    assert len(summary) == len(fanova.drop_duplicates(["task", "family", "hyperparameter"]))
    assert set(summary["groups"]) == {len(LENGTHS)}
    for r in summary.itertuples():  # each row: that family's mean over lengths, and nothing else
        own = fanova[(fanova["task"] == r.task) & (fanova["family"] == r.family)
                     & (fanova["hyperparameter"] == r.hyperparameter)]  # fmt: skip
        assert r.importance == pytest.approx(own["importance"].mean())
        assert r.eta2 == pytest.approx(own["eta2"].mean())
    assert "forget_bias" not in set(summary.loc[summary["family"] == "gru", "hyperparameter"])
    leaders = summary.groupby("family").head(1).set_index("family")["hyperparameter"].to_dict()
    assert leaders == {"lstm": "forget_bias", "gru": "learning_rate"}


def test_summary_of_a_frame_without_eta2():
    imp = pd.DataFrame({"task": ["a"] * 4, "length": [1, 1, 1, 1], "family": ["f", "f", "g", "g"],
                        "hyperparameter": ["lr", "h", "lr", "h"], "importance": [0.6, 0.1, 0.2, 0.3]})  # fmt: skip
    out = I.importance_by_task(imp)
    assert list(zip(out["family"], out["hyperparameter"])) == [("f", "lr"), ("f", "h"), ("g", "h"), ("g", "lr")]
    assert out["eta2"].isna().all() and out["importance"].tolist() == pytest.approx([0.6, 0.1, 0.3, 0.2])


# ------------------------------------------------------------------------------------------------------
# (c) the report's sentence and table
# ------------------------------------------------------------------------------------------------------
def test_sentence_names_each_family_and_the_forget_bias_and_no_cross_family_mean(fanova):
    an = _analysis(fanova, "fanova")
    (sentence,) = importance_sentences(an)
    assert sentence.startswith(f"On {TASK},") and "fANOVA" in sentence and "η²" in sentence
    assert "in the lstm (v) family, forget-gate bias leads with" in sentence
    assert "in the gru (gru) family, learning rate leads with" in sentence
    assert "disagree" not in sentence  # both methods lead with the same hyperparameter in both families
    assert "averaged over them" in sentence and "mean over lengths and variant families" not in sentence
    # every percentage is one family's number (its importance or η², mean over lengths) ...
    summary = an.importance_summary
    own = {pct(x) for x in pd.concat([summary["importance"], summary["eta2"]])}
    shown = re.findall(r"\d+ %", sentence)
    assert shown and set(shown) <= own
    # ... and the learning rate's mean over the two families, the old headline, is not among them
    lr = summary[summary["hyperparameter"] == "learning_rate"]
    mixed = {pct(lr["importance"].mean()), pct(lr["eta2"].mean())}
    assert not mixed & own and not mixed & set(shown)
    lstm = summary[summary["family"] == "lstm"].set_index("hyperparameter")
    assert f"forget-gate bias leads with {pct(lstm.loc['forget_bias', 'importance'])}" in sentence


def test_sentence_gives_the_forget_bias_where_it_does_not_lead_and_says_when_the_methods_disagree(fanova):
    imp = fanova.copy()
    lstm = imp["family"] == "lstm"
    imp.loc[lstm & (imp["hyperparameter"] == "learning_rate"), "importance"] = 0.9  # fANOVA: the learning rate,
    imp.loc[lstm & (imp["hyperparameter"] == "forget_bias"), "importance"] = 0.05  # η²: still the forget bias
    (sentence,) = importance_sentences(_analysis(imp, "fanova"))
    assert "in the lstm (v) family, learning rate leads with 90 %" in sentence
    assert "the forget-gate bias explains 5 %" in sentence
    assert "the methods disagree: η² puts forget-gate bias first" in sentence


def test_sentence_with_the_eta2_fallback_names_the_method(configs):
    imp, method = I.importance(configs, FAMILIES, method="eta2", resamples=0)
    (sentence,) = importance_sentences(_analysis(imp, method))
    assert "one-way ANOVA η²" in sentence and "fANOVA" not in sentence and "disagree" not in sentence
    assert "forget-gate bias leads with" in sentence


def test_table_shows_eta2_and_says_per_family(fanova):
    table = importance_table(_analysis(fanova, "fanova"))
    assert "one-way η²" in table.display.columns and "eta2" in table.data.columns
    assert "variant family" in table.caption and "averaged over families" in table.caption
