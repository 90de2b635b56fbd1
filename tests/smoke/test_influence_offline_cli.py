"""The offline influence chain end to end on tiny data: `trajlab influence train --dataset`, `influence estimate`,
`trajlab forget --episodes-from RUN --worst N`, then `trajlab audit` on the result."""

from __future__ import annotations

import json

import pytest

from trajlab.cli import run as cli
from trajlab.testing import synthetic_dataset
from trajlab.training.offline import TrainConfig
from trajlab.training.offline import run as train

TINY = ["--set", "actor_hidden=[16]", "--set", "critic_hidden=[16]", "--set", "batch_size=16", "--threads", "1"]


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """A masked TD3+BC run on a Pendulum-shaped dataset (8 episodes, groups of 2) and its estimate."""
    folder = tmp_path_factory.mktemp("influence-offline")
    synthetic_dataset(num_episodes=8, episode_length=10, observation_dim=3, action_dim=1).with_metadata(
        env_id="Pendulum-v1").save(folder / "data.hdf5")
    synthetic_dataset(num_episodes=8, episode_length=10, observation_dim=3, action_dim=1, seed=1).with_metadata(
        env_id="Pendulum-v1").save(folder / "other.hdf5")
    assert cli("influence", "train", "--dataset", folder / "data.hdf5", "--algo", "td3_bc", "--steps", 30,
               "--group-size", 2, "--members", 4, "--out", folder / "run", *TINY) == 0
    assert cli("influence", "estimate", folder / "run", "--n-eval", 1, "--json") == 0
    return folder


def test_an_offline_estimate_lists_each_episode_group_with_its_influences(chain):
    result = json.loads((chain / "run" / "influence" / "result.json").read_text())
    assert result["kind"] == "offline" and result["group_unit"] == "episodes" and result["env_id"] == "Pendulum-v1"
    assert [group["episodes"] for group in result["groups"]] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert set(result["scores"]) == {"return", "td", "policy"} and "return" in result["base"]
    assert all(set(group["influence"]) == {"return", "td", "policy"} for group in result["groups"])
    assert all(sum(group["mask"]) == 2 for group in result["groups"])


def test_forget_episodes_from_the_worst_groups_then_audit(chain, capsys):
    capsys.readouterr()
    result = json.loads((chain / "run" / "influence" / "result.json").read_text())
    ranked = sorted(result["groups"], key=lambda group: -group["influence"]["td"])[:2]
    expected = sorted(episode for group in ranked for episode in group["episodes"])
    code = cli("forget", "--agent", chain / "run", "--dataset", chain / "data.hdf5", "--method", "finetune",
               "--episodes-from", chain / "run", "--worst", 2, "--by", "td", "--set", "finetune.steps=10",
               "--threads", 1, "--out", chain / "forget", "--json")
    assert code == 0
    forgotten = json.loads(capsys.readouterr().out)["forgotten_episode_ids"]
    assert forgotten == expected
    chosen = json.loads((chain / "forget" / "certificate.json").read_text())["selected_by"]
    assert chosen["by"] == "td" and chosen["worst"] == 2 and chosen["episode_ids"] == expected
    assert chosen["groups"] == [group["group"] for group in ranked]
    assert chosen["estimate"] == str((chain / "run" / "influence").resolve())
    code = cli("audit", "--agent", chain / "forget", "--dataset", chain / "data.hdf5", "--episodes",
               ",".join(map(str, expected)), "--out", chain / "audit", "--shadows", 2, "--set",
               "auditor.shadow_steps=10", "--executor", "serial", "--controls", 2, "--threads", 1, "--json")
    assert code == 0
    assert json.loads(capsys.readouterr().out)["audited"] == len(expected)


@pytest.mark.parametrize("case, args, message", [
    ("too-many", ["--worst", 9], "has 4 groups"),
    ("wrong-score", ["--worst", 1, "--by", "bias"], "--by bias"),
    ("other-data", ["--worst", 1, "--dataset-other"], "is not the dataset of influence run"),
    ("no-worst", [], "go together"),
])
def test_bad_chain_requests_stop_before_writing(chain, capsys, case, args, message):
    dataset = chain / ("other.hdf5" if "--dataset-other" in args else "data.hdf5")
    args = [arg for arg in args if arg != "--dataset-other"]
    out = chain / f"bad-{case}"
    assert cli("forget", "--agent", chain / "run", "--dataset", dataset, "--method", "finetune",
               "--episodes-from", chain / "run", *args, "--out", out) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_a_run_without_masks_is_refused(chain, tmp_path, capsys):
    train(TrainConfig(algo="td3_bc", dataset=str(chain / "data.hdf5"), steps=5, out=str(tmp_path / "plain"),
                      overrides={"actor_hidden": [16], "critic_hidden": [16], "batch_size": 16}, progress=False))
    assert cli("influence", "estimate", tmp_path / "plain", "--out", tmp_path / "est") == 2
    assert "no turn-over dropout masks" in capsys.readouterr().err
    assert not (tmp_path / "est").exists()
    assert cli("forget", "--agent", tmp_path / "plain", "--dataset", chain / "data.hdf5", "--episodes-from",
               tmp_path / "plain", "--worst", 1, "--out", tmp_path / "f") == 2
    assert "no influence estimate there" in capsys.readouterr().err
    assert not (tmp_path / "f").exists()


def test_offline_train_refuses_one_group_and_unknown_algorithms(chain, capsys):
    assert cli("influence", "train", "--dataset", chain / "data.hdf5", "--group-size", 8,
               "--out", chain / "one-group", *TINY) == 2
    assert "one group" in capsys.readouterr().err
    assert cli("influence", "train", "--dataset", chain / "data.hdf5", "--algo", "bcq",
               "--out", chain / "bcq") == 2
    assert "no masked variant" in capsys.readouterr().err
    assert not (chain / "one-group").exists() and not (chain / "bcq").exists()


def test_amend_an_offline_run_switches_its_most_harmful_group_off(chain, capsys):
    capsys.readouterr()
    result = json.loads((chain / "run" / "influence" / "result.json").read_text())
    worst = max(result["groups"], key=lambda group: group["influence"]["return"])
    assert cli("influence", "amend", chain / "run", "--out", chain / "amended", "--n-eval", 1, "--json") == 0
    amended = json.loads(capsys.readouterr().out)
    assert amended["group"] == worst["group"] and amended["episodes"] == worst["episodes"]
    from trajlab.algos import load_agent

    agent = load_agent(chain / "amended" / "checkpoints" / "final.safetensors")
    assert agent.deploy_mask.int().tolist() == [1 - bit for bit in worst["mask"]]


def test_leave_one_out_of_an_offline_run_points_to_retraining(chain, capsys):
    assert cli("influence", "loo", chain / "run", "--out", chain / "loo") == 2
    assert "--method retrain --episodes-from" in capsys.readouterr().err
    assert not (chain / "loo").exists()


def test_independent_members_train_estimate_and_forget_with_trajdeleter(chain, capsys):
    run = chain / "run-independent"
    assert cli("influence", "train", "--dataset", chain / "data.hdf5", "--algo", "iql", "--steps", 30,
               "--group-size", 2, "--members", 4, "--set", "member_coupling=independent", "--out", run, *TINY) == 0
    assert cli("influence", "estimate", run, "--n-eval", 1, "--baseline", "own") == 0
    assert json.loads((run / "influence" / "result.json").read_text())["member_coupling"] == "independent"
    capsys.readouterr()
    code = cli("forget", "--agent", run, "--dataset", chain / "data.hdf5", "--method", "trajdeleter",
               "--episodes-from", run, "--worst", 1, "--by", "td", "--set", "trajdeleter.forget_steps=5",
               "--set", "trajdeleter.convergence_steps=5", "--threads", 1, "--out", chain / "forget-ind", "--json")
    assert code == 0 and len(json.loads(capsys.readouterr().out)["forgotten_episode_ids"]) == 2
