"""The variant catalogue: its order (``CATALOGUE_ORDER``, the order of docs/variants.md) and its table
(``rnn-bench list variants``).

The order decides where a variant stands in a report. It is read here only when a run writes its
variants' metadata into the store (``harness.store.metadata``): a report takes each variant's rank from the
store, so a store reports in the order it was written with, whatever this tuple says later.
"""

from __future__ import annotations

from harness.plugins.registry import Registry

#: The catalogue's order (docs/variants.md). A variant outside it (a plugin) ranks after all of them.
CATALOGUE_ORDER = (
    "v", "nig", "nfg", "nog", "niaf", "noaf", "np", "cifg", "fgr", "gru", "gru_ra", "mut1", "mut2", "mut3",
    "rnn", "clockwork", "depth_gated", "min_gru", "min_lstm", "indrnn", "ln_lstm", "slstm", "mlstm", "rg_lru",
)  # fmt: skip


def catalogue_rank(variant_id: str) -> int:
    """The variant's position in ``CATALOGUE_ORDER``; ``len(CATALOGUE_ORDER)`` for one outside it (variants
    of equal rank are ordered by id)."""
    try:
        return CATALOGUE_ORDER.index(variant_id)
    except ValueError:
        return len(CATALOGUE_ORDER)

#: What each framework runs for a variant with a fused kernel.
FUSED_KERNELS = {
    "lstm": ("torch.nn.LSTM", "keras.layers.LSTM"),
    "gru": ("torch.nn.GRU", "keras.layers.GRU(reset_after=True)"),
    "rnn": ("torch.nn.RNN", "keras.layers.SimpleRNN"),
}


def framework_column() -> str:
    """Every variant runs in every backend (generic path); say which backends are installed here."""
    from harness.backends import installed_frameworks

    here = installed_frameworks()
    return ", ".join(fw if fw in here else f"{fw} (not installed)" for fw in ("torch", "tf"))


def variant_rows(reg: Registry, input_size: int, hidden_size: int) -> list[dict[str, str]]:
    frameworks = framework_column()
    rows = []
    for vid in sorted(reg.variants, key=lambda v: (reg.variants[v].family, v)):
        cls = reg.variants[vid]
        try:
            count = str(cls().parameter_count(input_size, hidden_size))
        except Exception as e:  # e.g. clockwork's H not divisible by its modules
            count = f"n/a ({e})"
        fused = " / ".join(FUSED_KERNELS[cls.fused_kernel]) if cls.fused_kernel in FUSED_KERNELS else "-"
        rows.append(
            {
                "id": vid,
                "aliases": ",".join(cls.aliases) or "-",
                "name": cls.name,
                "reference": cls.reference,
                "params": count,
                "frameworks": frameworks,
                "fused": fused,
            }
        )
    return rows


def variant_table(reg: Registry, input_size: int, hidden_size: int) -> str:
    rows = variant_rows(reg, input_size, hidden_size)
    headers = {
        "id": "id",
        "aliases": "aliases",
        "name": "name",
        "reference": "reference",
        "params": f"params (I={input_size}, H={hidden_size})",
        "frameworks": "frameworks",
        "fused": "fused kernel",
    }
    from harness.text_table import text_table

    return text_table([[r[k] for k in headers] for r in [headers, *rows]], rule="columns")
