"""Tasks with parameters of their own, named ``associative_recall[pairs=2]`` (harness.plugins.task_names)."""

from __future__ import annotations

import pytest

from harness.errors import UsageError
from harness.plugins.registry import registry
from harness.plugins.task_names import split_task_name, task_name, task_parameters
from harness.store.metadata import from_registry
from harness.suites.suite import parse_suite, plan


def test_a_name_carries_its_parameters_and_has_one_canonical_spelling():
    reg = registry()
    assert split_task_name("associative_recall[keys=8, pairs=2]") == ("associative_recall", {"keys": 8, "pairs": 2})
    assert reg.canonical_task("associative_recall[pairs=2,keys=8]") == "associative_recall[keys=8,pairs=2]"
    assert reg.canonical_task("associative_recall[pairs=4]") == "associative_recall"  # the default: the bare id
    assert reg.canonical_task("associative_recall[pairs=4.0]") == "associative_recall[pairs=4.0]"  # not an int
    assert task_name("x", {"mode": "word", "rate": 0.5}) == "x[mode=word,rate=0.5]"
    assert task_parameters(reg.tasks["associative_recall"]) == {"keys": 16, "pairs": 4}
    assert task_parameters(reg.tasks["adding"]) == {}


def test_the_task_is_made_with_its_parameters():
    task = registry().task("associative_recall[keys=8,pairs=2]")
    assert (task.keys, task.pairs, task.input_size, task.output_size, task.seq_len(5)) == (8, 2, 17, 8, 11)


@pytest.mark.parametrize("name, match", [
    ("associative_recall[slots=2]", r"unknown parameter\(s\) \['slots'\]; it takes: keys \(default 16\), pairs"),
    ("associative_recall[pairs=9,keys=8]", "pairs must be <= keys"),
    ("associative_recall[pairs]", "should be parameter=value"),
    ("associative_recall[pairs=2", "does not parse"),
    ("adding[x=1]", r"unknown parameter\(s\) \['x'\]; it takes: none"),
    ("recall[pairs=2]", "unknown task 'recall'"),
])  # fmt: skip
def test_a_bad_name_is_refused_naming_what_is_allowed(name, match):
    with pytest.raises(UsageError, match=match):
        registry().task(name, "suite file s.toml")


def suite(tasks, lengths):
    return parse_suite({"name": "m", "tasks": tasks, "variants": ["np"], "trials": 1, "lengths": lengths,
                        "training": {"max_steps": 5}}, "m.toml")  # fmt: skip


def test_a_suite_plans_each_parameter_setting_as_a_task_of_its_own():
    s = suite(["associative_recall[pairs=2]", "associative_recall[pairs=4]"],
              {"associative_recall[pairs=2]": [4], "associative_recall": [4]})
    assert s.tasks == ["associative_recall[pairs=2]", "associative_recall"]
    trials = plan(s)
    assert [t.task for t in trials] == s.tasks and trials[0].id != trials[1].id
    plain = plan(suite(["associative_recall"], {"associative_recall": [4]}))[0]
    assert plain.id == trials[1].id  # the default spelled out is the task it always was


def test_a_length_for_another_setting_of_the_task_is_refused():
    with pytest.raises(UsageError, match=r"names task 'associative_recall\[pairs=3\]', which the suite does not list"):
        suite(["associative_recall[pairs=2]"], {"associative_recall[pairs=2]": [4], "associative_recall[pairs=3]": [4]})


def test_the_metadata_names_the_setting():
    meta = from_registry([], [("associative_recall[pairs=2]", 4)])
    record = meta.tasks[("associative_recall[pairs=2]", 4)]
    assert record.task == "associative_recall[pairs=2]" and record.name.endswith("(pairs=2)")
    assert record.baseline == pytest.approx(1 / 16)
