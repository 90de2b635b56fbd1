"""The one training loop and the small parts it is composed of.

`Loop` takes steps 1..total (a step is one sampled update offline, one env step plus its updates online) and,
after each step, runs what is due in a fixed order: an evaluation, a metrics row, the caller's callback, a
checkpoint. Each training builds its `Loop` from its own step and actions and the parts here: a `Cadence`
says when an action is due, a `MetricWindow` averages metrics between rows, an `EvalSummary` keeps the latest
evaluation (and says it in the progress bar), a `WallClock` times a run over resumed sessions. Plain update
steps (`steps.train_steps`) are the same loop with nothing scheduled.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trajlab.eval.rollouts import EvalResult


@dataclass(frozen=True)
class Cadence:
    """The steps after which a periodic action is due."""

    every: int
    """Every multiple of this many steps (0: never)."""
    last: int | None = None
    """Also this step (the run's last), unless `every` is 0."""

    def __call__(self, step: int) -> bool:
        return self.every > 0 and (step % self.every == 0 or step == self.last)

    def passed_since(self, earlier: int, step: int) -> bool:
        """Whether a multiple of `every` lies in (earlier, step]: for an action that waits for a safe moment
        (online checkpoints wait for an episode's end) and then catches up."""
        return self.every > 0 and step // self.every > earlier // self.every


@dataclass(frozen=True)
class Periodic:
    """An action the loop runs after the steps that `due` picks."""

    due: Callable[[int], bool]
    """due(step): whether to run after this step (a `Cadence` or any predicate)."""
    action: Callable[[int], Any]
    """action(step)."""


@dataclass
class Loop:
    """Runs `take_step(n)` for n = start+1 .. total; after each step, in this order and when due: `evaluate`,
    `log` (always right after an evaluation, so every evaluation has its metrics row), `callback`,
    `checkpoint`. Unset actions cost nothing, so plain update loops use it too."""

    take_step: Callable[[int], Any]
    """take_step(n): do step n (1-based)."""
    total: int
    """The step to run to."""
    evaluate: Periodic | None = None
    log: Periodic | None = None
    callback: Periodic | None = None
    checkpoint: Periodic | None = None

    def run(self, start: int = 0, show: Callable[[int], Any] | None = None) -> None:
        """Steps start+1 .. total; `show(n)` after each (a progress bar's, or an update counter)."""
        scheduled = any(action is not None for action in (self.evaluate, self.log, self.callback, self.checkpoint))
        for step in range(start + 1, self.total + 1):
            self.take_step(step)
            if scheduled:
                self.after_step(step)
            if show is not None:
                show(step)

    def after_step(self, step: int) -> None:
        evaluated = _run_if_due(self.evaluate, step)
        if self.log is not None and (evaluated or self.log.due(step)):
            self.log.action(step)
        _run_if_due(self.callback, step)
        _run_if_due(self.checkpoint, step)


def _run_if_due(periodic: Periodic | None, step: int) -> bool:
    if periodic is None or not periodic.due(step):
        return False
    periodic.action(step)
    return True


class MetricWindow:
    """Sums and counts of training metrics since the last metrics row; the row is their averages."""

    def __init__(self, sums: Mapping[str, float] | None = None, counts: Mapping[str, int] | None = None) -> None:
        self.sums: dict[str, float] = dict(sums or {})
        self.counts: dict[str, int] = dict(counts or {})

    def add(self, metrics: Mapping[str, float]) -> None:
        for name, value in metrics.items():
            self.sums[name] = self.sums.get(name, 0.0) + float(value)
            self.counts[name] = self.counts.get(name, 0) + 1

    def averages(self) -> dict[str, float]:
        return {name: self.sums[name] / self.counts[name] for name in self.sums}

    def clear(self) -> None:
        self.sums, self.counts = {}, {}

    def state(self) -> dict[str, dict[str, Any]]:
        """Sums and counts (a checkpoint can cut a log interval in two; resuming finishes the same average)."""
        return {"sums": dict(self.sums), "counts": dict(self.counts)}

    @classmethod
    def from_state(cls, state: Mapping[str, Mapping[str, Any]]) -> MetricWindow:
        return cls(state["sums"], state["counts"])


@dataclass(frozen=True)
class EvalSummary:
    """The latest evaluation of a run: what metrics rows, results and the progress bar show of it."""

    step: int
    """The step after which it ran."""
    mean_return: float
    std_return: float
    normalized_score: float | None
    """Mean D4RL normalised score (None: D4RL has no reference returns for the environment)."""
    episodes: int
    behaviour_normalized_score: float | None = None
    """Mean score against the dataset's behaviour policies (None: no behaviour returns in its metadata; also
    what checkpoints written before this field resume with)."""

    @classmethod
    def of(cls, step: int, result: EvalResult) -> EvalSummary:
        return cls(step, result.mean_return, result.std_return, result.mean_normalized_score,
                   int(len(result.returns)), result.mean_behaviour_normalized_score)

    def status(self) -> str:
        """'eval 123.4', 'eval 123.4 (D4RL score 56.7)' or, where D4RL has no reference, 'eval 123.4 (vs
        behaviour 56.7)', for a progress bar (each score named: they differ by far on weak-expert datasets)."""
        if self.normalized_score is not None:
            return f"eval {self.mean_return:.1f} (D4RL score {self.normalized_score:.1f})"
        if self.behaviour_normalized_score is not None:
            return f"eval {self.mean_return:.1f} (vs behaviour {self.behaviour_normalized_score:.1f})"
        return f"eval {self.mean_return:.1f}"


def evaluated_at(step: int, latest: EvalSummary | None) -> EvalSummary | None:
    """`latest` if it ran after `step` (that step's metrics row shows it), else None."""
    return latest if latest is not None and latest.step == step else None


class WallClock:
    """Wall seconds of a run over all its sessions: the earlier sessions' total plus this session's so far."""

    def __init__(self, earlier_s: float = 0.0) -> None:
        self.earlier_s = earlier_s
        self.session_start = time.perf_counter()

    def start_session(self) -> None:
        self.session_start = time.perf_counter()

    def elapsed_s(self) -> float:
        return self.earlier_s + (time.perf_counter() - self.session_start)
