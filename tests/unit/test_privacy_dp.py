"""DP fine-tuning through Opacus, checkpoints of DP models, releasing samples, fidelity (tiny models)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trajlab.core.checkpoint import load_checkpoint
from trajlab.core.errors import TrajlabError
from trajlab.privacy import synthesis
from trajlab.privacy.diffusion import Denoiser, DiffusionConfig
from trajlab.privacy.fidelity import fidelity
from trajlab.privacy.synthesis import sample_transitions
from trajlab.privacy.training import (
    DPConfig,
    OptimConfig,
    check_dp_request,
    finetune_dp,
    load_model,
    new_model,
    plain_state_dict,
    pretrain,
    save_model,
    split_members,
)
from trajlab.testing import synthetic_dataset

TINY = DiffusionConfig(width=16, depth=1, projection=8, time_features=4, sample_steps=4)
DP = DPConfig(epsilon=8.0, delta=1e-3, batch_size=32, epochs=1)


@pytest.fixture(scope="module")
def public():
    return synthetic_dataset(num_episodes=4, episode_length=20, seed=1)


@pytest.fixture(scope="module")
def private():
    return synthetic_dataset(num_episodes=8, episode_length=25, seed=2)


@pytest.fixture(scope="module")
def finetuned(public, private):
    bundle = new_model([public], TINY, seed=0)
    pretrain(bundle, [public], steps=5, batch_size=16, optim=OptimConfig(), seed=0)
    before = {name: value.clone() for name, value in bundle.model.state_dict().items()}
    split = split_members(private, 0.8, seed=0)
    report, losses = finetune_dp(bundle, private.subset_transitions(split.members), DP, OptimConfig(), seed=0)
    return bundle, before, report, losses, split


def test_dp_finetune_runs_moves_the_weights_and_stays_within_the_budget(finetuned):
    bundle, before, report, losses, split = finetuned
    assert report.num_members == len(split.members) == 160
    assert report.epsilon_rdp <= DP.epsilon and report.epsilon_rdp > 0.5 * DP.epsilon
    assert report.epsilon_prv is not None and 0 < report.epsilon_prv <= DP.epsilon * 1.05
    assert report.sample_rate == pytest.approx(1 / 5) and report.steps == 5 and report.noise_multiplier > 0
    assert len(losses) > 0 and np.isfinite(losses).all()
    after = bundle.model.state_dict()
    assert any(not torch.equal(before[name], after[name]) for name in before if not name.endswith("weights"))


def test_member_split_is_disjoint_covers_the_data_and_is_seeded(private):
    split = split_members(private, 0.8, seed=3)
    assert len(split.members) == 160 and len(split.non_members) == 40
    assert np.intersect1d(split.members, split.non_members).size == 0
    assert np.array_equal(np.union1d(split.members, split.non_members), np.sort(private.transition_ids))
    assert np.array_equal(split.members, split_members(private, 0.8, seed=3).members)
    assert not np.array_equal(split.members, split_members(private, 0.8, seed=4).members)


def test_checkpoint_after_dp_loads_into_the_plain_model(finetuned, tmp_path):
    bundle, _, report, _, _ = finetuned
    bundle.info = {"privacy": report.to_dict(), "public_sources": ["pub.h5"], "private_sources": ["priv.h5"]}
    path = save_model(tmp_path / "model.safetensors", bundle)
    state, metadata = load_checkpoint(path)
    assert not any("_module" in key for key in state["model"])
    plain = Denoiser(bundle.dim, TINY)
    plain.load_state_dict(state["model"])  # strict: every key of the plain model, nothing else
    loaded = load_model(path)
    x, c = torch.randn(3, bundle.dim), torch.zeros(3)
    assert torch.allclose(loaded.model(x, c), bundle.model(x, c)) and torch.allclose(plain(x, c), bundle.model(x, c))
    assert metadata["privacy"]["epsilon_rdp"] == report.epsilon_rdp and metadata["privacy"]["accountant"] == "rdp"
    assert (tmp_path / "model.json").is_file()


def test_plain_state_dict_strips_the_opacus_wrapper_prefix():
    from opacus import GradSampleModule

    model = Denoiser(5, TINY)
    wrapped = GradSampleModule(model)
    assert any(key.startswith("_module.") for key in wrapped.state_dict())
    assert list(plain_state_dict(wrapped)) == list(model.state_dict())


@pytest.mark.parametrize(("change", "members", "message"), [
    ({"epsilon": 0.0}, 500, "epsilon"),
    ({"epsilon": -1.0}, 500, "epsilon"),
    ({"delta": 1 / 500}, 500, "delta"),
    ({"delta": 0.0}, 500, "delta"),
    ({"batch_size": 128}, 100, "smaller than the batch"),
])
def test_bad_dp_requests_are_one_line_user_errors(change, members, message):
    from dataclasses import replace

    with pytest.raises(TrajlabError, match=message) as caught:
        check_dp_request(replace(DPConfig(delta=1e-4), **change), members)
    assert "\n" not in str(caught.value)
    check_dp_request(DPConfig(delta=1e-4, batch_size=100), 500)


def test_private_data_of_another_space_is_rejected_before_training(public):
    bundle = new_model([public], TINY, seed=0)
    other = synthetic_dataset(num_episodes=8, episode_length=25, observation_dim=3)
    with pytest.raises(TrajlabError, match="does not match"):
        finetune_dp(bundle, other, DP, OptimConfig(), seed=0)
    with pytest.raises(TrajlabError, match="different observation/action spaces"):
        new_model([public, other], TINY, seed=0)


def test_samples_have_fresh_ids_provenance_and_nan_rows_dropped_and_counted(finetuned, monkeypatch):
    bundle, _, report, _, _ = finetuned
    bundle.info = {"privacy": report.to_dict(), "public_sources": ["pub.h5"], "private_sources": ["priv.h5"]}
    result = sample_transitions(bundle, 9, seed=0, chunk=4)
    data = result.dataset
    assert len(data) == 9 and result.dropped_nonfinite == 0
    assert np.array_equal(data.transition_ids, np.arange(9)) and data.num_episodes == 9
    assert np.all(np.abs(data.actions) <= 1.0)
    assert data.metadata["epsilon"] == report.epsilon_rdp and data.metadata["delta"] == DP.delta
    assert data.metadata["accountant"] == "rdp" and data.metadata["noise_multiplier"] == report.noise_multiplier
    assert data.metadata["private_sources"] == ["priv.h5"] and data.metadata["public_sources"] == ["pub.h5"]
    again = sample_transitions(bundle, 9, seed=0, chunk=4).dataset
    assert np.array_equal(again.observations, data.observations)

    def with_nans(model, num, dim, config, generator, device):
        rows = torch.zeros(num, dim)
        rows[::2, 1] = float("nan")
        return rows

    monkeypatch.setattr(synthesis, "heun_sample", with_nans)
    broken = sample_transitions(bundle, 6, seed=0)
    assert broken.dropped_nonfinite == 3 and len(broken.dataset) == 3


def test_fidelity_is_one_for_identical_data_and_drops_for_shifted_data(private):
    same = fidelity(private, private)
    assert same.column_shapes == pytest.approx(1.0) and same.column_pair_trends == pytest.approx(1.0)
    shifted = private.with_rewards(private.rewards + 3.0)
    moved = fidelity(private, shifted)
    assert moved.per_column["reward"] < 0.2 and moved.per_column["obs_0"] == pytest.approx(1.0)
    noisy = synthetic_dataset(num_episodes=8, episode_length=25, seed=9)
    assert fidelity(private, noisy).column_shapes < same.column_shapes
    with pytest.raises(TrajlabError, match="dimensions"):
        fidelity(private, synthetic_dataset(observation_dim=3))


def test_attack_metrics_match_a_hand_computed_roc():
    from trajlab.privacy.membership import attack_metrics

    # 4 of 6 (member, non-member) pairs rank the member higher; above every non-member only the member at 3
    metrics = attack_metrics(np.array([3.0, 2.0, 1.0]), np.array([0.0, 2.5]))
    assert metrics["auc"] == pytest.approx(4 / 6)
    assert metrics["tpr_at_0.1_fpr"] == pytest.approx(1 / 3) and metrics["tpr_at_0.001_fpr"] == pytest.approx(1 / 3)
    assert metrics["smallest_resolvable_fpr"] == 0.5
    separated = attack_metrics(np.array([5.0, 6.0]), np.array([0.0, 1.0, 2.0]))
    assert separated["auc"] == 1.0 and separated["tpr_at_0.01_fpr"] == 1.0
    with pytest.raises(TrajlabError, match="at least one"):
        attack_metrics(np.array([1.0]), np.array([]))


def test_loss_attack_finds_the_members_of_an_overfit_model():
    from trajlab.privacy.membership import AttackConfig, membership_attack

    data = synthetic_dataset(num_episodes=2, episode_length=16, observation_dim=2, action_dim=1, seed=5)
    split = split_members(data, 0.5, 0)
    members, non_members = data.subset_transitions(split.members), data.subset_transitions(split.non_members)
    bundle = new_model([members], DiffusionConfig(width=128, depth=2, projection=32), seed=0)
    pretrain(bundle, [members], steps=250, batch_size=16, seed=0,
             optim=OptimConfig(learning_rate=3e-3, ema_decay=0.9, ema_every=1))
    result = membership_attack(bundle, members, non_members, AttackConfig(sigma=0.5, repeats=16))
    assert result["auc"] >= 0.9 and result["tpr_at_0.1_fpr"] >= 0.5


@pytest.mark.parametrize("preset", ["quick", "paper"])
def test_every_preset_section_loads_into_its_config(preset):
    from trajlab.commands.synth import (
        AttackRunConfig,
        BaselineConfig,
        EvaluateConfig,
        FinetuneConfig,
        PretrainConfig,
        SampleConfig,
        load_synth_config,
    )

    pre = load_synth_config(PretrainConfig, "pretrain", preset, public=["p.h5"], out="o")
    fine = load_synth_config(FinetuneConfig, "finetune", preset, pretrained="r", private="d.h5", out="o")
    load_synth_config(SampleConfig, "sample", preset, model="r", out="s.h5")
    load_synth_config(EvaluateConfig, "evaluate", preset, synthetic="s.h5", real="d.h5", out="o")
    load_synth_config(AttackRunConfig, "attack", preset, model="r", private="d.h5", out="o")
    tabular = load_synth_config(BaselineConfig, "baseline", preset, method="mst", private="d.h5", public=["p.h5"],
                                out="b.h5")
    assert (tabular.epsilon, tabular.delta, tabular.member_fraction) == (fine.dp.epsilon, fine.dp.delta, 0.8)
    assert (fine.dp.epsilon, fine.dp.delta, fine.dp.batch_size, fine.dp.epochs) == (10.0, 1e-6, 128, 5)
    assert fine.dp.max_grad_norm == 1.0 and fine.dp.member_fraction == 0.8
    if preset == "paper":
        assert (pre.diffusion.width, pre.diffusion.depth, pre.diffusion.sample_steps, pre.steps) == (2048, 6, 128,
                                                                                                     100_000)
    else:
        assert pre.diffusion.width <= 256 and pre.steps <= 5000
    with pytest.raises(TrajlabError, match="unknown option"):
        load_synth_config(FinetuneConfig, "finetune", preset, pretrained="r", private="d.h5", out="o",
                          dp={"epsilonn": 1.0})


def test_pretraining_is_deterministic_for_a_seed(public):
    def trained(seed: int) -> dict[str, torch.Tensor]:
        bundle = new_model([public], TINY, seed=seed)
        pretrain(bundle, [public], steps=3, batch_size=8, optim=OptimConfig(ema_every=1), seed=seed)
        return {**bundle.model.state_dict(), **{f"ema.{k}": v for k, v in bundle.ema.state_dict().items()}}

    first, again, other = trained(0), trained(0), trained(1)
    assert all(torch.equal(first[name], again[name]) for name in first)
    assert any(not torch.equal(first[name], other[name]) for name in first)


def test_distance_to_closest_record_flags_copies_of_members_and_not_fresh_draws(public):
    from trajlab.privacy.membership import distance_to_closest_record

    data = synthetic_dataset(num_episodes=10, episode_length=40, seed=4)
    split = split_members(data, 0.5, 0)
    members, non_members = data.subset_transitions(split.members), data.subset_transitions(split.non_members)
    bundle = new_model([public], TINY, seed=0)
    copies = distance_to_closest_record(bundle, members, members, non_members, seed=0)
    assert copies["closer_to_member_share"] == 1.0 and copies["dcr_members_median"] == 0.0
    assert copies["dcr_non_members_median"] > 0 and copies["reference_rows"] == 200
    fresh = synthetic_dataset(num_episodes=10, episode_length=40, seed=11)
    unrelated = distance_to_closest_record(bundle, fresh, members, non_members, seed=0)
    assert 0.4 < unrelated["closer_to_member_share"] < 0.6
