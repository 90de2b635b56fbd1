"""trajlab.testing's own checks catch what they are meant to catch."""

from __future__ import annotations

import types
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from trajlab.core.protocols import CAPABILITIES, LossOutput
from trajlab.testing import _check_gradient_layout, check_agent, synthetic_dataset


def _agent_with_gradient(gradient: torch.Tensor, *, fused: bool) -> types.SimpleNamespace:
    weight = torch.nn.Parameter(torch.zeros(3, 4))
    weight.grad = gradient
    return types.SimpleNamespace(optimizers={"critic": torch.optim.Adam([weight], lr=1e-3, fused=fused)})


def test_fused_optimizer_with_a_transposed_gradient_is_caught():
    transposed = torch.randn(4, 3).t()  # shape (3, 4), strides (1, 3)
    with pytest.raises(AssertionError, match="fused Adam would step the wrong weights"):
        _check_gradient_layout(_agent_with_gradient(transposed, fused=True))
    _check_gradient_layout(_agent_with_gradient(transposed.contiguous(), fused=True))
    _check_gradient_layout(_agent_with_gradient(transposed, fused=False))  # the per-tensor path copes


def test_transposed_gradient_really_misleads_the_fused_kernel():
    # why the check exists: same gradient values, different layout, different step
    torch.manual_seed(0)
    gradient = torch.randn(4, 3).t()
    steps = []
    for grad in (gradient, gradient.contiguous()):
        weight = torch.nn.Parameter(torch.zeros(3, 4))
        weight.grad = grad
        torch.optim.Adam([weight], lr=1.0, fused=True).step()
        steps.append(weight.detach().clone())
    assert torch.allclose(steps[1], -torch.sign(gradient), atol=1e-6)  # first Adam step: -lr * sign(g)
    assert not torch.equal(steps[0], steps[1])


# --- capabilities: a user's agent with all of them, and agents that break one each ------------------------


@dataclass
class LinearLosses(LossOutput):
    actor: torch.Tensor
    critic: torch.Tensor


class LinearAgent:
    """A user's agent with every capability: a linear policy cloned from the data and a linear critic."""

    def __init__(self, spec, config=None, *, device="cpu", seed=0):
        self.spec, self.config, self.seed, self.device = spec, config, seed, torch.device(device)
        self.policy = torch.nn.Linear(spec.observation_dim, spec.action_dim)
        self.critic = torch.nn.Linear(spec.observation_dim + spec.action_dim, 1)
        self.optimizer = torch.optim.Adam([*self.policy.parameters(), *self.critic.parameters()], lr=1e-2)
        self.loss_scales: dict[str, float] = {}
        self.num_updates = 0
        self.scale = 1.0

    def prepare(self, dataset):
        self.scale = float(np.abs(dataset.rewards).max())

    def act(self, observations, deterministic=True):
        with torch.no_grad():
            return torch.tanh(self.policy(torch.as_tensor(np.array(observations, dtype=np.float32)))).numpy()

    def q_value(self, observations, actions):
        return self._q(observations, actions)

    def _q(self, observations, actions):
        return self.critic(torch.cat([observations, actions], -1)).squeeze(-1)

    @torch.no_grad()
    def td_target(self, batch):
        next_actions = torch.tanh(self.policy(batch.next_observations))
        return batch.rewards / self.scale + 0.9 * (1 - batch.terminals) * self._q(batch.next_observations, next_actions)

    def compute_losses(self, batch) -> LinearLosses:
        actor = (torch.tanh(self.policy(batch.observations)) - batch.actions).pow(2).mean(-1)
        critic = (self._q(batch.observations, batch.actions) - self.td_target(batch)).pow(2)
        return LinearLosses(actor=actor, critic=critic)

    def reduce(self, name, per_sample, batch):
        return batch.weighted_mean(per_sample) * self.loss_scales.get(name, 1.0)

    def update(self, batch):
        total = sum(self.reduce(name, per_sample, batch) for name, per_sample in self.compute_losses(batch))
        self.optimizer.zero_grad()
        total.backward()
        self.optimizer.step()
        self.num_updates += 1
        return {"loss": float(total.detach())}

    def modules(self):
        return {"policy": self.policy, "critic": self.critic}

    def state_dict(self):
        return {"policy": self.policy.state_dict(), "critic": self.critic.state_dict(), "scale": self.scale,
                "optimizer": self.optimizer.state_dict(), "num_updates": self.num_updates}

    def load_state_dict(self, state):
        self.policy.load_state_dict(state["policy"])
        self.critic.load_state_dict(state["critic"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scale, self.num_updates = float(state["scale"]), int(state["num_updates"])


class IgnoresWeights(LinearAgent):
    def reduce(self, name, per_sample, batch):
        return per_sample.mean() * self.loss_scales.get(name, 1.0)


class AveragesOverTheWholeBatch(LinearAgent):
    def reduce(self, name, per_sample, batch):  # weighted, but divided by B instead of the weights' sum
        weighted = per_sample if batch.weights is None else per_sample * batch.weights
        return weighted.mean() * self.loss_scales.get(name, 1.0)


class IgnoresLossScales(LinearAgent):
    def reduce(self, name, per_sample, batch):
        return batch.weighted_mean(per_sample)


class UndeclaredLosses(LinearAgent):
    def compute_losses(self, batch) -> LossOutput:
        return super().compute_losses(batch)


class ScalarTDTarget(LinearAgent):
    def td_target(self, batch):
        return super().td_target(batch).mean()


class TransposedQValues(LinearAgent):
    def q_value(self, observations, actions):
        return super().q_value(observations, actions).unsqueeze(0)


class UncountedUpdates(LinearAgent):
    def update(self, batch):
        metrics = super().update(batch)
        self.num_updates -= 1
        return metrics


class WithoutCapabilities(LinearAgent):
    """Only the Agent protocol: the methods below opt out of ValueEstimator, TDTargetProvider and Preparable."""

    q_value = None
    prepare = None

    def td_target(self, batch):
        return super().td_target(batch)


def test_check_agent_passes_a_user_agent_with_every_capability():
    dataset = synthetic_dataset()
    capabilities = check_agent(lambda seed: LinearAgent(dataset.spec, seed=seed), dataset)
    assert capabilities == list(CAPABILITIES)


@pytest.mark.parametrize("agent_class, breach", [
    (IgnoresWeights, "a sample with weight 0 changed the update"),
    (AveragesOverTheWholeBatch, "an update with weight-0 samples differs from one without them"),
    (IgnoresLossScales, "update ignores loss_scales"),
    (UndeclaredLosses, "compute_losses must be annotated with the agent's LossOutput subclass"),
    (ScalarTDTarget, r"td_target returned shape \(\), expected \(16,\)"),
    (TransposedQValues, r"q_value gave shape \(1, 8\) for 8 observations"),
    (UncountedUpdates, "num_updates went from 0 to 0 in one update"),
])
def test_check_agent_catches_a_broken_capability(agent_class, breach):
    dataset = synthetic_dataset()
    with pytest.raises(AssertionError, match=breach):
        check_agent(lambda seed: agent_class(dataset.spec, seed=seed), dataset)
