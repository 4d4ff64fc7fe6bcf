"""Plugin discovery when a plugin file misbehaves at import: exiting, raising a bare BaseException or
never finishing must cost that file (reported by name), never end or block the command."""

from __future__ import annotations

import importlib.util
import signal
import time
from pathlib import Path

import pytest

from harness.plugins import registry as registry_module
from harness.plugins.registry import TIMEOUT_VARIABLE, VETTED_VARIABLE, read_vetted, registry

PLUGINS = Path(__file__).resolve().parent / "plugins"


def test_sys_exit_or_a_bare_base_exception_at_import_is_a_broken_file(cli, use_plugins, tmp_path):
    use_plugins("exits_at_import")
    code, out, err = cli("list", "variants")
    assert code == 0
    assert {"rnn", "np"} <= {line.split()[0] for line in out.splitlines() if line.strip()}
    assert "exits_at_import.py failed to import: called sys.exit(3) while importing" in err
    assert "base_exception_at_import.py failed to import: BaseException: a bare BaseException at import" in err

    store = tmp_path / "s.sqlite"
    code, out, err = cli("run", "smoke", "--variants", "exits_at_import", "--dry-run", "--store", store)
    assert code == 2
    assert "exits_at_import.py exists but failed to import: called sys.exit(3)" in err


def test_a_plugin_that_hangs_at_import_is_reported_after_the_time_limit(bench):
    env = bench.env(RNN_BENCH_PLUGINS=str(PLUGINS / "hangs_at_import"), **{TIMEOUT_VARIABLE: "1"})
    result = bench.run("list", "variants", env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "rnn" in result.stdout
    assert "hangs_at_import.py failed to import: did not finish importing within 1 s" in result.stderr


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs PyTorch")
def test_processes_a_run_starts_do_not_import_a_hung_plugin_again(bench, tmp_path):
    imports = tmp_path / "imports.txt"
    env = bench.env(RNN_BENCH_PLUGINS=str(PLUGINS / "hangs_at_import"), RNN_BENCH_TEST_IMPORTS=str(imports),
                    **{TIMEOUT_VARIABLE: "1"})  # fmt: skip
    args = ("--tasks", "adding", "--variants", "rnn", "--frameworks", "torch", "--workers", "1", "--no-progress")
    result = bench.run("run", "smoke", *args, "--store", tmp_path / "s.sqlite", env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "1 trial(s) finished" in result.stdout
    # once, in the child that vets plugin files for the command; not in the runner, its preflight child
    # nor its worker
    assert len(imports.read_text().split()) == 1


def test_a_plugin_that_ends_or_crashes_its_process_at_import_is_reported_not_fatal(bench, tmp_path):
    """os._exit(0) and a segfault at import cannot be caught in-process: the command imports user plugin
    files first in a worker process (harness/diagnostics/plugin_imports.py), names each broken file with
    what happened, goes on with the others, and the processes it starts never import them."""
    imports = tmp_path / "imports.txt"
    env = bench.env(RNN_BENCH_PLUGINS=str(PLUGINS / "ends_process"), RNN_BENCH_TEST_IMPORTS=str(imports))
    listed = bench.run("list", "variants", env=env, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert "rnn" in listed.stdout and "Traceback" not in listed.stderr
    assert ("os_exit_at_import.py failed to import: ended its process while importing (exited with code 0; "
            "a plugin must not exit or crash at import)") in listed.stderr  # fmt: skip
    assert "segfault_at_import.py failed to import: ended its process while importing (was killed by signal " \
           "SIGSEGV" in listed.stderr  # fmt: skip
    asked = bench.run("run", "smoke", "--variants", "ends_at_import", "--dry-run", "--store", tmp_path / "s.sqlite",
                      env=env, timeout=60)  # fmt: skip
    assert asked.returncode == 2 and "unknown variant 'ends_at_import'" in asked.stderr
    assert len(imports.read_text().split()) == 2  # once per command, in its vetting child


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs PyTorch")
def test_a_run_never_imports_a_plugin_that_ended_its_vetting_child(bench, tmp_path):
    imports = tmp_path / "imports.txt"
    env = bench.env(RNN_BENCH_PLUGINS=str(PLUGINS / "ends_process"), RNN_BENCH_TEST_IMPORTS=str(imports))
    args = ("--tasks", "adding", "--variants", "rnn", "--frameworks", "torch", "--workers", "1", "--no-progress")
    result = bench.run("run", "smoke", *args, "--store", tmp_path / "s.sqlite", env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "1 trial(s) finished" in result.stdout
    assert len(imports.read_text().split()) == 1  # the vetting child only: not the runner, preflight or worker


def test_unreadable_vetting_verdicts_mean_vetting_again(monkeypatch):
    monkeypatch.setenv(registry_module.VETTED_VARIABLE, "not json")
    assert registry_module.read_vetted() == {}
    monkeypatch.setenv(registry_module.VETTED_VARIABLE, '["a list"]')
    assert registry_module.read_vetted() == {}


def test_an_earlier_timer_and_alarm_handler_survive_plugin_discovery(use_plugins, monkeypatch):
    monkeypatch.setenv(VETTED_VARIABLE, "")  # restored after the test
    monkeypatch.setenv(TIMEOUT_VARIABLE, "0.5")
    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *a: fired.append(a))
    try:
        signal.setitimer(signal.ITIMER_REAL, 30)
        use_plugins("hangs_at_import")
        reg = registry()
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert "did not finish importing within 0.5 s" in next(iter(reg.broken_files.values()))
        assert 25 < remaining <= 30
        hung = [why for path, why in read_vetted().items() if path.endswith("hangs_at_import.py")]
        assert hung and hung[0].startswith("did not finish importing within 0.5 s")
        signal.setitimer(signal.ITIMER_REAL, 0.01)
        time.sleep(1)  # interrupted by the alarm, which reaches the handler set before discovery
        assert fired
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        registry_module.registry.cache_clear()


@pytest.mark.parametrize("value", ["soon", "-1", "nan"])
def test_an_impossible_import_time_limit_exits_2_naming_the_variable(cli, use_plugins, monkeypatch, value):
    monkeypatch.setenv(TIMEOUT_VARIABLE, value)
    use_plugins("exits_at_import")
    code, out, err = cli("list", "tasks")
    assert code == 2
    assert f"{TIMEOUT_VARIABLE}={value!r}" in err


def test_a_task_declaring_a_loss_the_backends_cannot_train_is_a_broken_file(cli, use_plugins):
    use_plugins("bad_loss")
    code, out, err = cli("list", "tasks")
    assert code == 0 and "bad_loss" not in out and "continual_reber" in out
    assert ("bad_loss.py failed to import: task 'bad_loss' declares loss = 'binary_cross_entropy' with "
            "loss_at = 'all'; allowed there: cross_entropy") in err  # fmt: skip
