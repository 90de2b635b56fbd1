"""GAE for reward and cost, decremental episode ids, probes and CKA on small hand-made inputs."""

import numpy as np
import pytest

from trajlab.core.errors import TrajlabError
from trajlab.eval.latents import HazardProbe, fit_probe, linear_cka
from trajlab.training.onpolicy import gae
from trajlab.unlearning.safety import _episode_ids


def test_gae_matches_hand_computation_and_cuts_at_episode_ends():
    rewards = np.array([[1.0], [0.0], [2.0]], dtype=np.float32)
    values = np.array([[0.5], [1.0], [0.0]], dtype=np.float32)
    dones = np.array([[0.0], [1.0], [0.0]], dtype=np.float32)
    adv, ret = gae(rewards, values, dones, np.array([3.0], dtype=np.float32), gamma=0.9, lam=0.5)
    # t=2: delta = 2 + 0.9*3 - 0 = 4.7; t=1 (episode ends): delta = 0 - 1 = -1; t=0: delta = 1 + 0.9*1 - 0.5 = 1.4,
    # A_0 = 1.4 + 0.45 * (-1) = 0.95
    assert adv[:, 0] == pytest.approx([0.95, -1.0, 4.7])
    assert ret[:, 0] == pytest.approx([1.45, 0.0, 4.7])


def test_episode_ids_are_unique_per_env_and_episode():
    dones = np.array([[0, 1], [1, 0], [0, 0]], dtype=np.float32)
    ids = _episode_ids(dones, 10)
    assert ids[:, 0].tolist() == [10, 10, 11]
    assert ids[:, 1].tolist() == [12, 13, 13]


def test_probe_separates_a_linear_concept_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    features = rng.normal(size=(800, 6)).astype(np.float32)
    labels = features[:, 2] > 0.5
    probe = fit_probe(features, labels, per_class=200, tau_quantile=0.8, seed=0, model_fingerprint="abc")
    assert probe.accuracy > 0.9
    assert abs(probe.direction[2]) > 0.9
    loaded = HazardProbe.load(probe.save(tmp_path / "probe.json"))
    assert loaded == probe


def test_probe_needs_both_classes():
    with pytest.raises(TrajlabError, match="too few hazard"):
        fit_probe(np.zeros((50, 3)), np.zeros(50, dtype=bool), per_class=10, tau_quantile=0.8, seed=0)


def test_linear_cka_is_one_under_rotation_and_lower_for_unrelated_features():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 5))
    rotation, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    assert linear_cka(x, 3.0 * x @ rotation) == pytest.approx(1.0)
    assert linear_cka(x, rng.normal(size=(300, 5))) < 0.2
