"""Every bad forget request stops with a one-line error and exit code 2, before anything is written; the
original run is never touched. Checked through the CLI and through the Python API of every method."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from trajlab.algos import load_agent
from trajlab.cli import main
from trajlab.core.errors import TrajlabError
from trajlab.data.ids import parse_episode_ids, read_episodes_file
from trajlab.testing import synthetic_dataset
from trajlab.training.offline import TrainConfig
from trajlab.training.offline import run as train
from trajlab.unlearning import METHODS, unlearn
from trajlab.unlearning.base import select_fraction


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny td3_bc run on a 10-episode dataset (ids 0..9), and datasets that do not match it."""
    folder = tmp_path_factory.mktemp("forget-requests")
    synthetic_dataset(num_episodes=10, episode_length=8).save(folder / "data.hdf5")
    synthetic_dataset(num_episodes=10, episode_length=8, observation_dim=5).save(folder / "wide.hdf5")
    other_env = synthetic_dataset(num_episodes=10, episode_length=8).with_metadata(env_id="Hopper-v5")
    other_env.save(folder / "other_env.hdf5")
    (folder / "empty.txt").write_text("# nobody\n")
    train(TrainConfig(algo="td3_bc", dataset=str(folder / "data.hdf5"), steps=5, out=str(folder / "run"),
                      overrides={"actor_hidden": [8], "critic_hidden": [8], "batch_size": 8}, progress=False))
    return folder


def run_files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


BAD_REQUESTS = {
    "unknown ids": (["--episodes", "3,42"], "unknown episode id(s) 42"),
    "empty set": (["--episodes", ""], "the forget set is empty"),
    "empty file": (["--episodes-file", "{dir}/empty.txt"], "the forget set is empty"),
    "whole dataset": (["--episodes", "0,1,2,3,4,5,6,7,8,9"], "the forget set is the whole dataset (10 episodes)"),
    "not an id": (["--episodes", "3,x"], "'x' is not an episode id"),
    "no selection": ([], "give exactly one of --episodes, --episodes-file, --fraction and --episodes-from"),
    "two selections": (["--episodes", "3", "--fraction", "0.1"], "give exactly one of"),
    "fraction out of range": (["--fraction", "1.5"], "--fraction must be in (0, 1)"),
    "mismatched dimensions": (["--episodes", "3", "--dataset", "{dir}/wide.hdf5"],
                              "dataset does not match the agent: observations 5-d"),
    "mismatched environment": (["--episodes", "3", "--dataset", "{dir}/other_env.hdf5"],
                               "dataset is from Hopper-v5 but the agent was trained on synthetic"),
    "unknown method": (["--episodes", "3", "--method", "forgetful"],
                       "unknown trajectory-forgetting method 'forgetful'; known: trajdeleter, finetune"),
    "a safety method": (["--episodes", "3", "--method", "concept"],
                        "'concept' (a safety unlearning method: trajlab safe unlearn --method)"),
    "output is the original run": (["--episodes", "3", "--out", "{dir}/run/sub"], "inside the original agent's run"),
    "missing agent": (["--episodes", "3", "--agent", "{dir}/nowhere"], "no such agent run or checkpoint"),
    "bad method setting": (["--episodes", "3", "--set", "trajdeleter.block_length=0"], "block_length must be positive"),
    "bad auditor setting": (["--episodes", "3", "--audit", "--executor", "cluster"], "unknown executor 'cluster'"),
    "negative control group": (["--episodes", "3", "--audit", "--controls", "-1"], "control_episodes must be"),
    "evaluate without an environment": (["--episodes", "3", "--evaluate"], "unknown environment 'synthetic'"),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_request_exits_2_with_one_line_and_writes_nothing(trained, capsys, case):
    extra, message = BAD_REQUESTS[case]
    extra = [part.replace("{dir}", str(trained)) for part in extra]
    options = {"--agent": str(trained / "run"), "--dataset": str(trained / "data.hdf5"),
               "--out": str(trained / "new-run")}
    for flag in ("--agent", "--dataset", "--out"):
        if flag in extra:
            options[flag] = extra.pop(extra.index(flag) + 1)
            extra.remove(flag)
    before = run_files(trained / "run")
    with pytest.raises(SystemExit) as stopped:
        main(["forget", *[item for pair in options.items() for item in pair], *extra])
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1 and message in error, error
    assert not (trained / "new-run").exists()
    assert not (trained / "run" / "sub").exists()
    assert run_files(trained / "run") == before


@pytest.mark.parametrize("method", ["trajdeleter", "finetune", "random-reward", "retrain"])
def test_every_method_checks_the_request_before_training(trained, method):
    agent = load_agent(trained / "run" / "checkpoints" / "final.safetensors")
    config = METHODS.get(method).config_class()
    from trajlab.data import TransitionDataset

    dataset = TransitionDataset.load(trained / "data.hdf5")
    wide = TransitionDataset.load(trained / "wide.hdf5")
    for ids, data, message in [([], dataset, "empty"), ([99], dataset, "unknown episode id"),
                               (range(10), dataset, "whole dataset"), ([1], wide, "does not match")]:
        with pytest.raises(TrajlabError, match=message):
            unlearn(agent, data, ids, config)
    assert agent.num_updates == 5


def test_fraction_selection_is_seeded_and_never_empty():
    dataset = synthetic_dataset(num_episodes=10, episode_length=4)
    assert select_fraction(dataset, 0.01, seed=3).tolist() == select_fraction(dataset, 0.01, seed=3).tolist()
    assert len(select_fraction(dataset, 0.01, seed=3)) == 1
    assert len(select_fraction(dataset, 0.3, seed=0)) == 3
    chosen = {tuple(select_fraction(dataset, 0.3, seed=s)) for s in range(5)}
    assert len(chosen) > 1


def test_episode_id_files_and_lists(tmp_path):
    (tmp_path / "ids.txt").write_text("3, 17\n42 # the last one\n")
    (tmp_path / "ids.json").write_text("[5, 1, 5]")
    assert read_episodes_file(tmp_path / "ids.txt") == [3, 17, 42]
    assert read_episodes_file(tmp_path / "ids.json") == [1, 5]
    assert parse_episode_ids("3,17 42") == [3, 17, 42]
    with pytest.raises(TrajlabError, match="not found"):
        read_episodes_file(tmp_path / "missing.txt")
    assert np.array_equal(parse_episode_ids(["7"]), [7])
