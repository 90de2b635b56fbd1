"""Unlearning against brute-force truth on tiny problems.

* retrain is exactly `trajlab train` on dataset.without(ids) with the same seed: identical weights;
* TrajDeleter drives the agent's values down on the forgotten trajectories' states and keeps the remaining
  states' values close to the original's (planted: each episode lives in its own region of the state space,
  and the forget set is the two most isolated episodes, so its influence is local to see);
* no method modifies the agent it is given.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trajlab.algos import AGENTS, load_agent
from trajlab.commands.forget import value_summary
from trajlab.testing import clustered_dataset, synthetic_dataset
from trajlab.training.offline import TrainConfig
from trajlab.training.offline import run as train
from trajlab.unlearning import FinetuneConfig, RandomRewardConfig, RetrainConfig, TrajDeleterConfig, unlearn
from trajlab.unlearning.retrain import train_from_scratch

TINY = {"actor_hidden": [16, 16], "critic_hidden": [16, 16], "batch_size": 16}


def weights(agent) -> dict[str, torch.Tensor]:
    return {f"{name}.{key}": value for name, module in agent.modules().items()
            for key, value in module.state_dict().items()}


@pytest.mark.parametrize("algo", ["td3_bc", "iql"])
def test_retrain_equals_training_from_scratch_on_the_remaining_data(tmp_path, algo):
    dataset = synthetic_dataset(num_episodes=8, episode_length=10)
    dataset.save(tmp_path / "full.hdf5")
    train(TrainConfig(algo=algo, dataset=str(tmp_path / "full.hdf5"), steps=25, seed=3, overrides=TINY,
                      out=str(tmp_path / "original"), progress=False))
    original = load_agent(tmp_path / "original" / "checkpoints" / "final.safetensors")
    forget = [1, 6]
    retrained = unlearn(original, dataset, forget, RetrainConfig())

    dataset.without(forget).save(tmp_path / "remaining.hdf5")
    train(TrainConfig(algo=algo, dataset=str(tmp_path / "remaining.hdf5"), steps=25, seed=3, overrides=TINY,
                      out=str(tmp_path / "scratch"), progress=False))
    scratch = load_agent(tmp_path / "scratch" / "checkpoints" / "final.safetensors")

    expected, found = weights(scratch), weights(retrained)
    assert expected.keys() == found.keys()
    assert all(torch.equal(expected[name], found[name]) for name in expected)
    assert not torch.equal(weights(original)["critic.body.net.0.weight"], found["critic.body.net.0.weight"])


def isolated_episodes(dataset, count: int) -> np.ndarray:
    """The `count` episodes whose region lies farthest from every other episode's."""
    centres = np.stack([episode.observations.mean(0) for episode in dataset.episodes()])
    distances = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    return np.sort(dataset.episode_id_list[np.argsort(-distances.min(1))[:count]])


@pytest.fixture(scope="module", params=["td3_bc", "iql"])
def planted(request):
    dataset = clustered_dataset(seed=0, spread=6.0)
    algo = request.param
    options = dict(actor_hidden=(32, 32), critic_hidden=(32, 32), batch_size=32, gamma=0.5, actor_lr=1e-3,
                   critic_lr=1e-3, tau=0.01)
    if algo == "iql":
        options.update(value_lr=1e-3, actor_lr_decay_steps=0, scale_rewards=False)
    agent_class = AGENTS.get(algo)
    original = train_from_scratch(agent_class, dataset.spec, agent_class.config_class(**options), dataset,
                                  steps=1000, seed=0)
    return dataset, original, isolated_episodes(dataset, 2)


def test_trajdeleter_lowers_forget_values_and_keeps_the_rest(planted):
    dataset, original, forget = planted
    config = TrajDeleterConfig(forget_steps=400, convergence_steps=100, block_length=50)
    values = value_summary(original, unlearn(original, dataset, forget, config), dataset, forget)
    forget_drop = values["forget_original"] - values["forget_unlearned"]
    remaining_change = abs(values["remaining_unlearned"] - values["remaining_original"])
    assert forget_drop > 0.3 * abs(values["forget_original"]), values
    assert remaining_change < 0.15 * abs(values["remaining_original"]), values
    assert forget_drop > 3 * remaining_change, values
    # fine-tuning on D_r alone for as many updates barely moves the forget set's values
    finetuned = value_summary(original, unlearn(original, dataset, forget, FinetuneConfig(steps=500)), dataset, forget)
    assert forget_drop > 3 * abs(finetuned["forget_original"] - finetuned["forget_unlearned"]), finetuned


@pytest.mark.parametrize("config", [TrajDeleterConfig(forget_steps=20, convergence_steps=10, block_length=5),
                                    FinetuneConfig(steps=20), RandomRewardConfig(steps=20), RetrainConfig(steps=20)],
                         ids=lambda config: type(config).__name__)
def test_methods_leave_the_given_agent_untouched(planted, config):
    dataset, original, forget = planted
    before = {name: value.clone() for name, value in weights(original).items()}
    updates = original.num_updates
    unlearned = unlearn(original, dataset, forget, config)
    assert unlearned is not original and original.num_updates == updates
    assert all(torch.equal(before[name], value) for name, value in weights(original).items())
    assert any(not torch.equal(before[name], value) for name, value in weights(unlearned).items())


def test_blended_td_target_wraps_only_this_agent_within_the_block():
    from trajlab.unlearning import blended_td_target

    dataset = synthetic_dataset(num_episodes=4, episode_length=6)
    agent_class = AGENTS.get("iql")  # deterministic td_target: r + gamma * V(s')
    agent, reference = (agent_class(dataset.spec, agent_class.config_class(**TINY), seed=seed) for seed in (0, 1))
    for each in (agent, reference):
        each.prepare(dataset)
    batch = agent.preprocess(dataset.batch_at(np.arange(8)))
    own, theirs = agent.td_target(batch), reference.td_target(batch)
    assert not torch.allclose(own, theirs)
    with blended_td_target(agent, reference, 0.25):
        assert torch.allclose(agent.td_target(batch), (own + 0.25 * theirs) / 1.25)
        assert torch.equal(reference.td_target(batch), theirs)
    assert torch.equal(agent.td_target(batch), own) and "td_target" not in vars(agent)


@pytest.mark.parametrize("algo", ["bcq", "bear", "cql", "iql", "plas", "td3_bc"])
def test_every_method_runs_on_the_papers_six_algorithms(algo):
    dataset = synthetic_dataset(num_episodes=5, episode_length=6)
    agent_class = AGENTS.get(algo)
    agent = agent_class(dataset.spec, agent_class.config_class(), seed=0)
    agent.prepare(dataset)
    configs = [TrajDeleterConfig(forget_steps=4, convergence_steps=2, block_length=2, batch_size=8),
               FinetuneConfig(steps=2, batch_size=8), RandomRewardConfig(steps=2, batch_size=8),
               RetrainConfig(steps=2)]
    for config in configs:
        unlearned = unlearn(agent, dataset, [3], config)
        values = unlearned.q_value(torch.as_tensor(dataset.observations[:4].copy()),
                                   torch.as_tensor(unlearned.act(dataset.observations[:4])))
        assert values.shape == (4,) and torch.isfinite(values).all()
