"""The box plots mark a variant significantly better than the baseline with ▲ and one significantly worse
with ▼, in the direction of the task's metric, and the legend says so."""

from __future__ import annotations

import json

import pandas as pd

from harness.analysis import study as A
from harness.report import figures
from harness.report.palette import Palette

#: adding (MSE, lower is better): cifg clearly lower than the baseline v, nfg clearly higher
#: (8 pairs: the paired rank test's smallest p, 2/2^8, survives Holm over the two comparisons)
METRICS = {"v": [1, 2, 3, 4, 5, 6, 7, 8], "cifg": [0.1 * k for k in range(1, 9)], "nfg": list(range(11, 19))}


def trials_frame() -> pd.DataFrame:
    rows = []
    for variant, values in METRICS.items():
        for i, x in enumerate(values):
            rows.append({
                "trial_id": f"{variant}{i}", "task": "adding", "length": 10, "variant": variant,
                "framework": "torch", "status": "ok", "metric": "mse", "higher_is_better": 0,
                "baseline_metric": 1 / 6, "val_metric": x, "val_loss": x, "test_metric": x, "solved": 0,
                "steps_to_solve": None, "steps_per_second": 100.0, "param_count": 100, "seed": i,
                "device": "cpu", "hparams": json.dumps({"learning_rate": 1e-3}),
            })  # fmt: skip
    return pd.DataFrame(rows)


class Captured(figures.FigureSet):
    """Keeps the figures instead of writing them."""

    def save(self, fig, key, section, title, caption) -> None:
        self.figures = {**getattr(self, "figures", {}), key: fig}


def test_better_is_up_and_worse_is_down(tmp_path):
    an = A.analyse(trials_frame(), baseline="v")
    verdicts = an.comparisons[an.comparisons["selection"] == "all"].set_index("variant")["direction"]
    assert dict(verdicts) == {"cifg": "better", "nfg": "worse"}
    figs = Captured(tmp_path)
    figures.variant_boxes(an, figs, Palette(an.variants), "adding", an.tasks["adding"], 10)
    fig = figs.figures["box_adding_T10"]
    marks = {an.variants[round(t.xy[0])]: t.get_text() for ax in fig.axes for t in ax.texts if t.get_text()}
    assert marks == {"cifg": "▲", "nfg": "▼"}
    legend = {h.get_label(): h.get_marker() for h in fig.legends[0].legend_handles if hasattr(h, "get_marker")}
    assert legend["better than v*"] == "$▲$" and legend["worse than v*"] == "$▼$"



def test_box_labels_count_the_trials_in_each_box(tmp_path):
    """Each configuration run in both frameworks: two boxes of 8 trials per variant, labelled n = 8 (not
    16); with a top 10 % of one trial per cell the best-10 % panel is left out and the caption says why."""
    one = trials_frame()
    both = pd.concat([one, one.assign(framework="tf", trial_id=one["trial_id"] + "tf")], ignore_index=True)
    an = A.analyse(both, baseline="v")
    figs = Captured(tmp_path)
    captions = {}
    figs.save = lambda fig, key, section, title, caption: captions.update({key: (fig, caption)})
    figures.variant_boxes(an, figs, Palette(an.variants), "adding", an.tasks["adding"], 10)
    fig, caption = captions["box_adding_T10"]
    labels = [t.get_text() for t in fig.axes[-1].get_xticklabels()]
    assert all("n = 8 per box" in label for label in labels), labels
    assert len(fig.axes) == 1  # no best-10 % panel
    assert "The best-10 % panel is left out" in caption and "holds 1 trial(s)" in caption
