"""`trajlab influence train | estimate | amend` end to end on Pendulum-v1 with tiny settings, and bad requests:
one-line error, exit code 2, nothing written."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from trajlab.algos import load_agent
from trajlab.cli import main

TINY_TRAIN = ["--env", "Pendulum-v1", "--steps", "300", "--learning-starts", "100", "--group-size", "100",
              "--members", "4", "--set", "hidden=[8,8]", "--set", "batch_size=16", "--threads", "1"]


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as stopped:
        main(list(args))
        raise SystemExit(0)
    captured = capsys.readouterr()
    return int(stopped.value.code or 0), captured.out, captured.err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("influence") / "run"
    with pytest.raises(SystemExit) as stopped:
        main(["influence", "train", *TINY_TRAIN, "--out", str(run), "--json"])
        raise SystemExit(0)
    assert stopped.value.code in (0, None)
    return run


def test_train_keeps_a_replay_buffer_with_masks(trained):
    assert (trained / "replay.npz").is_file() and (trained / "checkpoints/final.safetensors").is_file()
    with np.load(trained / "replay.npz", allow_pickle=False) as archive:
        assert archive["masks"].shape == (300, 4) and int(archive["mask_group_size"]) == 100
    assert load_agent(trained / "checkpoints/final.safetensors").name == "masked_sac"


def test_estimate_writes_every_groups_influences(trained, capsys):
    out = trained.parent / "estimate"
    code, stdout, _ = _cli(capsys, "influence", "estimate", str(trained), "--n-eval", "1", "--out", str(out),
                           "--json")
    assert code == 0
    result = json.loads(stdout)
    assert json.loads((out / "result.json").read_text()) == result
    assert [g["group"] for g in result["groups"]] == [0, 1, 2]
    assert [g["transition_ids"] for g in result["groups"]] == [[0, 99], [100, 199], [200, 299]]
    assert all(set(g["influence"]) == {"return", "bias", "td", "policy"} for g in result["groups"])
    assert all(sum(g["mask"]) == 2 for g in result["groups"])
    assert set(result["base"]) == {"return", "bias"} and result["num_members"] == 4
    for name in ("report.html", "config.yaml", "plots/influence_return.png", "plots/influence_bias.png"):
        assert (out / name).is_file(), name


def test_amend_writes_the_agent_without_the_group_as_a_normal_checkpoint(trained, capsys):
    estimate, out = trained.parent / "estimate-for-amend", trained.parent / "amended"
    assert _cli(capsys, "influence", "estimate", str(trained), "--n-eval", "1", "--scores", "return",
                "--out", str(estimate))[0] == 0
    code, stdout, _ = _cli(capsys, "influence", "amend", str(trained), "--estimate", str(estimate), "--n-eval", "1",
                           "--out", str(out), "--json")
    assert code == 0
    result = json.loads(stdout)
    chosen = json.loads((estimate / "result.json").read_text())
    best = max(chosen["groups"], key=lambda g: g["influence"]["return"])
    assert result["group"] == best["group"]
    assert result["deploy_mask"] == [1 - m for m in best["mask"]]
    agent = load_agent(result["checkpoint"])
    assert agent.deploy_mask.int().tolist() == result["deploy_mask"]


def test_a_run_without_masks_is_refused(tmp_path, capsys):
    plain = tmp_path / "plain"
    assert _cli(capsys, "train-online", "--env", "Pendulum-v1", "--steps", "150", "--learning-starts", "100",
                "--eval-every", "0", "--eval-episodes", "1", "--checkpoint-every", "0", "--set", "hidden=[8,8]",
                "--set", "batch_size=16", "--out", str(plain))[0] == 0
    code, _, err = _cli(capsys, "influence", "estimate", str(plain), "--out", str(tmp_path / "est"))
    assert code == 2 and "no masked ensembles" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "est").exists()


def test_an_unknown_group_is_refused(trained, capsys):
    out = trained.parent / "never"
    code, _, err = _cli(capsys, "influence", "estimate", str(trained), "--groups", "1,9", "--out", str(out))
    assert code == 2 and "unknown group id(s) 9" in err and not out.exists()
    code, _, err = _cli(capsys, "influence", "amend", str(trained), "--group", "9", "--out", str(out))
    assert code == 2 and "unknown group id(s) 9" in err and not out.exists()


def test_a_group_larger_than_the_run_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = _cli(capsys, "influence", "train", *TINY_TRAIN, "--group-size", "1000", "--out", str(out))
    assert code == 2 and "group size 1000 is larger" in err and not out.exists()


def test_estimates_during_training_leave_the_training_unchanged(trained, tmp_path, capsys):
    run = tmp_path / "with-estimates"
    code, _, _ = _cli(capsys, "influence", "train", *TINY_TRAIN, "--estimate-every", "150", "--out", str(run))
    assert code == 0
    history = json.loads((run / "influence_history.json").read_text())
    assert [entry["step"] for entry in history] == [150, 300]
    assert [entry["groups"] for entry in history] == [[0, 1], [0, 1, 2]]
    assert len(history[1]["influence"]["return"]) == 3
    assert (run / "plots/influence_heatmap.png").is_file()
    plain, estimated = (load_agent(path / "checkpoints/final.safetensors") for path in (trained, run))
    for name, module in plain.networks.items():
        for (key, value), other in zip(module.state_dict().items(), estimated.networks[name].state_dict().values()):
            assert torch.equal(value, other), f"{name}.{key}"


def test_leave_one_out_retrains_without_each_group_and_compares_with_pitod(trained, capsys):
    estimate, out = trained.parent / "estimate-for-loo", trained.parent / "loo"
    assert _cli(capsys, "influence", "estimate", str(trained), "--n-eval", "1", "--scores", "return",
                "--out", str(estimate))[0] == 0
    code, stdout, _ = _cli(capsys, "influence", "loo", str(trained), "--estimate", str(estimate), "--updates", "3",
                           "--n-eval", "1", "--executor", "serial", "--out", str(out), "--json")
    assert code == 0
    result = json.loads(stdout)
    assert [g["group"] for g in result["groups"]] == [0, 1, 2]
    assert all(g["influence"] == pytest.approx(g["return"] - result["reference_return"]) for g in result["groups"])
    pitod = json.loads((estimate / "result.json").read_text())["groups"]
    assert result["pitod_influence"] == [g["influence"]["return"] for g in pitod]
    assert result["spearman"] is None or -1.0 <= result["spearman"] <= 1.0
    assert json.loads((out / "result.json").read_text()) == result


def test_leave_one_out_repeats_average_their_influences(trained, capsys):
    out = trained.parent / "loo-repeats"
    code, stdout, _ = _cli(capsys, "influence", "loo", str(trained), "--updates", "3", "--n-eval", "1",
                           "--repeats", "2", "--executor", "serial", "--out", str(out), "--json")
    assert code == 0
    result = json.loads(stdout)
    assert result["repeats"] == 2 and len(result["reference_return_per_repeat"]) == 2
    for group in result["groups"]:
        assert len(group["influence_per_repeat"]) == 2
        assert group["influence"] == pytest.approx(np.mean(group["influence_per_repeat"]))
    assert result["repeat_agreement"] is None or -1.0 <= result["repeat_agreement"] <= 1.0


def test_estimate_against_the_own_mask_and_a_bad_baseline(trained, capsys):
    out = trained.parent / "estimate-own"
    code, stdout, _ = _cli(capsys, "influence", "estimate", str(trained), "--n-eval", "1", "--scores", "return",
                           "--baseline", "own", "--out", str(out), "--json")
    assert code == 0 and json.loads(stdout)["settings"]["baseline"] == "own"
    code, _, stderr = _cli(capsys, "influence", "estimate", str(trained), "--baseline", "half",
                           "--out", str(trained.parent / "estimate-bad"))
    assert code == 2 and "unknown influence baseline" in stderr
    assert not (trained.parent / "estimate-bad").exists()


def test_a_planted_group_stores_its_rewards_scaled_and_nothing_else(tmp_path, capsys):
    # learning starts after the run, so both runs take the same random actions and see the same rewards
    same = ["--env", "Pendulum-v1", "--steps", "60", "--learning-starts", "59", "--group-size", "20", "--members",
            "4", "--set", "hidden=[8,8]", "--set", "batch_size=16", "--threads", "1"]
    for name, extra in (("plain", []), ("planted", ["--plant-group", "1", "--plant-reward-scale", "-100"])):
        code, _, err = _cli(capsys, "influence", "train", *same, *extra, "--out", str(tmp_path / name))
        assert code == 0, err
    rewards = {}
    for name in ("plain", "planted"):
        with np.load(tmp_path / name / "replay.npz", allow_pickle=False) as archive:
            rewards[name] = archive["rewards"][:60].copy()
    np.testing.assert_allclose(rewards["planted"][20:40], -100 * rewards["plain"][20:40], rtol=1e-6)
    np.testing.assert_array_equal(rewards["planted"][:20], rewards["plain"][:20])
    np.testing.assert_array_equal(rewards["planted"][40:], rewards["plain"][40:])
    assert np.any(rewards["plain"][20:40] != 0)


@pytest.mark.parametrize(("extra", "message"), [
    (["--plant-group", "3"], "--plant-group 3: the run has groups 0..2"),
    (["--plant-group", "-1"], "--plant-group -1: the run has groups 0..2"),
])
def test_a_planted_group_outside_the_run_is_refused(tmp_path, capsys, extra, message):
    code, _, err = _cli(capsys, "influence", "train", *TINY_TRAIN, *extra, "--out", str(tmp_path / "run"))
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_independent_members_train_estimate_and_amend(tmp_path, capsys):
    run, out = tmp_path / "run", tmp_path / "run" / "influence"
    code, _, _ = _cli(capsys, "influence", "train", *TINY_TRAIN, "--set", "member_coupling=independent",
                      "--out", str(run))
    assert code == 0
    agent = load_agent(run / "checkpoints/final.safetensors")
    assert agent.config.member_coupling == "independent" and agent.log_alpha.shape == (4, 1)
    code, stdout, _ = _cli(capsys, "influence", "estimate", str(run), "--n-eval", "1", "--baseline", "own",
                           "--out", str(out), "--json")
    assert code == 0
    result = json.loads(stdout)
    groups = result["groups"]
    assert len(groups) == 3 and all(np.isfinite(g["influence"]["bias"]) for g in groups)
    assert result["member_coupling"] == "independent"
    assert "independently, each its own agent" in (out / "report.html").read_text()
    code, stdout, _ = _cli(capsys, "influence", "amend", str(run), "--estimate", str(out), "--n-eval", "1",
                           "--out", str(tmp_path / "amended"), "--json")
    assert code == 0 and json.loads(stdout)["group"] in {g["group"] for g in groups}


def test_an_unknown_member_coupling_is_refused_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = _cli(capsys, "influence", "train", *TINY_TRAIN, "--set", "member_coupling=shared",
                        "--out", str(out))
    assert code == 2 and "member_coupling must be one of mean, independent" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()
