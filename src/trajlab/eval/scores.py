"""Normalised scores: 100 * (return - random) / (expert - random), against two different references.

- `normalized_score` is what RL papers mean by "normalised score": D4RL's reference returns (REF_MIN_SCORE and
  REF_MAX_SCORE of D4RL's tables; the v5 MuJoCo envs use D4RL's v2 numbers, see `trajlab.envs.registry`). It is
  None for environments D4RL has no reference for, so it is never confused with the score below.
- `behaviour_normalized_score` is relative to the dataset's own behaviour policies: the random and expert
  returns that `trajlab data generate` measured and stored in the dataset's metadata. A weak quick-preset expert
  makes it far larger than the D4RL score (a Hopper return of 362 is 11.7 against D4RL, 166 against a quick
  dataset's expert), which is why it has its own name wherever it is reported.
"""

from __future__ import annotations

from typing import Any

from trajlab.envs.registry import ENVIRONMENTS


def d4rl_reference(env_id: str | None) -> tuple[float, float] | None:
    """D4RL's (random, expert) reference returns of an environment, or None where D4RL has none."""
    info = ENVIRONMENTS.get(env_id or "")
    if info is None or info.reference_random is None or info.reference_expert is None:
        return None
    return info.reference_random, info.reference_expert


def behaviour_reference(metadata: dict[str, Any] | None) -> tuple[float, float] | None:
    """The dataset's measured (random, expert) behaviour returns, or None when its metadata lacks them."""
    metadata = metadata or {}
    if metadata.get("random_return") is None or metadata.get("expert_return") is None:
        return None
    random_return, expert_return = float(metadata["random_return"]), float(metadata["expert_return"])
    # an expert no better than random gives no scale to normalise by
    return (random_return, expert_return) if expert_return > random_return else None


def reference_returns(env_id: str | None, metadata: dict[str, Any] | None = None) -> tuple[float, float, str] | None:
    """(random, expert, source) for an export's reference scores: D4RL's ("d4rl") where D4RL has them, else
    the dataset's behaviour returns ("dataset"), else None."""
    d4rl = d4rl_reference(env_id)
    if d4rl is not None:
        return (*d4rl, "d4rl")
    behaviour = behaviour_reference(metadata)
    return None if behaviour is None else (*behaviour, "dataset")


def _normalise(value: float, reference: tuple[float, float] | None) -> float | None:
    if reference is None:
        return None
    random_return, expert_return = reference
    return 100.0 * (value - random_return) / (expert_return - random_return)


def normalized_score(value: float, env_id: str | None) -> float | None:
    """The D4RL normalised score of a return (None where D4RL has no reference for `env_id`)."""
    return _normalise(value, d4rl_reference(env_id))


def behaviour_normalized_score(value: float, metadata: dict[str, Any] | None) -> float | None:
    """The score of a return against the dataset's behaviour policies (None without their returns)."""
    return _normalise(value, behaviour_reference(metadata))
