"""The command line's one plain-text table (``harness.text_table``)."""

from harness.text_table import text_table


def test_columns_are_left_aligned_two_spaces_apart_without_trailing_spaces():
    rows = [("variant", "status", "detail"), ("v", "ok", ""), ("nfg", "failed", "a long reason")]
    assert text_table(rows).splitlines() == ["variant  status  detail", "v        ok", "nfg      failed  a long reason"]


def test_a_rule_under_the_header_per_column_or_as_one_line():
    rows = [("id", "name"), ("v", "vanilla")]
    assert text_table(rows, rule="columns").splitlines()[1] == "--  -------"
    assert text_table(rows, rule="line").splitlines()[1] == "-" * len("v   vanilla")  # the longest line
