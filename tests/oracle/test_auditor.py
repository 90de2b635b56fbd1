"""TrajAuditor on planted truth: the same trajectories are members of a fully trained agent and non-members of
an agent retrained without them; the auditor must tell them apart (far better than chance) on a tiny problem
where each episode lives in its own region of the state space and was trained on heavily (2,000 updates).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trajlab.algos import AGENTS
from trajlab.audit import AuditConfig, TrajAuditor, efficacy_evaluation
from trajlab.audit.shadows import train_shadows
from trajlab.testing import clustered_dataset
from trajlab.unlearning import RetrainConfig, TrajDeleterConfig, unlearn
from trajlab.unlearning.retrain import train_from_scratch


def isolated_episodes(dataset, count: int) -> np.ndarray:
    centres = np.stack([episode.observations.mean(0) for episode in dataset.episodes()])
    distances = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    return np.sort(dataset.episode_id_list[np.argsort(-distances.min(1))[:count]])


@pytest.fixture(scope="module")
def planted():
    dataset = clustered_dataset(seed=0, spread=6.0)
    config = AGENTS.get("td3_bc").config_class(actor_hidden=(32, 32), critic_hidden=(32, 32), batch_size=32,
                                               gamma=0.5, actor_lr=1e-3, critic_lr=1e-3, tau=0.01)
    full = train_from_scratch(AGENTS.get("td3_bc"), dataset.spec, config, dataset, steps=2000, seed=0)
    forget = isolated_episodes(dataset, 3)
    retrained = unlearn(full, dataset, forget, RetrainConfig())
    auditor = TrajAuditor(full, dataset.without(forget), AuditConfig(num_shadows=5, shadow_steps=50)).fit()
    return dataset, full, retrained, forget, auditor


def test_members_and_non_members_are_told_apart(planted):
    dataset, full, retrained, forget, auditor = planted
    members = auditor.audit(full, dataset, forget)  # the full agent was trained on them
    non_members = auditor.audit(retrained, dataset, forget)  # the retrained agent never saw them
    assert members.forgotten_rate == 0.0
    assert non_members.forgotten_rate == 1.0
    for verdict in non_members.verdicts:
        assert verdict.statistic > verdict.threshold > 0
    # the efficacy evaluation over the planted groups is far better than chance
    remaining = [i for i in dataset.episode_id_list if i not in forget][:4]
    efficacy = efficacy_evaluation(auditor, full, retrained, dataset, forget, remaining)
    assert efficacy["retained_rate"]["full_agent/forget_set"] == 1.0
    assert efficacy["retained_rate"]["retrained_agent/forget_set"] == 0.0
    assert efficacy["precision"] == 1.0 and efficacy["balanced_accuracy"] > 0.7


def test_trajdeleter_output_is_judged_forgotten(planted):
    dataset, full, _, forget, auditor = planted
    unlearned = unlearn(full, dataset, forget, TrajDeleterConfig(forget_steps=400, convergence_steps=100,
                                                                 block_length=50))
    assert auditor.audit(unlearned, dataset, forget).forgotten_rate == 1.0


def test_shadows_are_identical_in_process_and_through_the_executor(planted):
    dataset, full, _, forget, _ = planted
    remaining = dataset.without(forget)
    config = AuditConfig(num_shadows=2, shadow_steps=5, batch_size=8)
    in_process = train_shadows(full, remaining, config)
    through_files = train_shadows(full, remaining, AuditConfig(num_shadows=2, shadow_steps=5, batch_size=8,
                                                               executor="serial"))
    for first, second in zip(in_process, through_files):
        for name, module in first.modules().items():
            other = second.modules()[name].state_dict()
            assert all(torch.equal(value, other[key]) for key, value in module.state_dict().items())
    first_critic = in_process[0].critic.state_dict()
    assert any(not torch.equal(value, in_process[1].critic.state_dict()[key]) for key, value in first_critic.items())
