"""`trajlab audit --test lira` and `trajlab forget --audit --test lira` end to end on a tiny dataset with tiny
networks (a few seconds), and their bad input: a one-line error, exit code 2, nothing written."""

from __future__ import annotations

import json

import pytest

from trajlab.audit.canaries import CANARY_KEY
from trajlab.cli import run as cli
from trajlab.commands.forget import RESULT_KEYS
from trajlab.data import TransitionDataset
from trajlab.testing import synthetic_dataset
from trajlab.training.offline import TrainConfig
from trajlab.training.offline import run as train

TINY_LIRA = ["--test", "lira", "--shadows", "4", "--threads", "1"]
LIRA_KEYS = {"test", "verdict", "p_value", "control_p_value", "member_rate", "audited", "control_member_rate",
             "control_audited", "error_rates", "config", "trajectories", "control_trajectories", "num_shadows",
             "shadow_steps", "population", "canaries", "agent_checkpoint", "original_checkpoint",
             "reference_episodes", "run_dir", "plots", "auditor"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lira-cli")
    synthetic_dataset(num_episodes=8, episode_length=10).save(folder / "data.hdf5")
    train(TrainConfig(algo="td3_bc", dataset=str(folder / "data.hdf5"), steps=30, out=str(folder / "run"),
                      overrides={"actor_hidden": [16], "critic_hidden": [16], "batch_size": 16}, progress=False))
    return folder


def test_audit_with_lira_writes_error_rates_plots_and_canaries(trained, capsys):
    out = trained / "audit-lira"
    code = cli("audit", "--agent", trained / "run", "--dataset", trained / "data.hdf5", "--episodes", "2,5",
               "--out", out, "--canaries", "2", *TINY_LIRA, "--json")
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == LIRA_KEYS and result == json.loads((out / "result.json").read_text())
    assert result["test"] == "lira" and result["num_shadows"] == 4 and result["shadow_steps"] == 30
    assert result["verdict"] in ("still a member", "indistinguishable from retraining", "not specific")
    assert 0.0 <= result["error_rates"]["auc"] <= 1.0 and 0.0 <= result["p_value"] <= 1.0
    assert [t["episode_id"] for t in result["trajectories"]] == [2, 5] and result["control_audited"] == 2
    canaries = result["canaries"]
    assert canaries["source"] == "planted" and canaries["episode_ids"] == [8, 9] and result["population"] == 10
    planted = TransitionDataset.load(canaries["dataset"])
    assert planted.metadata[CANARY_KEY] == [8, 9] and planted.num_episodes == 10
    assert TransitionDataset.load(trained / "data.hdf5").num_episodes == 8  # the user's file is untouched
    assert {"lira_roc.png", "lira_scores.png"} <= {p.name for p in (out / "plots").iterdir()}
    assert "likelihood ratio" in (out / "report.html").read_text()


def test_forget_audit_with_lira_puts_the_test_and_its_error_rates_in_the_certificate(trained, capsys):
    out = trained / "forget-lira"
    code = cli("forget", "--agent", trained / "run", "--dataset", trained / "data.hdf5", "--method", "finetune",
               "--episodes", "3", "--out", out, "--audit", *TINY_LIRA, "--set", "finetune.steps=20", "--json")
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == set(RESULT_KEYS) and result["audit_test"] == "lira"
    assert set(result["audit_error_rates"]) >= {"auc", "tpr_at_1pct_fpr", "tpr_at_0.1pct_fpr"}
    audit = json.loads((out / "certificate.json").read_text())["audit"]
    assert audit["test"] == "lira" and audit["verdict"] == result["audit_verdict"]
    assert audit["error_rates"]["auc"] == result["audit_error_rates"]["auc"]


def test_offline_variant_scores_against_out_shadows_only(trained, capsys):
    out = trained / "audit-offline"
    code = cli("audit", "--agent", trained / "run", "--dataset", trained / "data.hdf5", "--episodes", "1",
               "--out", out, *TINY_LIRA, "--set", "lira.offline=true", "--json")
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["config"]["offline"] is True and result["canaries"]["found_in_audited"] is None
    assert result["trajectories"][0]["score"] >= 0.0  # -log of a tail probability


@pytest.mark.parametrize("bad, message", [
    (["--test", "grubbs"], "unknown test"),
    (["--test", "lira", "--shadows", "0"], "at least 4 shadows"),
    (["--test", "lira", "--canaries", "-1"], "canaries must be non-negative"),
    (["--canaries", "2"], "--canaries needs --test lira"),
    (["--test", "lira", "--set", "lira.statistic=loss"], "unknown lira statistic"),
    (["--test", "lira", "--reference-dataset", "other.hdf5"], "--reference-dataset is TrajAuditor's"),
])
def test_bad_lira_input_is_one_line_and_writes_nothing(trained, capsys, bad, message):
    out = trained / "bad"
    code = cli("audit", "--agent", trained / "run", "--dataset", trained / "data.hdf5", "--episodes", "2",
               "--out", out, *bad)
    error = capsys.readouterr().err.strip()
    assert code == 2 and message in error and len(error.splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("bad, message", [
    (["--test", "lira"], "add --audit"),
    (["--audit", "--test", "lira", "--shadows", "2"], "at least 4 shadows"),
    (["--audit", "--canaries", "3"], "--canaries needs --test lira"),
])
def test_bad_forget_audit_input_writes_nothing(trained, capsys, bad, message):
    out = trained / "bad-forget"
    code = cli("forget", "--agent", trained / "run", "--dataset", trained / "data.hdf5", "--episodes", "2",
               "--out", out, *bad)
    error = capsys.readouterr().err.strip()
    assert code == 2 and message in error and len(error.splitlines()) == 1
    assert not out.exists()


def test_fewer_than_two_trajectories_is_refused(trained, capsys):
    synthetic_dataset(num_episodes=8, episode_length=10).subset([0]).save(trained / "one.hdf5")
    out = trained / "bad-one"
    code = cli("audit", "--agent", trained / "run", "--dataset", trained / "one.hdf5", "--episodes", "0",
               "--out", out, *TINY_LIRA)
    error = capsys.readouterr().err.strip()
    assert code == 2 and "at least 2 trajectories" in error and not out.exists()
