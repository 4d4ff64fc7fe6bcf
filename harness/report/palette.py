"""One colour and one marker per variant, the same in every figure of a report.

The first ten colours are seaborn's "colorblind" palette (Okabe-Ito based), chosen for viewers with
the common colour-vision deficiencies; variants beyond ten take Paul Tol's "muted" scheme, and every
variant also gets its own marker, so lines stay distinguishable when colours come close. Colours are
assigned in the report's variant order (the baseline first, then the catalogue's order), so the
baseline is always the same blue.
"""

from __future__ import annotations

from collections.abc import Sequence

COLORBLIND = (
    "#0173b2",
    "#de8f05",
    "#029e73",
    "#d55e00",
    "#cc78bc",
    "#ca9161",
    "#fbafe4",
    "#949494",
    "#ece133",
    "#56b4e9",
)
TOL_MUTED = ("#332288", "#88ccee", "#44aa99", "#117733", "#999933", "#ddcc77", "#cc6677", "#882255", "#aa4499")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "p", "*", "d", "H", "8")
FRAMEWORK_STYLE = {"torch": {"linestyle": "-", "hatch": ""}, "tf": {"linestyle": "--", "hatch": "///"}}
REFERENCE_LINE = {"color": "#555555", "linestyle": ":", "linewidth": 1.2}


class Palette:
    """variant id -> colour, marker."""

    def __init__(self, variants: Sequence[str]) -> None:
        colors = COLORBLIND + TOL_MUTED
        self.colors = {v: colors[i % len(colors)] for i, v in enumerate(variants)}
        self.markers = {v: MARKERS[i % len(MARKERS)] for i, v in enumerate(variants)}

    def color(self, variant: str) -> str:
        return self.colors.get(variant, "#777777")

    def marker(self, variant: str) -> str:
        return self.markers.get(variant, "o")


def linestyle(framework: str) -> str:
    return FRAMEWORK_STYLE.get(framework, {"linestyle": "-."})["linestyle"]


def hatch(framework: str) -> str:
    return FRAMEWORK_STYLE.get(framework, {"hatch": ".."})["hatch"]
