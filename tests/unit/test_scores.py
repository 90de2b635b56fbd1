"""Normalised scores by hand: D4RL's references (eval_normalized_score) and the dataset's behaviour policies'
(eval_behaviour_normalized_score) are different numbers with different names."""

from __future__ import annotations

import numpy as np
import pytest

from trajlab.commands.datasets import dataset_info
from trajlab.eval import evaluate
from trajlab.eval.rollouts import EvalResult
from trajlab.eval.scores import behaviour_normalized_score, normalized_score, reference_returns
from trajlab.testing import synthetic_dataset

QUICK_HOPPER = {"random_return": 18.4, "expert_return": 224.2}
"""Behaviour returns of the size the quick Hopper preset measures (its SAC expert is far below D4RL's)."""


def test_the_d4rl_score_of_a_hopper_return_uses_d4rls_v2_references():
    # (362 - (-20.272305)) / (3234.3 - (-20.272305)) = 382.272305 / 3254.572305
    assert normalized_score(362.0, "Hopper-v5") == pytest.approx(11.74567, abs=1e-4)
    assert normalized_score(-20.272305, "Hopper-v5") == pytest.approx(0.0)
    assert normalized_score(12135.0, "HalfCheetah-v5") == pytest.approx(100.0)
    # Walker2d: (2296.96 - 1.629008) / (4592.3 - 1.629008) = 0.5
    assert normalized_score(2296.9645, "Walker2d-v5") == pytest.approx(50.0, abs=1e-4)


def test_d4rl_has_no_reference_for_other_environments():
    assert normalized_score(-150.0, "Pendulum-v1") is None
    assert normalized_score(1.0, "synthetic") is None and normalized_score(1.0, None) is None


def test_the_behaviour_score_uses_the_datasets_measured_returns():
    # (110 - 10) / (210 - 10) = 0.5; the quick Hopper numbers: (362 - 18.4) / (224.2 - 18.4) = 1.6696...
    assert behaviour_normalized_score(110.0, {"random_return": 10.0, "expert_return": 210.0}) == pytest.approx(50.0)
    assert behaviour_normalized_score(362.0, QUICK_HOPPER) == pytest.approx(166.96, abs=0.01)
    assert behaviour_normalized_score(110.0, {"random_return": 10.0}) is None
    assert behaviour_normalized_score(110.0, None) is None
    # an expert no better than random gives no scale
    assert behaviour_normalized_score(110.0, {"random_return": 10.0, "expert_return": 10.0}) is None


def test_exports_carry_d4rls_references_where_d4rl_has_them():
    assert reference_returns("Hopper-v5", QUICK_HOPPER) == (-20.272305, 3234.3, "d4rl")
    assert reference_returns("Pendulum-v1", QUICK_HOPPER) == (18.4, 224.2, "dataset")
    assert reference_returns("Pendulum-v1") is None


def test_an_evaluation_reports_both_scores_of_every_episode():
    class Still:
        def act(self, observations, deterministic=True):
            return np.zeros((len(observations), 3), dtype=np.float32)

    result = evaluate(Still(), "Hopper-v5", episodes=2, seed=0, metadata=QUICK_HOPPER, max_steps=5)
    expected_d4rl = 100 * (result.returns + 20.272305) / (3234.3 + 20.272305)
    expected_behaviour = 100 * (result.returns - 18.4) / (224.2 - 18.4)
    np.testing.assert_allclose(result.normalized_scores, expected_d4rl)
    np.testing.assert_allclose(result.behaviour_normalized_scores, expected_behaviour)
    summary = result.to_dict()
    assert summary["normalized_score"] == pytest.approx(expected_d4rl.mean())
    assert summary["behaviour_normalized_score"] == pytest.approx(expected_behaviour.mean())


def test_a_summary_leaves_out_scores_without_a_reference():
    result = EvalResult(env_id="Pendulum-v1", returns=np.array([-100.0]), lengths=np.array([200]))
    assert "normalized_score" not in result.to_dict() and "behaviour_normalized_score" not in result.to_dict()
    assert result.mean_normalized_score is None and result.mean_behaviour_normalized_score is None


def test_data_info_shows_both_scores_of_the_mean_return(tmp_path):
    dataset = synthetic_dataset(observation_dim=11, action_dim=3).with_metadata(env_id="Hopper-v5", **QUICK_HOPPER)
    path = dataset.save(tmp_path / "hopper.hdf5")
    info = dataset_info(path)
    mean = info["return_mean"]
    assert info["normalized_return_mean"] == pytest.approx(100 * (mean + 20.272305) / (3234.3 + 20.272305))
    assert info["behaviour_normalized_return_mean"] == pytest.approx(100 * (mean - 18.4) / (224.2 - 18.4))
