"""`trajlab safe` end to end at tiny sizes, and its bad-input errors (one line, exit 2, nothing written)."""

from __future__ import annotations

import json

import pytest

from trajlab.algos.base import new_agent, save_agent
from trajlab.algos.online.sac import SAC, SACConfig
from trajlab.cli import main
from trajlab.core.config import load_yaml
from trajlab.core.spec import SpaceSpec
from trajlab.data.dataset import TransitionDataset
from trajlab.unlearning.certificate import verify_certificate_hashes


def run_cli(args, capsys):
    try:
        main(args)
        code = 0
    except SystemExit as stopped:
        code = stopped.code or 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def unsafe_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("safe") / "unsafe"
    main(["safe", "train-unsafe", "--updates", "1", "--out", str(out), "--json"])
    return out


def test_train_unsafe_writes_a_complete_run(unsafe_run):
    result = json.loads((unsafe_run / "result.json").read_text())
    assert result["role"] == "unsafe" and result["updates"] == 1 and result["final_lagrange"] == 0.0
    assert (unsafe_run / "checkpoints" / "final.safetensors").is_file()
    assert (unsafe_run / "report.html").is_file() and (unsafe_run / "plots" / "cost.png").is_file()
    assert not unsafe_run.with_name("unsafe.partial").exists()


def test_unlearn_concept_then_eval_with_a_gif(unsafe_run, tmp_path, capsys):
    concept = tmp_path / "concept"
    code, _, err = run_cli(["safe", "unlearn", "--agent", str(unsafe_run), "--method", "concept", "--updates", "1",
                            "--out", str(concept), "--json"], capsys)
    assert code == 0, err
    code, out, err = run_cli(["safe", "eval", str(unsafe_run), str(concept), "--episodes", "1", "--out",
                              str(tmp_path / "eval"), "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert set(result["policies"]) == {"unsafe", "concept"}
    assert result["policies"]["unsafe"]["episodes"] == 1
    assert (tmp_path / "eval" / result["gifs"]["concept"]).is_file()
    rows = (tmp_path / "eval" / "episodes.csv").read_text().splitlines()
    assert rows[0].startswith("policy,episode,return,cost") and len(rows) == 3


def test_set_changes_preset_values_and_the_run_records_them(unsafe_run, tmp_path, capsys):
    out = tmp_path / "small"
    code, stdout, err = run_cli(["safe", "train-unsafe", "--set", "unsafe_updates=1", "--set", "horizon=50",
                                 "--set", "agent.hidden=[16, 16]", "--out", str(out), "--json"], capsys)
    assert code == 0, err
    result = json.loads(stdout)
    assert result["updates"] == 1 and result["env_steps"] == 1 * 50 * 4
    assert result["overrides"] == {"unsafe_updates": 1, "horizon": 50, "agent": {"hidden": [16, 16]}}
    assert load_yaml(out / "config.yaml")["overrides"] == result["overrides"]
    code, stdout, err = run_cli(["safe", "eval", str(out), "--set", "eval_episodes=1", "--set", "eval_max_steps=20",
                                 "--no-gifs", "--out", str(tmp_path / "eval"), "--json"], capsys)
    assert code == 0, err
    assert json.loads(stdout)["policies"]["small"]["episodes"] == 1


def test_decremental_unlearns_the_episodes_named_by_id(unsafe_run, tmp_path, capsys):
    code, out, err = run_cli(["safe", "unlearn", "--agent", str(unsafe_run), "--method", "decremental", "--updates",
                              "1", "--forget", "0,5", "--out", str(tmp_path / "dec"), "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["unsafe_episode_ids"] == [0, 5] and result["episodes_seen"] == 8
    certificate = json.loads((tmp_path / "dec" / "certificate.json").read_text())
    assert certificate["forgotten_episode_ids"] == [0, 5]
    assert set(certificate["forgotten_trajectory_sha256"]) == {"0", "5"}
    dataset = TransitionDataset.load(tmp_path / "dec" / "collection.hdf5")
    assert verify_certificate_hashes(certificate, dataset) == []
    assert dataset.costs is not None and dataset.num_episodes == 8


@pytest.mark.parametrize("args, message", [
    (["safe", "train-unsafe", "--env", "NoSuchEnv-v0"], "unknown environment"),
    (["safe", "train-unsafe", "--env", "Hopper-v5"], "not a Safety-Gymnasium task"),
    (["safe", "train-oracle", "--target-cost", "-0.5"], "target cost must be 0 or positive"),
    (["safe", "unlearn", "--agent", "{unsafe}", "--method", "nosuch"], "unknown safety unlearning method"),
    (["safe", "unlearn", "--agent", "{unsafe}", "--set", "concept.nosuch=1"], "unknown option(s) nosuch"),
    (["safe", "train-unsafe", "--set", "nosuch=1"], "unknown option(s) nosuch"),
    (["safe", "train-unsafe", "--set", "horizon"], "--set expects KEY=VALUE"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(args, message, unsafe_run, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = run_cli([a.format(unsafe=unsafe_run) for a in args] + ["--out", str(out)], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists() and not out.with_name("out.partial").exists()


def test_checkpoint_of_another_algorithm_is_rejected(tmp_path, capsys):
    spec = SpaceSpec(60, 2, False, (-1.0, -1.0), (1.0, 1.0))
    sac = tmp_path / "sac"
    save_agent(sac / "checkpoints" / "final.safetensors", new_agent(SAC, spec, SACConfig(hidden=(8,)), seed=0))
    code, _, err = run_cli(["safe", "unlearn", "--agent", str(sac), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "holds a sac checkpoint, not ppo_lagrangian" in err
    assert not (tmp_path / "o").exists()


def test_probe_fitted_on_another_model_is_rejected(unsafe_run, tmp_path, capsys):
    probe = tmp_path / "probe.json"
    probe.write_text(json.dumps({"weights": [1.0] * 64, "bias": 0.0, "tau": 0.0, "accuracy": 1.0,
                                 "model_fingerprint": "0000000000000000"}))
    code, _, err = run_cli(["safe", "probe", str(unsafe_run), "--expert", str(unsafe_run), "--probe", str(probe),
                            "--out", str(tmp_path / "p")], capsys)
    assert code == 2 and "fitted on another model" in err
    assert not (tmp_path / "p").exists()


def test_the_bench_preset_is_quick_with_more_experience():
    from trajlab.commands.safe import load_safe_preset

    bench, quick = load_safe_preset("bench"), load_safe_preset("quick")
    assert bench.agent == quick.agent and bench.oracle == quick.oracle
    def expert_steps(settings):
        return settings.num_envs * settings.horizon * settings.unsafe_updates

    assert expert_steps(bench) == 10 * expert_steps(quick)
