"""Methods state the capabilities they need and refuse, in one line, an agent without them; scaled_losses refuses
unknown loss terms; TrajDeleter's lambda scales the policy's loss, or the TD loss of a value-only agent."""

from __future__ import annotations

import copy
from dataclasses import fields

import numpy as np
import pytest
import torch

from trajlab.algos import AGENTS
from trajlab.algos.base import new_agent, scaled_losses
from trajlab.audit import TrajAuditor
from trajlab.core.errors import TrajlabError
from trajlab.core.protocols import Counted, capabilities_of, device_of, loss_term_names, require
from trajlab.testing import synthetic_dataset
from trajlab.unlearning import FinetuneConfig, RetrainConfig, TrajDeleterConfig, unlearn
from trajlab.unlearning import retrain as retrain_method
from trajlab.unlearning.trajdeleter import balanced_term


def _tiny(algo: str):
    config_class = AGENTS.get(algo).config_class
    return config_class(**{f.name: (16, 16) for f in fields(config_class) if "hidden" in f.name})


def trained(algo: str, dataset, updates: int = 3):
    agent = new_agent(AGENTS.get(algo), dataset.spec, _tiny(algo), seed=0)
    agent.prepare(dataset)
    for index in range(updates):
        agent.update(dataset.sample(8, np.random.default_rng(index)))
    return agent


class AgentOnly:
    """A user's agent with the Agent protocol and nothing more (a built-in agent inside)."""

    def __init__(self, inner):
        self._inner = inner

    def act(self, observations, deterministic=True):
        return self._inner.act(observations, deterministic)

    def compute_losses(self, batch):
        return self._inner.compute_losses(batch)

    def update(self, batch):
        return self._inner.update(batch)

    def modules(self):
        return self._inner.modules()

    def state_dict(self):
        return self._inner.state_dict()

    def load_state_dict(self, state):
        self._inner.load_state_dict(state)


def _weights(agent) -> dict[str, torch.Tensor]:
    return {f"{name}.{key}": value.clone() for name, module in agent.modules().items()
            for key, value in module.state_dict().items()}


def _differ(first, second) -> bool:
    return any(not torch.equal(first[name], second[name]) for name in first)


@pytest.fixture(scope="module")
def continuous():
    return synthetic_dataset(num_episodes=6, episode_length=8)


@pytest.fixture(scope="module")
def discrete():
    return synthetic_dataset(num_episodes=6, episode_length=8, discrete=True, action_dim=3)


@pytest.mark.parametrize("config, message", [
    (TrajDeleterConfig(forget_steps=4, block_length=2, convergence_steps=2, batch_size=8),
     "TrajDeleter needs an agent with loss_scales applied per loss term by update() (capability LossScalable); "
     "AgentOnly lacks loss_scales"),
    (TrajDeleterConfig(forget_steps=2, block_length=2, convergence_steps=2, batch_size=8),
     "TrajDeleter needs an agent with td_target(batch) (capability TDTargetProvider); AgentOnly lacks td_target"),
    (RetrainConfig(steps=2),
     "retraining needs an agent with spec, config and seed to build it again (capability Rebuildable); "
     "AgentOnly lacks spec, config, seed"),
])
def test_a_method_names_the_capability_a_user_agent_lacks(continuous, config, message):
    with pytest.raises(TrajlabError) as error:
        unlearn(AgentOnly(trained("td3_bc", continuous)), continuous, [1], config)
    assert str(error.value) == message


def test_the_auditor_needs_q_values_of_the_original_and_of_the_audited_agent(continuous):
    agent = trained("td3_bc", continuous)
    with pytest.raises(TrajlabError, match=r"^TrajAuditor needs an agent with q_value\(observations, actions\) "
                                           r"\(capability ValueEstimator\); AgentOnly lacks q_value$"):
        TrajAuditor(AgentOnly(agent), continuous.without([1]))
    auditor = TrajAuditor(agent, continuous.without([1]))
    with pytest.raises(TrajlabError, match="capability ValueEstimator"):
        auditor.audit(AgentOnly(agent), continuous, [1])
    assert not auditor.shadows  # refused before any shadow was trained


def test_fine_tuning_needs_nothing_beyond_the_agent_protocol(continuous):
    user_agent = AgentOnly(trained("td3_bc", continuous))
    unlearned = unlearn(user_agent, continuous, [1], FinetuneConfig(steps=2, batch_size=8))
    assert _differ(_weights(user_agent), _weights(unlearned))
    with pytest.raises(TrajlabError, match="capability Agent"):
        unlearn(object(), continuous, [1], FinetuneConfig(steps=2, batch_size=8))


def test_retraining_needs_the_update_count_only_without_a_step_count():
    assert Counted in retrain_method.required_capabilities(RetrainConfig())
    assert Counted not in retrain_method.required_capabilities(RetrainConfig(steps=5))


def test_capabilities_of_built_in_agents_and_their_loss_terms(continuous):
    sac = new_agent(AGENTS.get("sac"), continuous.spec, _tiny("sac"), seed=0)
    names = [capability.__name__ for capability in capabilities_of(sac)]
    assert names == ["Agent", "TDTargetProvider", "LossScalable", "Rebuildable", "Counted", "OnDevice"]
    assert loss_term_names(sac) == ("critic", "actor", "alpha")  # info_ diagnostics are not terms
    assert loss_term_names(trained("cql", continuous, 0)) == ("critic", "conservative", "actor", "temperature",
                                                               "lagrange")
    assert loss_term_names(AgentOnly(sac)) == ()  # its compute_losses names no LossOutput subclass
    assert device_of(AgentOnly(sac)) == torch.device("cpu") and device_of(sac) == torch.device("cpu")
    require(sac, *capabilities_of(sac), needed_by="a test")


def test_scaling_an_unknown_loss_term_is_an_error(discrete):
    agent = trained("discrete_cql", discrete)
    unknown = r"^DiscreteCQL has no loss term 'actor' to scale; its terms: td, conservative$"
    with pytest.raises(TrajlabError, match=unknown), scaled_losses(agent, actor=0.0):
        pass
    assert agent.loss_scales == {}


def test_scaling_the_td_term_of_discrete_cql_changes_its_update(discrete):
    agent = trained("discrete_cql", discrete)
    batch = discrete.sample(8, np.random.default_rng(9))
    plain, scaled = copy.deepcopy(agent), copy.deepcopy(agent)
    plain.update(batch)
    with scaled_losses(scaled, td=0.0):
        scaled.update(batch)
    assert _differ(_weights(plain), _weights(scaled))
    assert scaled.loss_scales == {}


def test_lambda_scales_the_policy_loss_or_the_td_loss_of_a_value_only_agent(continuous, discrete):
    assert balanced_term(trained("cql", continuous, 0)) == "actor"
    assert balanced_term(trained("discrete_iql", discrete, 0)) == "actor"
    assert balanced_term(trained("discrete_cql", discrete, 0)) == "td"
    assert balanced_term(trained("discrete_bcq", discrete, 0)) == "td"


@pytest.mark.parametrize("algo", ["discrete_cql", "discrete_bcq"])
def test_trajdeleters_lambda_reaches_value_only_agents(discrete, algo):
    agent = trained(algo, discrete)
    unlearned = {balance: unlearn(agent, discrete, [1], TrajDeleterConfig(
        forget_steps=4, block_length=2, convergence_steps=0, batch_size=8, balance=balance))
        for balance in (0.0, 1.0)}
    assert _differ(_weights(unlearned[0.0]), _weights(unlearned[1.0]))
