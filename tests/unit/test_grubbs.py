"""TrajAuditor's statistics by hand: Grubbs critical values against the published table, Wasserstein distances
of known sequences, the discounted backward accumulation, and the verdict logic on agents with known values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import wasserstein_distance

from trajlab.audit import AuditConfig, TrajAuditor, grubbs_critical_value, membership_metrics
from trajlab.audit.trajauditor import discounted_backward, grubbs_statistic
from trajlab.core.errors import TrajlabError
from trajlab.testing import synthetic_dataset

# ASTM E178 (Grubbs 1969), one-sided critical values at 5%, 2.5% and 1% significance
ASTM_E178 = {3: (1.153, 1.155, 1.155), 10: (2.176, 2.290, 2.410), 20: (2.557, 2.708, 2.884),
             25: (2.663, 2.822, 3.009)}


@pytest.mark.parametrize("n", sorted(ASTM_E178))
def test_one_sided_critical_values_match_the_published_table(n):
    for alpha, expected in zip((0.05, 0.025, 0.01), ASTM_E178[n]):
        assert grubbs_critical_value(n, alpha) == pytest.approx(expected, abs=1.5e-3)


def test_two_sided_test_at_alpha_is_the_one_sided_test_at_half_alpha():
    # NIST/SEMATECH e-Handbook: two-sided n=10, alpha=0.05 -> 2.290
    assert grubbs_critical_value(10, 0.05, two_sided=True) == pytest.approx(2.290, abs=1e-3)
    for n in (5, 21, 40):
        assert grubbs_critical_value(n, 0.02, two_sided=True) == pytest.approx(grubbs_critical_value(n, 0.01))


def test_critical_value_is_below_the_largest_possible_statistic():
    # with the point in the sample, G can never exceed (n - 1) / sqrt(n)
    for n in (3, 21, 100):
        assert grubbs_critical_value(n, 1e-4) < (n - 1) / np.sqrt(n)


def test_grubbs_statistic_by_hand():
    # sample 1, 2, 3, 10: mean 4, sd = sqrt((9 + 4 + 1 + 36) / 3)
    assert grubbs_statistic(10.0, [1.0, 2.0, 3.0]) == pytest.approx(6.0 / np.sqrt(50.0 / 3.0))
    assert grubbs_statistic(-2.0, [1.0, 2.0, 3.0]) < 0 < grubbs_statistic(-2.0, [1.0, 2.0, 3.0], two_sided=True)
    assert grubbs_statistic(1.0, [1.0, 1.0, 1.0]) == 0.0


def test_grubbs_rejects_too_few_values_and_bad_alpha():
    with pytest.raises(TrajlabError):
        grubbs_critical_value(2, 0.05)
    with pytest.raises(TrajlabError):
        grubbs_critical_value(10, 0.0)


def test_wasserstein_of_known_sequences():
    assert wasserstein_distance([0.0, 1.0, 3.0], [5.0, 6.0, 8.0]) == pytest.approx(5.0)  # a shift by 5
    assert wasserstein_distance([0.0, 1.0], [0.0, 2.0]) == pytest.approx(0.5)  # sorted pairs differ by 0, 1
    assert wasserstein_distance([3.0, 1.0, 2.0], [1.0, 2.0, 3.0]) == 0.0  # order does not matter


def test_discounted_backward_accumulation():
    # A_2 = 3, A_1 = 2 + 0.5 * 3, A_0 = 1 + 0.5 * 3.5
    assert discounted_backward(np.array([1.0, 2.0, 3.0]), 0.5) == pytest.approx([2.75, 3.5, 3.0])
    two_rows = discounted_backward(np.array([[1.0, 1.0], [0.0, 2.0]]), 1.0)
    assert two_rows == pytest.approx(np.array([[2.0, 1.0], [2.0, 2.0]]))


def test_membership_metrics_by_hand():
    # members: 3 retained, 1 judged forgotten; non-members: 1 judged retained, 1 forgotten
    metrics = membership_metrics([True, True, True, True, False, False], [False, False, False, True, False, True])
    assert metrics["precision"] == pytest.approx(3 / 4)
    assert metrics["recall"] == pytest.approx(3 / 4)
    assert metrics["f1"] == pytest.approx(3 / 4)
    assert metrics["balanced_accuracy"] == pytest.approx((3 / 4 + 1 / 2) / 2)


class KnownValues:
    """An agent whose Q(s, a) = scale * sum(s) + offset, acting with zeros."""

    def __init__(self, scale: float, offset: float) -> None:
        self.scale, self.offset = scale, offset
        self.config = type("Config", (), {"gamma": 0.9, "batch_size": 8})()

    def act(self, observations, deterministic=True):
        return np.zeros((len(observations), 2), dtype=np.float32)

    def q_value(self, observations, actions):
        return self.scale * observations.sum(-1) + self.offset + 0.0 * actions.sum(-1)


def test_verdicts_separate_an_agent_unlike_its_shadows():
    dataset = synthetic_dataset(num_episodes=4, episode_length=40)
    shadows = [KnownValues(1.0, offset) for offset in (-0.02, -0.01, 0.0, 0.01, 0.02)]
    auditor = TrajAuditor(shadows[2], dataset, AuditConfig(num_shadows=5, noise_scale=0.08), shadows=shadows)
    like_shadows = auditor.audit(KnownValues(1.0, 0.005), dataset, [0, 1, 2, 3])
    unlike_shadows = auditor.audit(KnownValues(1.0, -5.0), dataset, [0, 1, 2, 3])
    assert like_shadows.forgotten_rate == 0.0
    assert unlike_shadows.forgotten_rate == 1.0
    verdict = unlike_shadows.verdicts[0].to_dict()
    assert verdict["decision"] == "forgotten" and verdict["statistic"] > verdict["threshold"]
    assert verdict["threshold"] == pytest.approx(grubbs_critical_value(21, 1e-4))


def test_auditing_is_deterministic_and_independent_of_the_other_audited_episodes():
    dataset = synthetic_dataset(num_episodes=4, episode_length=10)
    shadows = [KnownValues(1.0 + 0.01 * k, 0.0) for k in range(3)]
    auditor = TrajAuditor(shadows[0], dataset, AuditConfig(num_shadows=3), shadows=shadows)
    alone = auditor.audit(KnownValues(1.0, 0.3), dataset, [2]).verdicts[0]
    together = auditor.audit(KnownValues(1.0, 0.3), dataset, [0, 1, 2]).verdicts[2]
    assert alone == together


def test_an_agent_without_q_value_is_a_clear_error():
    dataset = synthetic_dataset(num_episodes=3, episode_length=5)
    shadows = [KnownValues(1.0, 0.0), KnownValues(1.0, 0.1)]

    class NoCritic:
        def act(self, observations, deterministic=True):
            return np.zeros((len(observations), 2), dtype=np.float32)

    auditor = TrajAuditor(shadows[0], dataset, AuditConfig(num_shadows=2), shadows=shadows)
    with pytest.raises(TrajlabError, match="q_value"):
        auditor.audit(NoCritic(), dataset, [0])
    assert torch.is_tensor(KnownValues(1.0, 0.0).q_value(torch.ones(2, 3), torch.zeros(2, 2)))


def test_original_critic_scores_every_policy_with_the_same_q():
    dataset = synthetic_dataset(num_episodes=3, episode_length=40)
    shadows = [KnownValues(1.0, offset) for offset in (-0.02, -0.01, 0.0, 0.01, 0.02)]
    different_critic_same_policy = KnownValues(1.0, -5.0)
    for critic, expected in (("own", 1.0), ("original", 0.0)):
        auditor = TrajAuditor(shadows[2], dataset, AuditConfig(num_shadows=5, value_critic=critic), shadows=shadows)
        assert auditor.audit(different_critic_same_policy, dataset, [0, 1, 2]).forgotten_rate == expected
    with pytest.raises(TrajlabError, match="value_critic"):
        TrajAuditor(shadows[0], dataset, AuditConfig(value_critic="theirs"))


class ForgetsSomeEpisodes(KnownValues):
    """Like KnownValues, but its values on the given observations (those of 'forgotten' episodes) are far lower."""

    def __init__(self, forgotten_observations: np.ndarray, offset: float) -> None:
        super().__init__(1.0, 0.0)
        self.forgotten = {row.tobytes() for row in np.asarray(forgotten_observations, dtype=np.float32)}
        self.low = offset

    def act(self, observations, deterministic=True):
        # the action marks forgotten states, so the (noisy) critic below can tell them apart
        marked = [row.tobytes() in self.forgotten for row in np.asarray(observations, dtype=np.float32)]
        return np.repeat(np.asarray(marked, dtype=np.float32)[:, None], 2, axis=1)

    def q_value(self, observations, actions):
        return observations.sum(-1) + self.low * actions[..., 0]


def _auditor_with_controls(dataset, **config):
    shadows = [KnownValues(1.0, offset) for offset in (-0.02, -0.01, 0.0, 0.01, 0.02)]
    return TrajAuditor(shadows[2], dataset, AuditConfig(num_shadows=5, **config), shadows=shadows)


def test_controls_tell_specific_forgetting_from_a_globally_changed_agent():
    dataset = synthetic_dataset(num_episodes=20, episode_length=30)
    forget = [3, 7, 11, 15]
    auditor = _auditor_with_controls(dataset)
    specific = auditor.audit(ForgetsSomeEpisodes(dataset.subset(forget).observations, -5.0), dataset, forget)
    assert specific.forgotten_rate == 1.0 and specific.control_forgotten_rate == 0.0
    assert len(specific.control) == len(forget)
    assert not set(v.episode_id for v in specific.control) & set(forget)
    # 4 of 4 against 0 of 4: p = 1 / C(8, 4)
    assert specific.specificity() == {"specificity": "specific", "specificity_p_value": pytest.approx(1 / 70)}
    everywhere = auditor.audit(KnownValues(1.0, -5.0), dataset, forget)
    assert everywhere.forgotten_rate == 1.0 and everywhere.control_forgotten_rate == 1.0
    assert everywhere.specificity()["specificity"] == "not specific"
    unchanged = auditor.audit(KnownValues(1.0, 0.005), dataset, forget)
    assert unchanged.specificity()["specificity"] == "nothing forgotten"
    summary = specific.to_dict()
    assert summary["control_audited"] == 4 and len(summary["control_trajectories"]) == 4


def test_control_group_size_seed_and_opt_out():
    dataset = synthetic_dataset(num_episodes=10, episode_length=10)
    agent = KnownValues(1.0, 0.0)
    first = _auditor_with_controls(dataset, control_episodes=3).audit(agent, dataset, [0, 1])
    again = _auditor_with_controls(dataset, control_episodes=3).audit(agent, dataset, [0, 1])
    assert [v.episode_id for v in first.control] == [v.episode_id for v in again.control]
    assert len(first.control) == 3
    assert len(_auditor_with_controls(dataset, control_episodes=50).audit(agent, dataset, [0]).control) == 9
    none = _auditor_with_controls(dataset, control_episodes=0).audit(agent, dataset, [0, 1])
    assert none.control == [] and none.control_forgotten_rate is None
    assert none.specificity()["specificity"] == "no control"
    assert _auditor_with_controls(dataset).audit(agent, dataset, [0, 1], control=False).control == []
    with pytest.raises(TrajlabError, match="control_episodes"):
        _auditor_with_controls(dataset, control_episodes=-1)


def test_shadow_steps_follow_the_unlearning_run_when_unset():
    from trajlab.audit.trajauditor import DEFAULT_SHADOW_STEPS, with_shadow_steps
    from trajlab.unlearning.base import method_updates

    assert method_updates("trajdeleter", {"forget_steps": 4000, "convergence_steps": 1000}, 20_000) == 5000
    assert method_updates("finetune", {"steps": 300}, 20_000) == 300
    assert method_updates("random-reward", {"steps": 70}, 20_000) == 70
    assert method_updates("retrain", {"steps": None}, 20_000) == 20_000
    assert method_updates("retrain", {"steps": 900}, 20_000) == 900
    assert method_updates("a method registered by a user", {}, 1) is None  # shadows fall back to the default
    unset = AuditConfig(shadow_steps=None)
    assert with_shadow_steps(unset, 5000).shadow_steps == 5000
    assert with_shadow_steps(unset, None).shadow_steps == DEFAULT_SHADOW_STEPS
    assert with_shadow_steps(AuditConfig(shadow_steps=30), 5000).shadow_steps == 30
    dataset = synthetic_dataset(num_episodes=3, episode_length=5)
    shadows = [KnownValues(1.0, 0.0), KnownValues(1.0, 0.1)]
    assert TrajAuditor(shadows[0], dataset, AuditConfig(num_shadows=2, shadow_steps=None),
                       shadows=shadows).config.shadow_steps == DEFAULT_SHADOW_STEPS
