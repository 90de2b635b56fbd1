"""`trajlab poison` end to end on a tiny Pendulum dataset with tiny networks and few updates."""

from __future__ import annotations

import json

from trajlab.cli import run as cli
from trajlab.testing import synthetic_dataset


def test_poison_experiment_writes_returns_and_recovery(tmp_path, capsys):
    dataset = synthetic_dataset(num_episodes=10, episode_length=6, observation_dim=3, action_dim=1)
    dataset.with_metadata(env_id="Pendulum-v1", action_low=[-2.0], action_high=[2.0]).save(tmp_path / "clean.hdf5")
    code = cli("poison", "--dataset", tmp_path / "clean.hdf5", "--out", tmp_path / "poison", "--train-steps", 10,
               "--fraction", 0.2, "--methods", "trajdeleter,retrain", "--threads", 1,
               "--set", "eval_episodes=1", "--set", "trajdeleter.forget_steps=6", "--set",
               "trajdeleter.convergence_steps=2", "--set", "trajdeleter.block_length=3", "--json")
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result == json.loads((tmp_path / "poison" / "result.json").read_text())
    assert result["num_poisoned_episodes"] == 2 and result["env_id"] == "Pendulum-v1"
    assert set(result["methods"]) == {"trajdeleter", "retrain"}
    for row in [result["poisoned_agent"], *result["methods"].values()]:
        assert {"normal_return", "triggered_return"} <= set(row)
    assert "recovery" in result["methods"]["retrain"] and result["methods"]["retrain"]["wall_time_s"] > 0
    assert result["methods"]["retrain"]["recovery_vs_retrain"] in (1.0, None)
    assert (tmp_path / "poison" / "agent" / "checkpoints" / "final.safetensors").is_file()
    assert (tmp_path / "poison" / "report.html").read_text().count("<img") == 2

    assert cli("poison", "--dataset", tmp_path / "clean.hdf5", "--out", tmp_path / "bad", "--methods", "nope") == 2
    assert "unknown trajectory-forgetting method" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_poison_summary_shows_each_method_and_progress_has_a_bar_per_method(tmp_path, capsys, monkeypatch):
    from contextlib import contextmanager

    from trajlab.commands import progress

    bars = []

    @contextmanager
    def recording_bar(description, total, **options):
        bar = {"description": description, "total": total, "done": 0}
        bars.append(bar)
        yield lambda done: bar.update(done=done)

    monkeypatch.setattr(progress, "update_bar", recording_bar)
    dataset = synthetic_dataset(num_episodes=10, episode_length=6, observation_dim=3, action_dim=1)
    dataset.with_metadata(env_id="Pendulum-v1", action_low=[-2.0], action_high=[2.0]).save(tmp_path / "clean.hdf5")
    code = cli("poison", "--dataset", tmp_path / "clean.hdf5", "--out", tmp_path / "poison", "--train-steps", 10,
               "--fraction", 0.2, "--methods", "trajdeleter,finetune", "--threads", 1, "--set", "eval_episodes=1",
               "--set", "trajdeleter.forget_steps=6", "--set", "trajdeleter.convergence_steps=2",
               "--set", "trajdeleter.block_length=3", "--set", "finetune.steps=5")
    assert code == 0
    rows = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    result = json.loads((tmp_path / "poison" / "result.json").read_text())
    assert rows["poisoned_agent.triggered_return"] == f"{result['poisoned_agent']['triggered_return']:.4g}"
    for method in ("trajdeleter", "finetune"):
        assert rows[f"methods.{method}.normal_return"] == f"{result['methods'][method]['normal_return']:.4g}"
        assert f"methods.{method}.wall_time_s" in rows and f"methods.{method}.normal_std" not in rows
    assert bars == [{"description": "poison: unlearning with trajdeleter", "total": 8, "done": 8},
                    {"description": "poison: unlearning with finetune", "total": 5, "done": 5}]

    assert cli("poison", "--dataset", tmp_path / "clean.hdf5", "--out", tmp_path / "online", "--algo", "sac") == 2
    err = capsys.readouterr().err
    assert "sac is an online algorithm" in err and "trajlab train-online" in err and err.count("\n") == 1
    assert not (tmp_path / "online").exists()
    assert cli("poison", "--dataset", tmp_path / "clean.hdf5", "--out", tmp_path / "poison") == 2
    assert "already holds files (use --overwrite" in capsys.readouterr().err
