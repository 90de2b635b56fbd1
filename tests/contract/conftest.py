"""The contract tests' cases: an entry in AGENT_SETTINGS for every agent registered in `trajlab.algos.AGENTS`.

Tests here take their cases from the registry through these parameters (`pytest_generate_tests`):

- `agent_case`: every variant of every registered agent;
- `offline_case`: every variant of the offline agents (`OfflineAgent`: data statistics, checkpoints);
- `offline_algo`: the first variant of each offline agent, whose id is the algorithm's name (tests about the
  algorithm, not a configuration).

A newly registered agent fails `test_every_registered_agent_has_settings` until it has an entry; to cover
another configuration, add a variant to its entry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from trajlab.algos import AGENTS
from trajlab.algos.base import new_agent, split_runtime_options
from trajlab.algos.offline.base import OfflineAgent
from trajlab.core.config import replace


@dataclass(frozen=True)
class Settings:
    """How the contract tests build one registered agent."""

    variants: dict[str, dict[str, Any]]
    """Case id -> options on top of the tiny config (runtime options such as bf16 among them)."""
    discrete: bool = False
    """The agent learns from discrete actions."""
    discrete_variants: tuple[str, ...] = ()
    """Case ids, among `variants`, run on discrete actions (an agent that takes either kind of action space)."""


AGENT_SETTINGS: dict[str, Settings] = {
    "bc": Settings({"bc": {}, "bc-bf16": {"bf16": True}}),
    "td3_bc": Settings({"td3_bc": {}, "td3_bc-bf16": {"bf16": True}}),
    "iql": Settings({"iql": {}, "iql-constant-lr": {"actor_lr_decay_steps": 0, "scale_rewards": False},
                     "iql-bf16": {"bf16": True}}),
    "awac": Settings({"awac": {"num_action_samples": 3}, "awac-bf16": {"num_action_samples": 3, "bf16": True}}),
    "cql": Settings({"cql": {}, "cql-lagrange": {"lagrange_lr": 1e-3, "soft_backup": True},
                     "cql-bf16": {"bf16": True, "lagrange_lr": 1e-3}}),
    "bcq": Settings({"bcq": {}, "bcq-bf16": {"bf16": True}}),
    "bear": Settings({"bear": {"warmup_steps": 2},
                      "bear-gaussian-fixed-alpha": {"warmup_steps": 0, "mmd_kernel": "gaussian", "auto_alpha": False},
                      "bear-bf16": {"warmup_steps": 2, "bf16": True}}),
    "plas": Settings({"plas": {"vae_pretrain_steps": 2}, "plas-bf16": {"vae_pretrain_steps": 2, "bf16": True}}),
    "discrete_bc": Settings({"discrete_bc": {}, "discrete_bc-bf16": {"bf16": True}}, discrete=True),
    "discrete_bcq": Settings({"discrete_bcq": {}, "discrete_bcq-unfiltered": {"threshold": 0.0},
                              "discrete_bcq-bf16": {"bf16": True}}, discrete=True),
    "discrete_cql": Settings({"discrete_cql": {}, "discrete_cql-dqn": {"double_dqn": False},
                              "discrete_cql-bf16": {"bf16": True}}, discrete=True),
    "discrete_iql": Settings({"discrete_iql": {}, "discrete_iql-bf16": {"bf16": True}}, discrete=True),
    "sac": Settings({"sac": {}, "sac-droq": {"critic_dropout": 0.01, "critic_layer_norm": True, "utd_ratio": 2},
                     "sac-resets": {"reset_every": 2}}),
    "masked_td3_bc": Settings({"masked_td3_bc": {"ensemble_size": 4, "group_size": 2},
                               "masked_td3_bc-bf16": {"ensemble_size": 2, "bf16": True},
                               "masked_td3_bc-independent": {"ensemble_size": 4, "group_size": 2,
                                                             "member_coupling": "independent"}}),
    "masked_iql": Settings({"masked_iql": {"ensemble_size": 2, "group_size": 2},
                            "masked_iql-bf16": {"ensemble_size": 2, "bf16": True},
                            "masked_iql-independent": {"ensemble_size": 4, "group_size": 2,
                                                       "member_coupling": "independent"}}),
    "masked_sac": Settings({"masked_sac": {"ensemble_size": 4, "group_size": 8},
                            "masked_sac-droq": {"ensemble_size": 2, "critic_dropout": 0.01, "utd_ratio": 2},
                            "masked_sac-independent": {"ensemble_size": 4, "group_size": 8,
                                                       "member_coupling": "independent"}}),
    "ppo_lagrangian": Settings({"ppo_lagrangian": {}, "ppo_lagrangian-unsafe-editor": {"use_cost": False,
                                                                                        "editor": True},
                                "ppo_lagrangian-discrete": {"use_cost": False}},
                               discrete_variants=("ppo_lagrangian-discrete",)),
}


@dataclass(frozen=True)
class AgentCase:
    """One configuration of one registered agent, as a test parameter."""

    id: str
    algo: str
    overrides: dict[str, Any] = field(default_factory=dict)
    discrete: bool = False

    def factory(self, spec: Any, **extra: Any) -> Callable[[int], Any]:
        """seed -> a new agent built as a run builds one, with the tiny config, `overrides` and `extra`."""
        values, runtime = split_runtime_options({**self.overrides, **extra})
        config = tiny_config(self.algo, **values)
        return lambda seed: new_agent(AGENTS.get(self.algo), spec, config, seed=seed, runtime=runtime)


def tiny_config(algo: str, **overrides: Any) -> Any:
    """The algorithm's default config with 16-unit networks and batches of 16, plus `overrides`."""
    config_class = AGENTS.get(algo).config_class
    names = {f.name for f in dataclasses.fields(config_class)}
    tiny = {name: (16, 16) for name in names if "hidden" in name}
    tiny["batch_size"] = 16
    return replace(config_class(), **tiny, **overrides)


def agent_cases(*, offline: bool = False, first_only: bool = False) -> list[AgentCase]:
    """The cases of the registered agents that have settings (all of them, once the coverage test passes)."""
    cases = []
    for algo in AGENTS.names():
        settings = AGENT_SETTINGS.get(algo)
        if settings is None or (offline and not issubclass(AGENTS.get(algo), OfflineAgent)):
            continue
        variants = list(settings.variants.items())[:1] if first_only else settings.variants.items()
        cases += [AgentCase(case_id, algo, overrides, settings.discrete or case_id in settings.discrete_variants)
                  for case_id, overrides in variants]
    return cases


CASE_PARAMETERS = {
    "agent_case": lambda: agent_cases(),
    "offline_case": lambda: agent_cases(offline=True),
    "offline_algo": lambda: agent_cases(offline=True, first_only=True),
}


def pytest_generate_tests(metafunc: Any) -> None:
    for name, cases in CASE_PARAMETERS.items():
        if name in metafunc.fixturenames:
            chosen = cases()
            metafunc.parametrize(name, chosen, ids=[case.id for case in chosen])


@pytest.fixture
def agent_settings() -> dict[str, Settings]:
    return AGENT_SETTINGS
