"""`trajlab train` and `trajlab eval` end to end on tiny synthetic HDF5 datasets (a few updates each)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from trajlab.algos import load_agent
from trajlab.cli import run as cli
from trajlab.testing import synthetic_dataset
from trajlab.training.offline import RESULT_KEYS

TINY = ["--set", "batch_size=16", "--log-every", "2", "--checkpoint-every", "3"]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    synthetic_dataset().save(tmp_path / "tiny.hdf5")
    return tmp_path


def metric_rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("algo", ["bc", "td3_bc", "iql", "awac", "cql"])
def test_train_writes_a_complete_run_directory(workdir, capsys, algo):
    assert cli("train", "--algo", algo, "--dataset", "tiny.hdf5", "--steps", 7, "--json", *TINY) == 0
    printed = json.loads(capsys.readouterr().out)
    run = workdir / "runs" / f"{algo}_tiny_seed0"
    result = json.loads((run / "result.json").read_text())
    assert printed == result
    assert set(result) == set(RESULT_KEYS)
    assert (result["algo"], result["steps"], result["seed"], result["eval_mean_return"]) == (algo, 7, 0, None)
    assert result["updates_per_s"] > 0 and result["wall_time_s"] > 0
    assert result["final_metrics"] and all(isinstance(v, float) for v in result["final_metrics"].values())
    assert [row["step"] for row in metric_rows(run)] == ["2", "4", "6", "7"]
    names = sorted(p.name for p in (run / "checkpoints").glob("*.safetensors"))
    assert names == ["final.safetensors", "step_3.safetensors", "step_6.safetensors", "step_7.safetensors"]
    agent = load_agent(result["checkpoint"])
    assert agent.name == algo and agent.num_updates == 7
    assert (run / "config.yaml").read_text().count(f"algo: {algo}") == 1


def test_resume_after_an_interruption_gives_the_uninterrupted_result(workdir, monkeypatch):
    args = ["train", "--algo", "td3_bc", "--dataset", "tiny.hdf5", "--steps", 8, *TINY]
    assert cli(*args, "--out", "whole") == 0

    from trajlab.data.sampler import TensorSampler

    original, calls = TensorSampler.sample, {"count": 0}

    def interrupted_sample(self, batch_size):
        calls["count"] += 1
        if calls["count"] == 6:
            raise KeyboardInterrupt
        return original(self, batch_size)

    monkeypatch.setattr(TensorSampler, "sample", interrupted_sample)
    assert cli(*args, "--out", "cut") == 130
    assert not (workdir / "cut" / "result.json").exists()
    assert (workdir / "cut" / "checkpoints" / "step_5.safetensors").exists()  # saved on the interrupt
    monkeypatch.setattr(TensorSampler, "sample", original)

    assert cli(*args, "--out", "cut", "--resume") == 0
    whole = load_file(str(workdir / "whole" / "checkpoints" / "final.safetensors"))
    resumed = load_file(str(workdir / "cut" / "checkpoints" / "final.safetensors"))
    assert whole.keys() == resumed.keys()
    assert all((whole[name] == resumed[name]).all() for name in whole)
    rows_whole, rows_cut = metric_rows(workdir / "whole"), metric_rows(workdir / "cut")
    assert [r["step"] for r in rows_cut] == ["2", "4", "6", "8"]
    assert [r["critic_loss"] for r in rows_cut] == [r["critic_loss"] for r in rows_whole]
    assert json.loads((workdir / "cut" / "result.json").read_text())["resumed_from_step"] == 5


def test_resume_refuses_different_settings(workdir, capsys):
    args = ["train", "--algo", "bc", "--dataset", "tiny.hdf5", "--out", "run", *TINY]
    assert cli(*args, "--steps", 3) == 0
    (workdir / "run" / "result.json").unlink()  # as if it had been interrupted
    capsys.readouterr()
    assert cli(*args, "--steps", 4, "--resume") == 2
    assert "different steps" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--algo", "nope", "--dataset", "tiny.hdf5", "--steps", 3], "unknown algorithm 'nope'"),
    (["--algo", "iql", "--dataset", "missing.hdf5", "--steps", 3], "missing.hdf5: dataset file not found"),
    (["--algo", "iql", "--dataset", "tiny.hdf5", "--steps", 3, "--preset", "huge"], "unknown preset 'huge'"),
    (["--algo", "iql", "--dataset", "tiny.hdf5", "--steps", 3, "--set", "expectle=0.9"], "unknown option(s) expectle"),
    (["--algo", "iql", "--dataset", "tiny.hdf5", "--steps", 0], "steps must be at least 1"),
    (["--algo", "iql", "--dataset", "tiny.hdf5", "--steps", 3, "--resume", "--out", "none"], "no run to resume"),
    (["--algo", "iql", "--dataset", "not-data.txt", "--steps", 3], "not a readable HDF5 file"),
])
def test_bad_input_is_one_line_on_stderr_and_exit_code_2(workdir, capsys, args, message):
    (workdir / "not-data.txt").write_text("hello")
    assert cli("train", *args) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1
    assert message in captured.err
    assert not (workdir / "runs").exists()  # nothing written for a refused command


def test_a_finished_run_is_kept_unless_overwrite(workdir, capsys):
    args = ["train", "--algo", "bc", "--dataset", "tiny.hdf5", "--steps", 2, "--out", "run", *TINY]
    assert cli(*args) == 0
    before = (workdir / "run" / "result.json").read_text()
    assert cli(*args) == 2
    assert "finished run is already there" in capsys.readouterr().err
    assert (workdir / "run" / "result.json").read_text() == before
    assert cli(*args, "--overwrite") == 0


def test_eval_reports_mean_return_and_normalised_score(workdir, capsys):
    # behaviour returns as `data generate` records them: the second score is relative to them, the first to D4RL
    hopper_shaped = synthetic_dataset(observation_dim=11, action_dim=3).with_metadata(
        env_id="Hopper-v5", random_return=10.0, expert_return=210.0)
    hopper_shaped.save(workdir / "hopper.hdf5")
    args = ["train", "--algo", "iql", "--dataset", "hopper.hdf5", "--steps", 4, "--out", "run", *TINY]
    assert cli(*args, "--eval-every", 2, "--eval-episodes", 2, "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["env_id"] == "Hopper-v5" and result["eval_episodes"] == 2
    assert isinstance(result["eval_mean_return"], float) and isinstance(result["eval_normalized_score"], float)
    assert [row["eval_return"] != "nan" for row in metric_rows(workdir / "run")] == [True, True]

    assert cli("eval", "run", "--episodes", 3, "--seed", 5, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["episodes"] == 3 and len(report["returns"]) == 3
    assert report["mean_return"] == pytest.approx(sum(report["returns"]) / 3)
    assert report["normalized_score"] == pytest.approx(100 * (report["mean_return"] + 20.272305) / (3234.3 + 20.272305))
    assert report["behaviour_normalized_score"] == pytest.approx(100 * (report["mean_return"] - 10.0) / 200.0)
    assert result["eval_behaviour_normalized_score"] == pytest.approx(100 * (result["eval_mean_return"] - 10.0) / 200.0)
    assert json.loads((workdir / "run" / "eval.json").read_text())["mean_return"] == report["mean_return"]


def test_eval_errors(workdir, capsys):
    assert cli("eval", "nowhere", "--episodes", 2) == 2
    assert "not a trajlab run directory" in capsys.readouterr().err
    assert cli("train", "--algo", "bc", "--dataset", "tiny.hdf5", "--steps", 2, "--out", "run", *TINY) == 0
    capsys.readouterr()
    assert cli("eval", "run", "--episodes", 2) == 2  # synthetic data names no known environment
    assert "unknown environment 'synthetic'" in capsys.readouterr().err


def test_cli_in_a_subprocess_reports_one_line_and_exit_code_2(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "trajlab.cli", "train", "--algo", "nope", "--dataset", "x.hdf5", "--steps", "1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 2
    assert completed.stderr.startswith("error: ") and completed.stderr.count("\n") == 1
    assert completed.stdout == ""


def test_the_summary_goes_to_stdout(workdir, capsys):
    assert cli("train", "--algo", "bc", "--dataset", "tiny.hdf5", "--steps", 2, "--out", "run", *TINY) == 0
    captured = capsys.readouterr()
    rows = dict(line.split(None, 1) for line in captured.out.splitlines())
    assert (rows["algo"], rows["steps"], rows["run_dir"]) == ("bc", "2", "run") and "wall_time_s" in rows
    assert "wall_time_s" not in captured.err


def test_online_algorithms_are_sent_to_train_online(workdir, capsys):
    assert cli("train", "--algo", "sac", "--dataset", "tiny.hdf5", "--steps", 2, "--out", "sac") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: sac is an online algorithm") and err.count("\n") == 1
    assert "trajlab train-online --algo sac" in err
    assert not (workdir / "sac").exists()
    assert cli("train", "--algo", "nope", "--dataset", "tiny.hdf5", "--steps", 2) == 2
    offline = capsys.readouterr().err.partition("offline algorithms: ")[2].strip().split(", ")
    assert {"bc", "td3_bc", "iql", "cql"} <= set(offline) and "sac" not in offline


def test_env_evaluates_in_an_environment_the_dataset_does_not_name(workdir, capsys):
    unnamed = synthetic_dataset(observation_dim=3, action_dim=1)
    unnamed.save(workdir / "unnamed.hdf5")
    args = ["train", "--algo", "bc", "--dataset", "unnamed.hdf5", "--steps", 2, "--eval-every", 2,
            "--eval-episodes", 1, *TINY]
    assert cli(*args, "--env", "Pendulum-v1", "--out", "run", "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["env_id"] == "Pendulum-v1" and isinstance(result["eval_mean_return"], float)
    assert cli(*args, "--env", "Nope-v0", "--out", "bad") == 2
    assert "unknown environment 'Nope-v0'" in capsys.readouterr().err and not (workdir / "bad").exists()
