"""`trajlab train-online` end to end on Pendulum-v1 with tiny settings: run directory, --json, --resume, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from trajlab.algos import load_agent
from trajlab.cli import main
from trajlab.core.checkpoint import load_checkpoint
from trajlab.training import online as trainer
from trajlab.training.online import RESULT_KEYS

TINY = ["--env", "Pendulum-v1", "--steps", "400", "--learning-starts", "100", "--eval-every", "200",
        "--eval-episodes", "2", "--checkpoint-every", "100", "--log-every", "100", "--set", "hidden=[16,16]",
        "--set", "batch_size=32", "--threads", "1"]


def _run_cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as stopped:
        main(["train-online", *args])
        raise SystemExit(0)
    captured = capsys.readouterr()
    return int(stopped.value.code or 0), captured.out, captured.err


def test_train_online_writes_a_run_directory(tmp_path, capsys):
    code, out, _ = _run_cli(capsys, *TINY, "--out", str(tmp_path / "run"), "--json")
    assert code == 0
    result = json.loads(out)
    assert set(RESULT_KEYS) <= set(result)
    assert set(result["final_eval"]) >= {"mean_return", "std_return", "normalized_score"}
    assert result["steps"] == 400 and result["updates"] == 300 and result["algo"] == "sac"
    assert result["env_steps_per_s"] > 0 and result["updates_per_s"] > 0
    assert [step for step, _ in result["eval_history"]] == [200, 400]
    assert result["final_eval"]["mean_return"] == result["eval_history"][-1][1]
    run = tmp_path / "run"
    assert json.loads((run / "result.json").read_text()) == result
    for name in ("config.yaml", "metrics.csv", "checkpoints/final.safetensors", "checkpoints/final.json",
                 "plots/learning_curve.png"):
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").iterdir())
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"step", "critic_loss", "actor_loss", "alpha", "episode_return", "eval_return"} <= set(header)
    agent = load_agent(run / "checkpoints/final.safetensors")
    assert agent.config.hidden == (16, 16) and agent.num_updates == 300


def test_resume_after_interruption_matches_an_uninterrupted_run(tmp_path, capsys, monkeypatch):
    code, _, _ = _run_cli(capsys, *TINY, "--out", str(tmp_path / "straight"))
    assert code == 0
    original = trainer.train_online

    def interrupted(*args, **kwargs):
        def stop(step, agent, replay):
            if step == 300:
                raise KeyboardInterrupt
        return original(*args, **{**kwargs, "callback": stop, "callback_every": 100})

    monkeypatch.setattr(trainer, "train_online", interrupted)
    code, _, err = _run_cli(capsys, *TINY, "--out", str(tmp_path / "run"))
    assert code == 130 and "--resume" in err
    assert not (tmp_path / "run" / "result.json").exists()
    assert (tmp_path / "run" / "checkpoints" / "step_200.safetensors").is_file()
    monkeypatch.setattr(trainer, "train_online", original)
    code, _, err = _run_cli(capsys, *TINY, "--out", str(tmp_path / "run"), "--resume")
    assert code == 0, err
    resumed, _ = load_checkpoint(tmp_path / "run" / "checkpoints" / "final.safetensors")
    straight, _ = load_checkpoint(tmp_path / "straight" / "checkpoints" / "final.safetensors")
    for name, module in straight["networks"].items():
        for key, value in module.items():
            assert torch.equal(value, resumed["networks"][name][key]), f"{name}.{key}"
    results = [json.loads((tmp_path / folder / "result.json").read_text()) for folder in ("straight", "run")]
    assert results[0]["eval_history"] == results[1]["eval_history"]
    steps = [line.split(",")[0] for line in (tmp_path / "run" / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == ["100", "200", "300", "400"]


def test_resume_refuses_other_settings_and_finished_runs(tmp_path, capsys):
    assert _run_cli(capsys, *TINY, "--out", str(tmp_path / "run"))[0] == 0
    code, _, err = _run_cli(capsys, *TINY, "--out", str(tmp_path / "run"), "--resume")
    assert code == 2 and "already finished" in err
    code, _, err = _run_cli(capsys, *TINY, "--out", str(tmp_path / "run"))
    assert code == 2 and "--overwrite" in err
    (tmp_path / "run" / "result.json").unlink()
    code, _, err = _run_cli(capsys, *TINY, "--seed", "1", "--out", str(tmp_path / "run"), "--resume")
    assert code == 2 and "different seed" in err


@pytest.mark.parametrize("args, message", [
    (["--env", "NoSuchEnv-v0"], "unknown environment 'NoSuchEnv-v0'"),
    (["--env", "Pendulum-v1", "--algo", "cql"], "unknown online algorithm 'cql'"),
    (["--env", "Pendulum-v1", "--preset", "huge"], "unknown preset 'huge'"),
    (["--env", "Pendulum-v1", "--set", "hiden=[8]"], "unknown option(s) hiden"),
    (["--env", "Pendulum-v1", "--steps", "0"], "total_steps must be at least 1"),
])
def test_user_mistakes_are_one_line_errors(tmp_path, capsys, args, message):
    code, _, err = _run_cli(capsys, *args, "--out", str(tmp_path / "run"))
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err
    assert not (tmp_path / "run").exists()


def test_unknown_env_from_the_shell(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "trajlab.cli", "train-online", "--algo", "sac", "--env", "Hoper-v5",
         "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines() == [completed.stderr.strip()]
    assert completed.stderr.startswith("error: unknown environment 'Hoper-v5'")


def test_droq_flag_sets_dropout_layer_norm_and_utd(tmp_path, capsys):
    args = ["--env", "Pendulum-v1", "--steps", "120", "--learning-starts", "100", "--eval-every", "0",
            "--eval-episodes", "1", "--set", "hidden=[8,8]", "--set", "batch_size=16", "--threads", "1", "--json"]
    code, out, _ = _run_cli(capsys, *args, "--droq", "--out", str(tmp_path / "droq"))
    assert code == 0 and json.loads(out)["updates"] == 20 * 20
    agent = load_agent(tmp_path / "droq" / "checkpoints" / "final.safetensors")
    assert (agent.config.critic_dropout, agent.config.critic_layer_norm, agent.config.utd_ratio) == (0.01, True, 20)
    code, out, _ = _run_cli(capsys, *args, "--droq", "--utd", "3", "--out", str(tmp_path / "utd3"))
    assert code == 0 and json.loads(out)["updates"] == 20 * 3


def test_the_summary_shows_the_final_evaluation(tmp_path, capsys):
    args = ["--env", "Pendulum-v1", "--steps", "120", "--learning-starts", "100", "--eval-every", "0",
            "--eval-episodes", "1", "--set", "hidden=[8,8]", "--set", "batch_size=16", "--threads", "1"]
    code, out, _ = _run_cli(capsys, *args, "--out", str(tmp_path / "run"))
    assert code == 0
    rows = dict(line.split(None, 1) for line in out.splitlines())
    final_eval = json.loads((tmp_path / "run" / "result.json").read_text())["final_eval"]
    assert rows["final_eval.mean_return"] == f"{final_eval['mean_return']:.4g}"
    assert rows["final_eval.episodes"] == "1" and "eval_history" not in rows


def test_a_run_from_before_a_setting_existed_resumes_at_its_default(tmp_path, capsys):
    import yaml

    assert _run_cli(capsys, *TINY, "--out", str(tmp_path / "run"))[0] == 0
    (tmp_path / "run" / "result.json").unlink()
    config_path = tmp_path / "run" / "config.yaml"
    stored = yaml.safe_load(config_path.read_text())
    for name in ("reward_scale_steps", "reward_scale"):  # settings added after such a run was written
        del stored["train"][name]
    config_path.write_text(yaml.safe_dump(stored))
    code, _, err = _run_cli(capsys, *TINY, "--out", str(tmp_path / "run"), "--resume")
    assert code == 0, err
