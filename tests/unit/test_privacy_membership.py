"""The membership attack's scores (loss, and loss calibrated by a reference model) on tiny models."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from trajlab.core.errors import TrajlabError
from trajlab.privacy.diffusion import DiffusionConfig, Standardiser
from trajlab.privacy.membership import AttackConfig, loss_scores, membership_attack
from trajlab.privacy.training import OptimConfig, new_model, pretrain, split_members
from trajlab.testing import synthetic_dataset

TINY = DiffusionConfig(width=16, depth=1, projection=8, time_features=4, sample_steps=4)
CALIBRATED = AttackConfig(score="calibrated", sigmas=(0.1, 0.5), repeats=4)


@pytest.fixture(scope="module")
def data():
    return synthetic_dataset(num_episodes=2, episode_length=16, observation_dim=2, action_dim=1, seed=5)


@pytest.fixture(scope="module")
def reference(data):
    """A model trained a little on other rows of the same kind: it has never seen `data`."""
    public = synthetic_dataset(num_episodes=4, episode_length=16, observation_dim=2, action_dim=1, seed=6)
    bundle = new_model([public], DiffusionConfig(width=64, depth=1, projection=16), seed=0)
    pretrain(bundle, [public], steps=40, batch_size=16, seed=0, optim=OptimConfig(learning_rate=1e-3))
    return bundle


def test_a_target_identical_to_its_reference_scores_zero_on_every_row(data, reference):
    scores = loss_scores(reference, data, CALIBRATED, seed=3, reference=copy.deepcopy(reference))
    assert scores.shape == (len(data),) and np.all(scores == 0.0)


def test_the_calibrated_score_is_the_reference_loss_minus_the_target_loss(data, reference):
    target = copy.deepcopy(reference)
    pretrain(target, [data], steps=5, batch_size=16, seed=1, optim=OptimConfig(learning_rate=1e-3))
    loss = AttackConfig(score="loss", sigmas=CALIBRATED.sigmas, repeats=CALIBRATED.repeats)
    # the same seed gives both models the same noise, row by row and level by level
    expected = loss_scores(target, data, loss, seed=3) - loss_scores(reference, data, loss, seed=3)
    calibrated = loss_scores(target, data, CALIBRATED, seed=3, reference=reference)
    np.testing.assert_allclose(calibrated, expected, rtol=1e-9, atol=1e-12)


def test_a_model_that_memorised_its_members_gives_them_lower_calibrated_loss(data, reference):
    split = split_members(data, 0.5, 0)
    members, non_members = data.subset_transitions(split.members), data.subset_transitions(split.non_members)
    target = copy.deepcopy(reference)
    pretrain(target, [members], steps=600, batch_size=16, seed=0,
             optim=OptimConfig(learning_rate=3e-3, ema_decay=0.9, ema_every=1))
    config = AttackConfig(score="calibrated", sigmas=(0.1, 0.5), repeats=8)
    result = membership_attack(target, members, non_members, config, reference=reference)
    assert result["auc"] >= 0.9 and result["tpr_at_0.1_fpr"] >= 0.5
    assert result["score"] == "calibrated" and result["sigmas"] == [0.1, 0.5]
    assert np.median(loss_scores(target, members, config, 0, reference)) > \
        np.median(loss_scores(target, non_members, config, 0, reference))


@pytest.mark.parametrize(("config", "message"), [
    (AttackConfig(score="lira"), "unknown attack score 'lira'"),
    (AttackConfig(sigmas=()), "one or more positive noise levels"),
    (AttackConfig(sigmas=(0.5, 0.0)), "one or more positive noise levels"),
    (AttackConfig(repeats=0), "repeats at least 1"),
])
def test_a_bad_attack_config_is_a_one_line_error(data, reference, config, message):
    with pytest.raises(TrajlabError, match=message) as error:
        membership_attack(reference, data, data, config, reference=reference)
    assert "\n" not in str(error.value)


def test_an_empty_group_or_a_missing_or_foreign_reference_is_a_one_line_error(data, reference):
    with pytest.raises(TrajlabError, match="at least one member") as error:
        membership_attack(reference, data.subset_transitions(np.array([], dtype=np.int64)), data, CALIBRATED,
                          reference=reference)
    assert "\n" not in str(error.value)
    with pytest.raises(TrajlabError, match="needs a reference model"):
        loss_scores(reference, data, CALIBRATED, seed=0)
    foreign = copy.deepcopy(reference)
    foreign.standardiser = Standardiser(foreign.standardiser.mean + 1, foreign.standardiser.std)
    with pytest.raises(TrajlabError, match="does not share the target's standardisation"):
        loss_scores(reference, data, CALIBRATED, seed=0, reference=foreign)


@pytest.mark.parametrize(("args", "message"), [
    (["--score", "lira"], "unknown attack score 'lira'"),
    (["--sigma", "0.1,x"], "expected comma-separated numbers"),
])
def test_the_cli_rejects_a_bad_attack_before_it_reads_anything(tmp_path, capsys, args, message):
    from trajlab.cli import run as cli

    out = tmp_path / "attack"
    code = cli("synth", "attack", tmp_path / "no-run", "--private", tmp_path / "no.h5", "--out", out, *args)
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1 and not out.exists()
