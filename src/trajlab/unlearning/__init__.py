"""Trajectory forgetting: make a trained offline agent forget chosen episodes.

    from trajlab.unlearning import unlearn, TrajDeleterConfig
    unlearned = unlearn(agent, dataset, [3, 17, 42], TrajDeleterConfig())

Every method has the same interface, `unlearn(agent, dataset, forget_episode_ids, config) -> agent`, and the
config's class picks the method. `METHODS` lists them by name (trajdeleter, finetune, random-reward, retrain).
The agent passed in is never modified.
"""

from collections.abc import Iterable
from typing import Any

from trajlab.data.dataset import TransitionDataset
from trajlab.unlearning import finetune, random_reward, retrain, safety, trajdeleter
from trajlab.unlearning.base import METHODS, UnlearningMethod, method_for_config, validate_request
from trajlab.unlearning.finetune import FinetuneConfig
from trajlab.unlearning.random_reward import RandomRewardConfig
from trajlab.unlearning.retrain import RetrainConfig
from trajlab.unlearning.trajdeleter import TrajDeleterConfig, blended_td_target


def unlearn(agent: Any, dataset: TransitionDataset, forget_episode_ids: Iterable[int], config: Any) -> Any:
    """Run the method whose config `config` is; returns the unlearned agent (a new object)."""
    return method_for_config(config).function(agent, dataset, forget_episode_ids, config)


__all__ = [
    "METHODS",
    "FinetuneConfig",
    "RandomRewardConfig",
    "RetrainConfig",
    "TrajDeleterConfig",
    "UnlearningMethod",
    "blended_td_target",
    "finetune",
    "random_reward",
    "retrain",
    "safety",
    "trajdeleter",
    "unlearn",
    "validate_request",
]
