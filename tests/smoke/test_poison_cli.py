"""`trajlab poison` end to end on a tiny Pendulum dataset with tiny networks and few updates."""

from __future__ import annotations

import json

from trajlab.cli import main
from trajlab.testing import synthetic_dataset


def cli(*args: str) -> int:
    try:
        main([str(arg) for arg in args])
    except SystemExit as exit:
        return int(exit.code or 0)
    return 0


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
    assert "unknown unlearning method" in capsys.readouterr().err and not (tmp_path / "bad").exists()
