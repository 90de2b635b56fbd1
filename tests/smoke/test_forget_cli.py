"""`trajlab forget` and `trajlab audit` end to end on a tiny dataset with tiny networks."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from trajlab.algos import load_agent
from trajlab.cli import run as cli
from trajlab.commands.forget import RESULT_KEYS
from trajlab.core.io import sha256_file
from trajlab.data import TransitionDataset
from trajlab.data.ids import trajectory_hash
from trajlab.testing import synthetic_dataset
from trajlab.training.offline import TrainConfig
from trajlab.training.offline import run as train
from trajlab.unlearning.certificate import verify_certificate_hashes

FEW_STEPS = ["--set", "trajdeleter.forget_steps=40", "--set", "trajdeleter.convergence_steps=10", "--set",
             "trajdeleter.block_length=10", "--set", "finetune.steps=50", "--set", "random_reward.steps=50",
             "--threads", "1"]
SMALL_AUDIT = ["--shadows", "2", "--set", "auditor.shadow_steps=30", "--threads", "1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("forget-cli")
    synthetic_dataset(num_episodes=8, episode_length=10).save(folder / "data.hdf5")
    train(TrainConfig(algo="td3_bc", dataset=str(folder / "data.hdf5"), steps=30, out=str(folder / "run"),
                      overrides={"actor_hidden": [16], "critic_hidden": [16], "batch_size": 16}, progress=False))
    return folder


def summary_of(stdout: str) -> dict[str, str]:
    """The human summary's `key  value` rows."""
    return dict(line.split(None, 1) for line in stdout.splitlines())


def files_of(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("method", ["trajdeleter", "finetune", "random-reward", "retrain"])
def test_forget_writes_a_new_run_with_a_certificate(trained, capsys, method):
    original_files = files_of(trained / "run")
    out = trained / f"forget-{method}"
    code = cli("forget", "--agent", trained / "run", "--dataset", trained / "data.hdf5", "--method", method,
               "--episodes", "2,5", "--out", out, "--audit", *SMALL_AUDIT, *FEW_STEPS, "--json")
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == set(RESULT_KEYS)
    assert result == json.loads((out / "result.json").read_text())
    assert (result["method"], result["forgotten_episode_ids"], result["num_forgotten_transitions"]) == \
        (method, [2, 5], 20)
    assert 0.0 <= result["audit_forgotten_rate"] <= 1.0 and result["wall_time_s"] > 0
    assert files_of(trained / "run") == original_files  # the original run is only read

    certificate = json.loads((out / "certificate.json").read_text())
    dataset = TransitionDataset.load(trained / "data.hdf5")
    assert certificate["forgotten_episode_ids"] == [2, 5]
    assert certificate["forgotten_trajectory_sha256"]["5"] == trajectory_hash(dataset.episode(5))
    assert verify_certificate_hashes(certificate, dataset) == []
    assert verify_certificate_hashes(certificate, dataset.without([5])) == [5]
    original_checkpoint = trained / "run" / "checkpoints" / "final.safetensors"
    assert certificate["original_checkpoint_sha256"] == sha256_file(original_checkpoint)
    assert certificate["method"] == method and certificate["audit"]["audited"] == 2
    assert certificate["audit"]["trajectories"][0]["decision"] in ("forgotten", "retained")
    controls = [t["episode_id"] for t in certificate["audit"]["control_trajectories"]]
    assert len(controls) == 2 and not {2, 5} & set(controls)  # as many remaining episodes as forgotten
    assert result["audit_specificity"] == certificate["audit"]["specificity"] in (
        "specific", "not specific", "inconclusive", "nothing forgotten")

    unlearned = load_agent(out / "checkpoints" / "final.safetensors")
    assert unlearned.name == "td3_bc"
    assert (out / "report.html").read_text().count("<img") == len(result["plots"]) >= 2


def test_audit_command_uses_the_certificate_original(trained, capsys):
    forget_run = trained / "forget-trajdeleter"
    if not forget_run.exists():
        assert cli("forget", "--agent", trained / "run", "--dataset", trained / "data.hdf5", "--episodes", "2,5",
                   "--out", forget_run, *FEW_STEPS) == 0
        capsys.readouterr()
    code = cli("audit", "--agent", forget_run, "--dataset", trained / "data.hdf5", "--episodes", "2,5,6",
               "--out", trained / "audit", *SMALL_AUDIT, "--executor", "serial", "--controls", "3", "--json")
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["original_checkpoint"] == str((trained / "run" / "checkpoints" / "final.safetensors").resolve())
    assert [t["episode_id"] for t in result["trajectories"]] == [2, 5, 6]
    assert result["reference_episodes"] == 5  # 8 episodes without the audited 2, 5, 6
    assert result["control_audited"] == 3 and result["control_forgotten_rate"] is not None
    for verdict in result["trajectories"]:
        assert verdict["decision"] == ("forgotten" if verdict["statistic"] > verdict["threshold"] else "retained")
    assert (trained / "audit" / "report.html").is_file()

    assert cli("audit", "--agent", forget_run, "--dataset", trained / "data.hdf5", "--episodes", "77",
               "--out", trained / "audit-bad") == 2
    assert "unknown episode id" in capsys.readouterr().err
    assert not (trained / "audit-bad").exists()


def test_forget_fraction_and_evaluate_in_a_real_environment(tmp_path, capsys):
    dataset = synthetic_dataset(num_episodes=10, episode_length=6, observation_dim=3, action_dim=1)
    dataset = dataset.with_metadata(env_id="Pendulum-v1", action_low=[-2.0], action_high=[2.0])
    dataset.save(tmp_path / "pendulum.hdf5")
    train(TrainConfig(algo="td3_bc", dataset=str(tmp_path / "pendulum.hdf5"), steps=10, out=str(tmp_path / "run"),
                      overrides={"actor_hidden": [8], "critic_hidden": [8], "batch_size": 8}, progress=False))
    code = cli("forget", "--agent", tmp_path / "run", "--dataset", tmp_path / "pendulum.hdf5", "--fraction", "0.2",
               "--seed", "1", "--method", "finetune", "--evaluate", "--retrain", "--eval-episodes", "1",
               "--out", tmp_path / "forget", *FEW_STEPS)
    assert code == 0
    summary = summary_of(capsys.readouterr().out)
    result = json.loads((tmp_path / "forget" / "result.json").read_text())
    for agent in ("original", "unlearned", "retrained"):  # the headline returns, flattened into the summary
        assert summary[f"evaluation.{agent}.mean_return"] == f"{result['evaluation'][agent]['mean_return']:.4g}"
    assert summary["num_forgotten_episodes"] == "2" and "evaluation.original.returns" not in summary
    assert result["num_forgotten_episodes"] == 2
    evaluation = result["evaluation"]
    assert evaluation["env_id"] == "Pendulum-v1"
    assert {"original", "unlearned", "retrained"} <= set(evaluation)
    assert evaluation["retrained"]["episodes"] == 1 and evaluation["retrain_time_source"] == "measured"
    assert result["relative_time"] == pytest.approx(result["wall_time_s"] / result["retrain_wall_time_s"])


def test_quickstart_step_forgets_one_percent_and_audits(trained):
    from trajlab.commands.forget import quickstart_step

    result = quickstart_step(trained / "run", trained / "data.hdf5", trained / "quickstart", seed=0,
                             trajdeleter={"forget_steps": 20, "convergence_steps": 5, "block_length": 5},
                             auditor={"num_shadows": 2, "shadow_steps": 10})
    assert result["method"] == "trajdeleter" and result["num_forgotten_episodes"] == 1  # 1% of 8, at least one
    assert result["audit_forgotten_rate"] in (0.0, 1.0)
    assert all(Path(plot).is_file() for plot in result["plots"]) and len(result["plots"]) == 2
    assert Path(result["run_dir"], "certificate.json").is_file()


def test_shadows_fine_tune_as_long_as_the_audited_unlearning_by_default(trained, capsys):
    out = trained / "forget-matched"
    code = cli("forget", "--agent", trained / "run", "--dataset", trained / "data.hdf5", "--episodes", "1",
               "--out", out, "--audit", "--shadows", "2", *FEW_STEPS, "--json")
    assert code == 0
    capsys.readouterr()
    certificate = json.loads((out / "certificate.json").read_text())
    assert certificate["audit"]["config"]["shadow_steps"] == 40 + 10  # TrajDeleter's two phases
    code = cli("audit", "--agent", out, "--dataset", trained / "data.hdf5", "--episodes", "1",
               "--out", trained / "audit-matched", "--shadows", "2", "--threads", "1", "--json")
    assert code == 0
    assert json.loads(capsys.readouterr().out)["auditor"]["shadow_steps"] == 50  # read from the certificate


def test_the_method_and_the_shadows_have_separate_progress_bars(trained, monkeypatch):
    from contextlib import contextmanager

    from trajlab.commands import forget as forget_run
    from trajlab.commands import progress

    bars = []

    @contextmanager
    def recording_bar(description, total, **options):
        bar = {"description": description, "total": total, "done": 0}
        bars.append(bar)
        yield lambda done: bar.update(done=done)

    monkeypatch.setattr(progress, "update_bar", recording_bar)
    config = forget_run.load_forget_config(
        "quick", agent=str(trained / "run"), dataset=str(trained / "data.hdf5"), out=str(trained / "forget-bar"),
        episodes=(3,), audit=True, threads=1, auditor={"num_shadows": 2},
        trajdeleter={"forget_steps": 20, "convergence_steps": 6, "block_length": 5})
    forget_run.run(config)
    assert bars == [{"description": "forget: trajdeleter", "total": 26, "done": 26},  # what wall_time_s times
                    {"description": "audit: shadow agents", "total": 2 * 26, "done": 2 * 26}]


def test_an_interrupted_forget_says_how_to_start_again(trained, capsys, monkeypatch):
    from trajlab.commands import forget as forget_run

    def interrupted(request, config):
        raise KeyboardInterrupt

    args = ["forget", "--agent", trained / "run", "--dataset", trained / "data.hdf5", "--episodes", "4",
            "--out", trained / "forget-interrupted", *FEW_STEPS]
    monkeypatch.setattr(forget_run, "_unlearn", interrupted)
    assert cli(*args) == 130
    assert capsys.readouterr().err.strip().endswith("rerun with --overwrite to start again")
    monkeypatch.undo()
    assert cli(*args) == 2
    assert "already holds files (use --overwrite" in capsys.readouterr().err
    assert cli(*args, "--overwrite") == 0
