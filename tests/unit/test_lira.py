"""The likelihood-ratio membership test's formulas, checked against values computed by hand: the Gaussian
log-likelihood ratio, the offline one-sided score, per-trajectory and pooled variances, ROC/AUC/TPR-at-FPR, the
Mann-Whitney p-value, the verdict logic, the balanced IN/OUT design and the canaries' bookkeeping."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trajlab.audit.canaries import CANARY_KEY, canary_ids, plant_canaries
from trajlab.audit.lira import (
    Calibration,
    GaussianFits,
    LiraConfig,
    LiraResult,
    LiraVerdict,
    auc,
    calibrate,
    check_lira_config,
    fit_gaussians,
    gaussian_llr,
    greater_than_reference,
    membership_masks,
    offline_score,
    threshold_at_fpr,
    tpr_at_fpr,
)
from trajlab.core.errors import TrajlabError
from trajlab.testing import clustered_dataset


def fits(mean_in, std_in, mean_out, std_out) -> GaussianFits:
    return GaussianFits(*(np.array([value], dtype=float) for value in (mean_in, std_in, mean_out, std_out)))


def test_llr_of_known_gaussians():
    # log N(1; 1, 1) - log N(1; 0, 2) = [-log(2 pi)/2] - [-log 2 - log(2 pi)/2 - 1/8] = log 2 + 1/8
    assert gaussian_llr(np.array([1.0]), fits(1.0, 1.0, 0.0, 2.0))[0] == pytest.approx(math.log(2) + 0.125)
    # halfway between equal-variance Gaussians the ratio is 1
    assert gaussian_llr(np.array([0.5]), fits(1.0, 0.3, 0.0, 0.3))[0] == pytest.approx(0.0)


def test_offline_score_is_minus_log_upper_tail():
    # 1.6448536 standard deviations above the OUT mean leaves 5% above it
    value = np.array([2.0 + 1.6448536269514722 * 0.5])
    assert offline_score(value, fits(np.nan, 1.0, 2.0, 0.5))[0] == pytest.approx(-math.log(0.05), rel=1e-6)


def test_per_trajectory_and_global_variance():
    statistics = np.array([[1.0, 10.0], [3.0, 14.0], [5.0, 0.0], [9.0, 2.0]])
    masks = np.array([[True, True], [True, True], [False, False], [False, False]])
    own = fit_gaussians(statistics, masks, global_variance=False)
    np.testing.assert_allclose(own.mean_in, [2.0, 12.0])
    np.testing.assert_allclose(own.std_in, [math.sqrt(2.0), math.sqrt(8.0)])  # sample std of (1, 3), (10, 14)
    np.testing.assert_allclose(own.mean_out, [7.0, 1.0])
    np.testing.assert_allclose(own.std_out, [math.sqrt(8.0), math.sqrt(2.0)])
    pooled = fit_gaussians(statistics, masks, global_variance=True)
    # IN residuals (-1, 1, -2, 2): sum of squares 10 over 4 - 2 degrees of freedom
    np.testing.assert_allclose(pooled.std_in, [math.sqrt(5.0)] * 2)
    np.testing.assert_allclose(pooled.std_out, [math.sqrt(5.0)] * 2)
    np.testing.assert_allclose(pooled.mean_in, own.mean_in)


def test_a_single_sample_takes_the_pooled_variance():
    statistics = np.array([[1.0, 4.0], [3.0, 8.0], [0.0, 0.0]])
    masks = np.array([[True, True], [True, False], [False, False]])
    result = fit_gaussians(statistics, masks, global_variance=False)
    # column 1 has one IN value: it takes the pooled std of the IN residuals (-1, 1) over 3 - 2 degrees
    np.testing.assert_allclose(result.std_in, [math.sqrt(2.0), math.sqrt(2.0)])


def test_tpr_at_fpr_and_auc_on_a_known_example():
    members, others = np.array([3.0, 4.0, 5.0]), np.array([0.0, 1.0, 2.0, 3.5])
    assert auc(members, others) == pytest.approx(11 / 12)  # 3 loses to 3.5 only
    assert tpr_at_fpr(members, others, 0.01) == pytest.approx(2 / 3)  # above 3.5: 4 and 5
    assert tpr_at_fpr(members, others, 0.25) == pytest.approx(1.0)  # at 3: one false positive in four
    assert auc(np.array([1.0]), np.array([1.0])) == 0.5
    assert threshold_at_fpr(others, 0.25) > 2.0 and (others >= threshold_at_fpr(others, 0.25)).mean() == 0.25
    assert (others >= threshold_at_fpr(others, 0.01)).sum() == 0


def test_mann_whitney_p_value():
    # three values above all ten others: the exact one-sided p is 1 / C(13, 3)
    p = greater_than_reference(np.array([10.0, 11.0, 12.0]), np.arange(10.0))
    assert p == pytest.approx(1 / math.comb(13, 3))
    assert greater_than_reference(np.arange(10.0), np.array([10.0, 11.0, 12.0])) == pytest.approx(1.0)
    with pytest.raises(TrajlabError):
        greater_than_reference(np.array([]), np.arange(3.0))


def result_with(audited: list[float], controls: list[float]) -> LiraResult:
    calibration = Calibration(np.linspace(2, 4, 50), np.linspace(-1, 1, 50), 0.01)
    verdicts = [LiraVerdict(i, 0.0, s, s >= calibration.threshold) for i, s in enumerate(audited)]
    control = [LiraVerdict(100 + i, 0.0, s, s >= calibration.threshold) for i, s in enumerate(controls)]
    return LiraResult(verdicts, control, calibration, LiraConfig())


def test_verdicts():
    assert result_with([3.0, 3.5, 2.5], [3.0, 3.0, 3.0]).verdict()["verdict"] == "still a member"
    gone = result_with([0.0, -0.5, 0.3], [3.0, 2.9, 3.1])
    assert gone.verdict()["verdict"] == "indistinguishable from retraining" and gone.member_rate == 0.0
    assert result_with([0.0, -0.5, 0.3], [0.0, 0.1, -0.1]).verdict()["verdict"] == "not specific"
    summary = gone.to_dict()
    assert summary["test"] == "lira" and summary["control_member_rate"] == 1.0
    assert {"auc", "tpr_at_1pct_fpr", "tpr_at_0.1pct_fpr", "roc"} <= set(summary["error_rates"])


def test_balanced_design():
    masks = membership_masks(8, 30, seed=0)
    assert (masks.sum(0) == 4).all()
    assert not (masks == membership_masks(8, 30, seed=1)).all()
    out = membership_masks(8, 30, seed=0, always_out=np.array([2, 7]))
    assert not out[:, [2, 7]].any() and (out.sum(0)[[0, 1, 3]] == 4).all()


def test_calibration_separates_planted_statistics_and_not_noise():
    rng = np.random.default_rng(0)
    masks = membership_masks(16, 40, seed=0)
    shift = rng.normal(0, 3, size=40)  # each trajectory its own level, as real ones have
    separated = np.where(masks, 1.0, 0.0) + shift + rng.normal(0, 0.2, size=masks.shape)
    noise = shift + rng.normal(0, 0.2, size=masks.shape)
    for variance in ("global", "per-trajectory"):
        config = LiraConfig(num_shadows=16, variance=variance)
        assert calibrate(separated, masks, config).to_dict()["auc"] > 0.95
        assert 0.35 < calibrate(noise, masks, config).to_dict()["auc"] < 0.65
    assert calibrate(separated, masks, LiraConfig(num_shadows=16, offline=True)).to_dict()["auc"] > 0.9


def test_centring_undoes_an_outlying_shadow():
    """One shadow of 8 fitting every trajectory far better moves each trajectory's IN or OUT mean by more than the
    membership signal; centring each shadow on its own median takes that offset out again."""
    rng = np.random.default_rng(1)
    masks = membership_masks(8, 200, seed=1)
    statistics = np.where(masks, 0.3, 0.0) + rng.normal(0, 3, size=200) + rng.normal(0, 0.1, size=masks.shape)
    statistics[4] += 5.0  # the outlying shadow
    plain = calibrate(statistics, masks, LiraConfig(num_shadows=8)).to_dict()["auc"]
    centred = calibrate(statistics, masks, LiraConfig(num_shadows=8, centre=True)).to_dict()["auc"]
    assert centred > 0.85 and centred > plain + 0.1


@pytest.mark.parametrize("changes", [dict(num_shadows=0), dict(num_shadows=3), dict(statistic="loss"),
                                     dict(variance="both"), dict(decision_fpr=0.0), dict(executor="mpi"),
                                     dict(shadow_steps=0)])
def test_bad_settings(changes):
    with pytest.raises(TrajlabError):
        check_lira_config(LiraConfig(**changes))


def test_canaries_are_planted_in_a_copy_with_fresh_ids():
    dataset = clustered_dataset(seed=0)
    planted = plant_canaries(dataset, 3, seed=0)
    ids = canary_ids(planted)
    assert ids == [12, 13, 14] and planted.metadata[CANARY_KEY] == ids and canary_ids(dataset) == []
    assert planted.num_episodes == 15 and len(dataset) == 300  # the original is unchanged
    assert np.intersect1d(planted.subset(ids).transition_ids, dataset.transition_ids).size == 0
    centres = np.stack([planted.episode(i).observations.mean(0) for i in ids])
    assert np.linalg.norm(centres[0] - centres[1]) > 0.5  # each canary in its own region
    with pytest.raises(TrajlabError):
        plant_canaries(planted, 1)
    with pytest.raises(TrajlabError):
        plant_canaries(dataset, 0)
