"""What every unlearning method shares: the forget request's checks, the method registry, agent copies.

A method is a function `unlearn(agent, dataset, forget_episode_ids, config) -> agent` plus its config class. It
never modifies the agent it is given (it trains a copy, or a new agent), and it reuses the agent's own
`update()`: forgetting changes what the agent is trained on (which transitions, which rewards) and how much a
loss term counts (`scaled_losses`), never the algorithm's code. Before it trains, a method checks the agent for
the capabilities (`trajlab.core.protocols`) it needs beyond `Agent`, so an agent without one gets a one-line
error naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from trajlab.core.errors import TrajlabError
from trajlab.core.registry import Registry
from trajlab.core.seeding import derive_seed
from trajlab.data.dataset import TransitionDataset
from trajlab.data.ids import check_dataset_matches, forget_ids_array

UnlearnFunction = Callable[[Any, TransitionDataset, np.ndarray, Any], Any]


@dataclass(frozen=True)
class UnlearningMethod:
    """One registered method: its CLI name, its config class and its `unlearn` function."""

    name: str
    config_class: type
    function: UnlearnFunction
    exact: bool = False
    """True when the result is exactly an agent never trained on the forget set (retraining)."""


METHODS: Registry[UnlearningMethod] = Registry("unlearning method")

TRAJECTORY_METHODS = ("trajdeleter", "finetune", "random-reward", "retrain")
"""The methods that forget trajectories of an offline agent's dataset (`trajlab forget`, `trajlab poison`); the
others in METHODS remove a behaviour from a safe-RL policy (`trajlab safe unlearn`)."""


def check_trajectory_method(name: str) -> None:
    """`name` is one of TRAJECTORY_METHODS (a one-line error naming them, and `trajlab safe` for the others)."""
    if name in TRAJECTORY_METHODS:
        return
    elsewhere = " (a safety unlearning method: trajlab safe unlearn --method)" if name in METHODS.names() else ""
    raise TrajlabError(f"unknown trajectory-forgetting method {name!r}{elsewhere}; known: "
                       f"{', '.join(TRAJECTORY_METHODS)}")


def register_method(name: str, config_class: type, *,
                    exact: bool = False) -> Callable[[UnlearnFunction], UnlearnFunction]:
    """Register `unlearn(agent, dataset, forget_episode_ids, config)` under `name`."""

    def decorator(function: UnlearnFunction) -> UnlearnFunction:
        METHODS.add(name, UnlearningMethod(name, config_class, function, exact))
        return function

    return decorator


def method_for_config(config: Any) -> UnlearningMethod:
    """The method whose config class `config` is an instance of."""
    for name in METHODS.names():
        method = METHODS.get(name)
        if type(config) is method.config_class:
            return method
    raise TrajlabError(f"{type(config).__name__} is not the config of any unlearning method")


# --- forget requests ----------------------------------------------------------------------------------------


def validate_request(agent: Any, dataset: TransitionDataset, forget_episode_ids: Iterable[int],
                     *, expected_env: str | None = None) -> np.ndarray:
    """Check a forget request before anything is trained or written; return the forget ids (sorted, unique).

    Rejected: an empty forget set, ids the dataset does not hold, a forget set that is the whole dataset (there
    would be nothing left to train on) and a dataset whose spaces or environment differ from the agent's.
    """
    ids = forget_ids_array(forget_episode_ids)
    if ids.size == 0:
        raise TrajlabError("the forget set is empty: give at least one episode id")
    known = dataset.episode_id_list
    unknown = np.setdiff1d(ids, known)
    if unknown.size:
        shown = ", ".join(str(int(i)) for i in unknown[:5]) + (" ..." if unknown.size > 5 else "")
        raise TrajlabError(f"unknown episode id(s) {shown}: the dataset has {len(known)} episodes "
                           f"(ids {int(known.min())}..{int(known.max())})")
    if ids.size == len(known):
        raise TrajlabError(f"the forget set is the whole dataset ({len(known)} episodes): nothing would remain "
                           "to train on")
    check_dataset_matches(agent, dataset, expected_env=expected_env)
    return ids


def select_fraction(dataset: TransitionDataset, fraction: float, seed: int) -> np.ndarray:
    """A seeded random `fraction` of the dataset's episodes (at least one)."""
    if not 0.0 < fraction < 1.0:
        raise TrajlabError(f"--fraction must be in (0, 1), got {fraction}")
    ids = dataset.episode_id_list
    count = max(1, int(round(fraction * len(ids))))
    chosen = np.random.default_rng(derive_seed(seed, "forget-fraction")).choice(len(ids), size=count, replace=False)
    return np.sort(ids[chosen])


def split_request(dataset: TransitionDataset, forget_ids: np.ndarray) -> tuple[TransitionDataset, TransitionDataset]:
    """(D_r, D_u): the remaining data and the forget set."""
    return dataset.without(forget_ids), dataset.subset(forget_ids)


# --- agents -------------------------------------------------------------------------------------------------


def method_updates(method: str, config: dict[str, Any], original_updates: int) -> int | None:
    """How many updates a built-in unlearning method makes with this config (a dict, as in certificates): what
    an auditor's shadows should match. Retraining without a step count repeats the original's
    `original_updates`. None for a method registered elsewhere, whose update count trajlab cannot know."""
    if method == "trajdeleter":
        return int(config["forget_steps"]) + int(config["convergence_steps"])
    if method in ("finetune", "random-reward"):
        return int(config["steps"])
    if method == "retrain":
        return int(original_updates if config.get("steps") is None else config["steps"])
    return None


