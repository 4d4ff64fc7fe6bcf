"""How the trials a run must do become jobs for the workers: populations, and their order.

A job is a list of trials trained together as one population (``harness.training.population``). The runner caps
a population at ``--population N`` members, or by default at ``DEFAULT_POPULATION`` for the trials'
framework and device: the sizes ``rnn-bench speed`` measured to give (nearly) the lowest cost per
trial-step on the reference machine (see the README's speed table). Variants in ``FUSED_SOLO`` train
solo even so, because their fused library kernel alone was measured to beat every population (only
trials on the fused path: ``--no-fused`` trials join populations). ``--population 1`` trains every
trial alone, as before populations existed.

Jobs run longest-expected first (long sequences, large budgets), so that the last ones running are
short and the workers finish together.
"""

from __future__ import annotations

from harness.errors import UsageError
from harness.plugins.registry import registry
from harness.training.grouping import population_groups
from harness.trials.trial import Trial

#: (framework, device) -> population cap when --population is not given. CPU: measured with
#: ``rnn-bench speed`` (README, "Speed"): the cost per trial-step falls steeply up to 16 members and
#: barely after (PyTorch ``v``, T = 50, H = 32, before the gate fusion: 13.5 ms alone, 5.4 at 4, 2.9 at 16,
#: 2.8 at 64), and a smaller cap leaves more jobs to spread over the workers. GPU: not measured here (no GPU was lent);
#: a small step there is launch latency, nearly flat in the number of members, so a cell's
#: configurations go together up to 256 (`rnn-bench speed --device cuda` measures it on your GPU).
DEFAULT_POPULATION: dict[tuple[str, str], int] = {
    ("torch", "cpu"): 16,
    ("tf", "cpu"): 16,
    ("torch", "cuda"): 256,
    ("tf", "cuda"): 256,
}
#: (framework, device) -> variants whose fused kernel trains a trial faster alone than in any population
FUSED_SOLO: dict[tuple[str, str], frozenset[str]] = {
    ("torch", "cpu"): frozenset({"np"}),  # torch.nn.LSTM; GRU's and RNN's kernels lose to populations
    ("tf", "cpu"): frozenset(),
    ("torch", "cuda"): frozenset(),
    ("tf", "cuda"): frozenset(),
}


def population_cap(framework: str, device: str, population: int | None) -> int:
    """The most members a job of this framework and device may have."""
    if population is None:
        return DEFAULT_POPULATION.get((framework, device), 1)
    if isinstance(population, bool) or not isinstance(population, int) or population < 1:
        raise UsageError(f"--population {population!r} is impossible; it must be an integer >= 1 (1 trains solo)")
    return population


def make_jobs(trials: list[Trial], population: int | None = None) -> list[list[Trial]]:
    """``trials`` as jobs: populations per framework and device, longest-expected first."""
    jobs: list[list[Trial]] = []
    for (framework, device), group in _by(trials).items():
        cap = population_cap(framework, device, population)
        solo = FUSED_SOLO.get((framework, device), frozenset()) if population is None else frozenset()
        jobs += population_groups(group, cap, fused_solo=solo)
    return sorted(jobs, key=lambda job: -max(expected_cost(t) for t in job))


def expected_cost(trial: Trial) -> int:
    """A trial's cost up to a constant: sequence length (the task's L, not T) x step budget."""
    return registry().task(trial.task).seq_len(trial.length) * trial.settings.max_steps


def _by(trials: list[Trial]) -> dict[tuple[str, str], list[Trial]]:
    out: dict[tuple[str, str], list[Trial]] = {}
    for t in trials:
        out.setdefault((t.framework, t.device), []).append(t)
    return out
