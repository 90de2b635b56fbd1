"""`trajlab synth pretrain|finetune|sample|evaluate` end to end with a tiny model, and its bad-input errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trajlab.cli import run as cli
from trajlab.data.dataset import TransitionDataset
from trajlab.testing import synthetic_dataset

TINY = ["--set", "diffusion.width=16", "--set", "diffusion.depth=1", "--set", "diffusion.projection=8",
        "--set", "diffusion.time_features=4", "--set", "diffusion.sample_steps=4", "--set", "batch_size=32",
        "--set", "log_every=2"]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    synthetic_dataset(num_episodes=4, episode_length=20, seed=1).save(root / "public.h5")
    synthetic_dataset(num_episodes=8, episode_length=25, seed=2).save(root / "private.h5")
    code = cli("synth", "pretrain", "--public", root / "public.h5", "--out", root / "pre", "--steps", 4,
               "--threads", 1, *TINY)
    assert code == 0
    return root


@pytest.fixture(scope="module")
def finetuned(pretrained):
    code = cli("synth", "finetune", pretrained / "pre", "--private", pretrained / "private.h5", "--out",
               pretrained / "dp", "--epsilon", 8, "--delta", 1e-3, "--batch-size", 32, "--epochs", 1, "--threads", 1)
    assert code == 0
    return pretrained / "dp"


def test_pretrain_finetune_sample_evaluate(pretrained, finetuned, capsys):
    root = pretrained
    assert json.loads((root / "pre" / "result.json").read_text())["steps"] == 4
    result = json.loads((finetuned / "result.json").read_text())
    privacy = result["privacy"]
    assert privacy["epsilon_rdp"] <= 8 and privacy["accountant"] == "rdp" and privacy["steps"] == 5
    assert result["members"] == 160 and result["non_members"] == 40
    with np.load(root / "dp" / "members.npz", allow_pickle=False) as ids:
        assert len(np.intersect1d(ids["member_transition_ids"], ids["non_member_transition_ids"])) == 0
        assert len(ids["member_transition_ids"]) == 160

    assert cli("synth", "sample", root / "dp", "--n", 40, "--out", root / "synthetic.h5", "--json") == 0
    sampled = json.loads(capsys.readouterr().out)
    assert sampled["transitions"] + sampled["dropped_nonfinite"] == 40
    data = TransitionDataset.load(root / "synthetic.h5")
    assert data.metadata["epsilon"] == privacy["epsilon_rdp"] and data.metadata["delta"] == 1e-3
    assert data.metadata["private_sources"] == [str(root / "private.h5")]
    assert data.metadata["public_sources"] == [str(root / "public.h5")]

    assert cli("synth", "evaluate", root / "synthetic.h5", "--real", root / "private.h5", "--out",
               root / "eval", "--json") == 0
    scores = json.loads(capsys.readouterr().out)
    assert 0 <= scores["column_shapes"] <= 1 and 0 <= scores["column_pair_trends"] <= 1
    assert (root / "eval" / "plots" / "marginals.png").is_file()
    assert (root / "eval" / "report.html").read_text().count("<img") == 1


@pytest.mark.parametrize(("args", "message"), [
    (["--epsilon", 0], "epsilon must be a positive number"),
    (["--epsilon", -2], "epsilon must be a positive number"),
    (["--delta", 0.01], "delta must be in (0, 1/n)"),
    (["--batch-size", 500, "--delta", 1e-4], "smaller than the batch"),
])
def test_bad_budget_or_batch_is_one_line_exit_2_and_writes_nothing(pretrained, capsys, args, message):
    out = pretrained / "bad"
    code = cli("synth", "finetune", pretrained / "pre", "--private", pretrained / "private.h5", "--out", out, *args)
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert not out.exists()


def test_private_data_of_another_space_is_rejected(pretrained, capsys):
    synthetic_dataset(num_episodes=8, episode_length=25, observation_dim=3).save(pretrained / "other.h5")
    out = pretrained / "bad_space"
    assert cli("synth", "finetune", pretrained / "pre", "--private", pretrained / "other.h5", "--out", out) == 2
    assert "does not match the public data's spaces" in capsys.readouterr().err and not out.exists()
    assert cli("synth", "pretrain", "--public", f"{pretrained / 'public.h5'},{pretrained / 'other.h5'}",
               "--out", out) == 2
    assert "different observation/action spaces" in capsys.readouterr().err and not out.exists()


def test_attack_on_a_finetuned_run(pretrained, finetuned, capsys):
    root, dp = pretrained, finetuned
    assert cli("synth", "sample", dp, "--n", 30, "--out", root / "released.h5") == 0
    capsys.readouterr()
    assert cli("synth", "attack", dp, "--private", root / "private.h5", "--out", root / "attack", "--repeats", 2,
               "--synthetic", root / "released.h5", "--json") == 0
    result = json.loads(capsys.readouterr().out)
    closest = result["distance_to_closest_record"]
    assert closest["reference_rows"] == 40 and closest["synthetic_rows"] <= 30
    assert 0 <= closest["closer_to_member_share"] <= 1 and closest["dcr_members_median"] >= 0
    assert result["attack"]["members"] == 160 and result["attack"]["non_members"] == 40
    assert 0 <= result["attack"]["auc"] <= 1 and result["epsilon"] <= 8
    assert cli("synth", "attack", dp, "--private", root / "public.h5", "--out", root / "attack_bad") == 2
    assert "not in this dataset" in capsys.readouterr().err and not (root / "attack_bad").exists()


def test_sampling_a_public_only_model_says_it_is_not_private_and_never_overwrites(pretrained, capsys):
    root = pretrained
    assert cli("synth", "sample", root / "pre", "--n", 5, "--out", root / "public_only.h5") == 0
    data = TransitionDataset.load(root / "public_only.h5")
    assert data.metadata["differentially_private"] is False and data.metadata["epsilon"] is None
    capsys.readouterr()
    assert cli("synth", "sample", root / "pre", "--n", 5, "--out", root / "public_only.h5") == 2
    assert "file exists" in capsys.readouterr().err
    assert cli("synth", "pretrain", "--public", root / "missing.h5", "--out", root / "none") == 2
    assert not (root / "none").exists()


def test_downstream_trains_on_real_and_synthetic_and_reports_the_share(tmp_path, capsys):
    from trajlab.data.collect import collect

    real = collect(None, "Pendulum-v1", num_transitions=400, seed=0)
    real.save(tmp_path / "real.h5")
    # a stand-in release: other random-policy transitions, labelled as an epsilon-10 sample would be
    collect(None, "Pendulum-v1", num_transitions=400, seed=1).with_metadata(epsilon=10.0).save(tmp_path / "syn.h5")
    assert cli("synth", "downstream", tmp_path / "syn.h5", "--real", tmp_path / "real.h5", "--algos", "bc",
               "--steps", 20, "--seeds", "0,1", "--eval-episodes", 1, "--threads", 1, "--out", tmp_path / "rl",
               "--json") == 0
    result = json.loads(capsys.readouterr().out)
    summary = result["summary"]["bc"]
    assert set(summary) == {"real", "synthetic-eps10"}
    real_runs = result["runs"]["bc"]["real"]
    assert [run["seed"] for run in real_runs] == [0, 1]
    assert summary["real"]["mean_return"] == pytest.approx(np.mean([run["return"] for run in real_runs]))
    assert summary["synthetic-eps10"]["share_of_real"] is None  # Pendulum's returns are negative: no share
    assert (tmp_path / "rl" / "bc" / "synthetic-eps10-seed1" / "checkpoints" / "final.safetensors").is_file()
    assert (tmp_path / "rl" / "plots" / "downstream.png").is_file()


def test_downstream_refuses_a_synthetic_dataset_of_another_space(tmp_path, capsys):
    from trajlab.data.collect import collect

    collect(None, "Pendulum-v1", num_transitions=50, seed=0).save(tmp_path / "real.h5")
    synthetic_dataset(num_episodes=2, episode_length=10).save(tmp_path / "other.h5")
    code = cli("synth", "downstream", tmp_path / "other.h5", "--real", tmp_path / "real.h5", "--out",
               tmp_path / "rl")
    assert code == 2
    assert "spaces differ from the real data's" in capsys.readouterr().err
    assert not (tmp_path / "rl").exists()


def test_finetune_without_dp_spends_no_budget_and_releases_data_without_a_guarantee(pretrained, capsys):
    root = pretrained
    # delta is not checked without DP (0.5 >= 1/n would be refused with it)
    assert cli("synth", "finetune", root / "pre", "--private", root / "private.h5", "--out", root / "nodp",
               "--no-dp", "--delta", 0.5, "--batch-size", 32, "--epochs", 2, "--threads", 1, "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["privacy"] is None and result["members"] == 160
    assert result["steps"] == 2 * 5  # two epochs of ceil(160 / 32) shuffled batches
    assert cli("synth", "sample", root / "nodp", "--n", 20, "--out", root / "nodp.h5") == 0
    assert TransitionDataset.load(root / "nodp.h5").metadata["epsilon"] is None
    with np.load(root / "nodp" / "members.npz", allow_pickle=False) as ids, \
            np.load(root / "dp" / "members.npz", allow_pickle=False) as dp_ids:
        np.testing.assert_array_equal(ids["member_transition_ids"], dp_ids["member_transition_ids"])


def test_the_quickstart_tour_releases_dp_data_and_reports_its_budget_fidelity_and_attack(tmp_path):
    from trajlab.commands.synth import quickstart_step

    synthetic_dataset(num_episodes=24, episode_length=25, seed=3).save(tmp_path / "data.h5")
    tour = quickstart_step(tmp_path / "synth", seed=0, dataset=tmp_path / "data.h5", max_rows=400,
                           pretrain_steps=3, samples=64)
    assert 0 < tour["epsilon"] <= 10 and 0 <= tour["column_shapes"] <= 1 and 0 <= tour["attack_auc"] <= 1
    budget, fidelity, attack = tour["sentences"]
    assert f"epsilon {tour['epsilon']:.2f} at delta 1e-06" in budget
    public = len(TransitionDataset.load(tmp_path / "synth" / "public.h5"))
    private = len(TransitionDataset.load(tmp_path / "synth" / "private.h5"))
    assert public + private <= 400 and f"pre-trained on {public} public transitions" in budget
    assert "64 released transitions" in fidelity and f"AUC {tour['attack_auc']:.3f}" in attack
    assert all(Path(plot).is_file() for plot in tour["plots"])


def test_zero_pretraining_steps_give_the_random_start_of_dp_without_pretraining(pretrained, capsys):
    root = pretrained
    assert cli("synth", "pretrain", "--public", root / "public.h5", "--out", root / "scratch", "--steps", 0,
               "--threads", 1, "--json", *TINY) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["steps"] == 0 and result["final_loss"] is None
    from trajlab.privacy.training import load_model

    start = load_model(root / "scratch" / "checkpoints" / "final.safetensors")
    trained = load_model(root / "pre" / "checkpoints" / "final.safetensors")
    np.testing.assert_array_equal(start.standardiser.mean, trained.standardiser.mean)  # the public statistics
    for plain, ema in zip(start.model.parameters(), start.ema.parameters()):
        assert np.array_equal(plain.detach().numpy(), ema.detach().numpy())  # untrained: EMA is the init
    assert cli("synth", "pretrain", "--public", root / "public.h5", "--out", root / "negative", "--steps", -1) == 2
    assert "steps must be at least 0" in capsys.readouterr().err and not (root / "negative").exists()
