"""What a report page shows besides the analysis: its sections, the tables it opens, and its context."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SECTIONS = (
    (
        "variants",
        "Variants compared",
        "Greff et al. (2015), Fig. 3: the test metric of every variant per task and length.",
    ),
    ("ranking", "Ranking across tasks", "Which variants do best over every task and length (both frameworks pooled)."),
    ("dependency", "Dependency length", "How long a lag each variant bridges: solved rate and best result against T."),
    ("generalisation", "Length generalisation", "Delétang et al. (2023): the test metric beyond the training "
     "length T, per variant."),
    ("learning", "Learning curves", "Validation metric against training step for each variant's best trials."),
    ("importance", "Hyperparameters", "Greff et al. Figs. 4–5: which hyperparameters matter, and how."),
    ("frameworks", "PyTorch and TensorFlow", "The same configurations in both frameworks, and their speed."),
    ("gradient", "Gradient flow", "How far back in time the training signal reaches, per variant."),
)
SHOWN_TABLES = ("verdicts", "summary", "ranking", "framework_tests")  # open on the page and written into report.md


@dataclass
class Context:
    """Everything a page shows besides the analysis."""

    suite: str
    store_path: Path
    progress: dict[str, int]
    suite_lines: list[tuple[str, str]]
    environment: dict[str, Any]
    report_environment: dict[str, Any]
    generated: str
    notes: list[str] = field(default_factory=list)
    description: str = ""
    suite_text: str = ""  # the suite file its latest run ran, as the store recorded it

