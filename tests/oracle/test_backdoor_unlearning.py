"""TrajDeleter's backdoor variant against a planted backdoor (`forget_actions="neighbours"`).

Planted truth: two clean episodes are copied with a trigger (an offset on one observation dimension) and a bad
action (+1 everywhere), at the best reward. An agent trained on all of it acts badly at the triggered states.
The poisoned copies are the forget set. The paper's TrajDeleter keeps imitating their bad action on its forget
blocks; the variant lowers their values without imitating them, and imitates what the retained data does nearest
to each forgotten state (the clean twin's action), so its policy at the triggered states moves back towards the
clean action. IQL keeps the backdoor under the paper's method outright (measured: it moves the triggered
actions further from the clean ones than the original had them).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from trajlab.algos import AGENTS
from trajlab.testing import clustered_dataset
from trajlab.unlearning import TrajDeleterConfig, unlearn
from trajlab.unlearning.retrain import train_from_scratch
from trajlab.unlearning.trajdeleter import neighbour_transitions

TRIGGER = np.array([1.0, 0.0, 0.0], dtype=np.float32)


def poisoned(clean_ids=(2, 7)):
    clean = clustered_dataset(seed=0, spread=6.0)
    copies = clean.subset(clean_ids)
    offset_ids = clean.episode_id_list.max() + 1
    poison = dataclasses.replace(
        copies, observations=copies.observations + TRIGGER, next_observations=copies.next_observations + TRIGGER,
        actions=np.ones_like(copies.actions), rewards=np.full_like(copies.rewards, clean.rewards.max()),
        episode_ids=copies.episode_ids + offset_ids, transition_ids=copies.transition_ids + len(clean))
    return clean.concat(poison), clean, np.unique(poison.episode_ids)


@pytest.fixture(scope="module", params=["td3_bc", "iql"])
def backdoored(request):
    dataset, clean, forget = poisoned()
    agent_class = AGENTS.get(request.param)
    options = dict(actor_hidden=(32, 32), critic_hidden=(32, 32), batch_size=32, gamma=0.5, actor_lr=1e-3,
                   critic_lr=1e-3, tau=0.01)
    if request.param == "iql":
        options.update(value_lr=1e-3, actor_lr_decay_steps=0, scale_rewards=False)
    original = train_from_scratch(agent_class, dataset.spec, agent_class.config_class(**options), dataset,
                                  steps=1000, seed=0)
    return dataset, original, forget


def test_neighbour_transitions_are_the_nearest_retained_states_actions():
    dataset, clean, forget = poisoned()
    relabelled = neighbour_transitions(dataset.subset(forget), clean)
    # each triggered state's nearest clean state is its own untriggered twin (the trigger is far smaller than
    # the gaps between episodes), whose action is the clean one
    twins = clean.subset([2, 7])
    np.testing.assert_array_equal(relabelled.actions.shape, twins.actions.shape)
    assert np.abs(relabelled.actions - twins.actions).max() < 0.3
    assert not np.allclose(relabelled.actions, 1.0)
    assert np.abs(relabelled.rewards - twins.rewards).max() < 0.05  # the clean twin's, not the poisoned maximum
    np.testing.assert_array_equal(relabelled.observations, dataset.subset(forget).observations)


def test_the_variant_removes_the_backdoor_the_papers_method_keeps(backdoored):
    dataset, original, forget = backdoored
    triggered = dataset.subset(forget)
    clean_actions = clustered_dataset(seed=0, spread=6.0).subset([2, 7]).actions
    assert np.abs(original.act(triggered.observations) - 1.0).mean() < 0.4  # the backdoor is there

    before = float(np.abs(original.act(triggered.observations) - clean_actions).mean())

    def distance_to_clean(forget_actions: str) -> float:
        # the paper's method lands far from or near the clean actions depending on the sampling seed (IQL
        # measured at 0.05-0.9 over seeds): compare medians over seeds
        distances = []
        for seed in range(3):
            config = TrajDeleterConfig(forget_steps=400, convergence_steps=100, block_length=50,
                                       forget_actions=forget_actions, seed=seed)
            unlearned = unlearn(original, dataset, forget, config)
            distances.append(np.abs(unlearned.act(triggered.observations) - clean_actions).mean())
        return float(np.median(distances))

    papers, variant = distance_to_clean("dataset"), distance_to_clean("neighbours")
    assert variant < 0.6 * papers and variant < 0.5 * before, (before, papers, variant)


def test_an_unknown_forget_actions_value_is_refused(backdoored):
    from trajlab.core.errors import TrajlabError

    dataset, original, forget = backdoored
    with pytest.raises(TrajlabError, match="forget_actions must be one of dataset, neighbours"):
        unlearn(original, dataset, forget, TrajDeleterConfig(forget_steps=20, convergence_steps=0,
                                                              block_length=5, forget_actions="mirror"))
