"""What every unlearning method shares: the forget request's checks, the method registry, agent copies.

A method is a function `unlearn(agent, dataset, forget_episode_ids, config) -> agent` plus its config class. It
never modifies the agent it is given (it trains a copy, or a new agent), and it reuses the agent's own
`update()`: forgetting changes what the agent is trained on (which transitions, which rewards) and how much a
loss term counts (`scaled_losses`), never the algorithm's code.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np

from trajlab.core.errors import TrajlabError
from trajlab.core.registry import Registry
from trajlab.core.seeding import derive_seed
from trajlab.data.dataset import TransitionDataset

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
def forget_ids_array(episode_ids: Iterable[int]) -> np.ndarray:
    """Sorted unique episode ids as int64 (non-integers are a user error)."""
    values = list(episode_ids)
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TrajlabError(f"episode ids must be integers, got {values[:5]}") from None
    if array.size and not np.all(np.isfinite(array) & (array == np.round(array))):
        raise TrajlabError(f"episode ids must be integers, got {values[:5]}")
    return np.unique(array.astype(np.int64))


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


def check_dataset_matches(agent: Any, dataset: TransitionDataset, *, expected_env: str | None = None) -> None:
    """The dataset must have the agent's observation/action spaces and, when both are known, its environment."""
    spec = getattr(agent, "spec", None)
    if spec is not None:
        found = (dataset.observation_dim, dataset.action_dim, dataset.discrete)
        wanted = (spec.observation_dim, spec.action_dim, spec.discrete)
        if found != wanted:
            raise TrajlabError(
                f"dataset does not match the agent: observations {found[0]}-d, actions {found[1]}"
                f"{' discrete' if found[2] else '-d'}; the agent has observations {wanted[0]}-d, actions "
                f"{wanted[1]}{' discrete' if wanted[2] else '-d'}")
    env_id = dataset.metadata.get("env_id")
    if expected_env and env_id and env_id != expected_env:
        raise TrajlabError(f"dataset is from {env_id} but the agent was trained on {expected_env}")


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
def copy_agent(agent: Any) -> Any:
    """An independent copy (weights, optimiser states, target networks, counters); the original stays as it is."""
    return copy.deepcopy(agent)


def batch_size_of(agent: Any, override: int | None) -> int:
    """The batch size to train with: the method's override, else the agent's own config."""
    if override is not None:
        if override <= 0:
            raise TrajlabError(f"batch_size must be positive, got {override}")
        return override
    size = getattr(getattr(agent, "config", None), "batch_size", None)
    if size is None:
        raise TrajlabError(f"{type(agent).__name__} has no config.batch_size; set batch_size in the method config")
    return int(size)


def check_steps(**steps: int) -> None:
    """Step counts must be non-negative integers."""
    for name, value in steps.items():
        if int(value) != value or value < 0:
            raise TrajlabError(f"{name} must be a non-negative integer, got {value}")


def sampler_for(agent: Any, dataset: TransitionDataset, seed: int, *names: str | int) -> Any:
    """A tensor sampler on the agent's device, seeded by a named child of `seed`."""
    return dataset.sampler(device=getattr(agent, "device", "cpu"), seed=derive_seed(seed, *names))


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


_UPDATE_LISTENER: ContextVar[Callable[[], None] | None] = ContextVar("trajlab_update_listener", default=None)


@contextmanager
def counting_updates(listener: Callable[[], None]) -> Iterator[None]:
    """Within the block, `listener()` is called after every update `train_steps` makes in this process (every
    method's and every in-process shadow's): what progress bars count."""
    token = _UPDATE_LISTENER.set(listener)
    try:
        yield
    finally:
        _UPDATE_LISTENER.reset(token)


def train_steps(agent: Any, sampler: Any, steps: int, batch_size: int) -> dict[str, float]:
    """`steps` ordinary updates on batches from `sampler`; the last update's metrics."""
    metrics: dict[str, float] = {}
    listener = _UPDATE_LISTENER.get()
    for _ in range(steps):
        metrics = agent.update(sampler.sample(batch_size))
        if listener is not None:
            listener()
    return metrics
