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
    make_private,
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


def _one_private_step(bundle, batch: torch.Tensor, mode: str, max_grad_norm: float):
    """One DP-SGD step of SGD (lr 1) with zero noise: the parameter change is minus the clipped mean gradient."""
    import copy

    from opacus import PrivacyEngine

    from trajlab.core.seeding import torch_generator

    module = copy.deepcopy(bundle.model)
    before = [p.detach().clone() for p in module.parameters()]
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(batch), batch_size=4)
    model, optimizer, _, backward = make_private(
        PrivacyEngine(), module, torch.optim.SGD(module.parameters(), lr=1.0), loader,
        DPConfig(grad_sample_mode=mode, max_grad_norm=max_grad_norm), 0, noise_multiplier=0.0)
    optimizer.zero_grad()
    backward(model, batch, bundle, torch_generator(5))
    optimizer.step()
    return [b - p.detach() for b, p in zip(before, module.parameters())], model


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_ghost_clipping_clips_exactly_as_the_hooks_mode(public):
    bundle = new_model([public], TINY, seed=0)
    batch = torch.randn(12, bundle.dim, generator=torch.Generator().manual_seed(0))
    _, probe = _one_private_step(bundle, batch, "ghost", 1e6)
    norms = probe.per_sample_gradient_norms
    bound = float(norms.median())  # half the samples clipped, half not: both branches of the clip
    assert (norms > bound * 1.01).sum() >= 3 and (norms < bound * 0.99).sum() >= 3
    hooks, _ = _one_private_step(bundle, batch, "hooks", bound)
    ghost, _ = _one_private_step(bundle, batch, "ghost", bound)
    unclipped, _ = _one_private_step(bundle, batch, "hooks", 1e6)
    assert all(torch.allclose(h, g, rtol=1e-4, atol=1e-8) for h, g in zip(hooks, ghost))
    assert not all(torch.allclose(h, u, rtol=1e-2) for h, u in zip(hooks, unclipped))


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_an_empty_poisson_batch_in_ghost_mode_is_a_noise_only_step(public):
    from opacus import PrivacyEngine

    from trajlab.core.seeding import torch_generator

    bundle = new_model([public], TINY, seed=0)
    before = [p.detach().clone() for p in bundle.model.parameters()]
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.zeros(8, bundle.dim)), batch_size=4)
    model, optimizer, _, backward = make_private(
        PrivacyEngine(), bundle.model, torch.optim.SGD(bundle.model.parameters(), lr=1.0), loader,
        DPConfig(grad_sample_mode="ghost"), 0, noise_multiplier=1.0)
    optimizer.zero_grad()
    assert backward(model, torch.zeros(0, bundle.dim), bundle, torch_generator(0)).shape == (0,)
    optimizer.step()
    after = list(bundle.model.parameters())
    assert all(torch.isfinite(p).all() for p in after) and all(not torch.equal(b, p) for b, p in zip(before, after))


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_a_ghost_run_spends_the_budget_of_a_hooks_run_and_lands_on_its_weights(public, private, monkeypatch):
    from dataclasses import replace

    from trajlab.privacy import training

    # a few integer Renyi orders for both runs: the fractional ones make the noise search seconds long
    monkeypatch.setattr(training, "RDP_ORDERS", (2, 4, 8, 16, 32, 64, 128))
    members = private.subset_transitions(split_members(private, 0.8, seed=0).members)
    runs = {}
    for mode in ("hooks", "ghost"):
        bundle = new_model([public], TINY, seed=0)
        report, losses = finetune_dp(bundle, members, replace(DP, grad_sample_mode=mode), OptimConfig(), seed=0)
        runs[mode] = report, losses, bundle.model.state_dict()
    (hooks, hooks_losses, hooks_state), (ghost, ghost_losses, ghost_state) = runs["hooks"], runs["ghost"]
    assert ghost.to_dict() == hooks.to_dict() and ghost.steps == 5 and ghost.noise_multiplier > 0
    # same Poisson batches, noise draws and noise: only the route to the per-sample norms differs
    assert np.allclose(ghost_losses, hooks_losses, rtol=1e-4)
    assert all(torch.allclose(ghost_state[name], hooks_state[name], rtol=1e-3, atol=1e-5) for name in hooks_state)


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
    ({"grad_sample_mode": "ghosts"}, 500, "unknown grad_sample_mode 'ghosts'; known: hooks, functorch, ew, ghost"),
])
def test_bad_dp_requests_are_one_line_user_errors(change, members, message):
    from dataclasses import replace

    with pytest.raises(TrajlabError, match=message) as caught:
        check_dp_request(replace(DPConfig(delta=1e-4), **change), members)
    assert "\n" not in str(caught.value)
    check_dp_request(DPConfig(delta=1e-4, batch_size=100), 500)
    check_dp_request(DPConfig(delta=1e-4, batch_size=100, grad_sample_mode="ghost"), 500)


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
    config = AttackConfig(score="loss", sigmas=(0.5,), repeats=64, use_ema=True)
    result = membership_attack(bundle, members, non_members, config)
    assert result["auc"] >= 0.9 and result["tpr_at_0.1_fpr"] >= 0.5


def test_the_bench_preset_is_quick_with_a_longer_dp_fine_tuning():
    from trajlab.commands.synth import FinetuneConfig, PretrainConfig, load_synth_config
    from trajlab.core.config import to_dict

    def fine(preset):
        return load_synth_config(FinetuneConfig, "finetune", preset, pretrained="r", private="d.h5", out="o")

    def pre(preset):
        return to_dict(load_synth_config(PretrainConfig, "pretrain", preset, public=["p.h5"], out="o"))

    bench, quick = fine("bench"), fine("quick")
    assert (bench.dp.epochs, bench.optim.learning_rate) == (100, 1e-3)
    assert (quick.dp.epochs, quick.optim.learning_rate) == (5, 3e-4)
    assert (bench.dp.epsilon, bench.dp.batch_size) == (quick.dp.epsilon, quick.dp.batch_size)
    assert {**pre("bench"), "preset": None} == {**pre("quick"), "preset": None}


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
