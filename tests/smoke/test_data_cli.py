"""`trajlab data ...` end to end with tiny settings: info, import/export round trips, generate (and resume)."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

from trajlab.cli import main
from trajlab.data import TransitionDataset
from trajlab.data.collect import collect
from trajlab.testing import synthetic_dataset

ARRAYS = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts", "episode_ids",
          "transition_ids")
# a few hundred SAC steps on Pendulum (200-step episodes): snapshots at 200, 400 and 600
TINY = ["--sac-steps", "600", "--snapshot-every", "200", "--dataset-size", "300", "--learning-starts", "200"]


def cli(capsys, *args: object) -> str:
    """Run `trajlab ARGS` in-process, require success, return stdout."""
    try:
        main([str(a) for a in args])
    except SystemExit as exit_:
        captured = capsys.readouterr()
        assert exit_.code == 0, captured.err
        return captured.out
    return capsys.readouterr().out


def assert_same_rows(first: TransitionDataset, second: TransitionDataset) -> None:
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name), err_msg=name)


def test_info_import_and_export_round_trips(tmp_path, capsys):
    original = collect(None, "Pendulum-v1", num_transitions=450, seed=0).without([1])
    original.save(tmp_path / "ours.hdf5")
    info = json.loads(cli(capsys, "data", "info", tmp_path / "ours.hdf5", "--json"))
    assert (info["episodes"], info["transitions"], info["observation_dim"], info["action_dim"]) == (2, 250, 3, 1)
    assert info["metadata"]["env_id"] == "Pendulum-v1"
    assert "metadata.env_id" in cli(capsys, "data", "info", tmp_path / "ours.hdf5")  # the Rich table

    cli(capsys, "data", "export", tmp_path / "ours.hdf5", "--format", "d4rl", "--out", tmp_path / "d4rl.hdf5")
    cli(capsys, "data", "import", tmp_path / "d4rl.hdf5", "--out", tmp_path / "from_d4rl.hdf5")
    assert_same_rows(TransitionDataset.load(tmp_path / "from_d4rl.hdf5"), original)

    root = tmp_path / "minari"
    out = cli(capsys, "data", "export", tmp_path / "ours.hdf5", "--format", "minari", "--out", "trajlab/pend-v0",
              "--minari-root", root, "--json")
    assert json.loads(out)["out"] == str(root / "trajlab" / "pend-v0")
    cli(capsys, "data", "import", "trajlab/pend-v0", "--minari-root", root, "--out", tmp_path / "from_minari.hdf5")
    assert_same_rows(TransitionDataset.load(tmp_path / "from_minari.hdf5"), original)


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """One tiny behaviour training (medium quality) shared by the generate tests."""
    folder = tmp_path_factory.mktemp("generate")
    main_args = ["data", "generate", "--env", "Pendulum-v1", "--quality", "medium", "--out", folder / "medium.hdf5",
                 *TINY, "--json"]
    try:
        main([str(a) for a in main_args])
    except SystemExit as exit_:
        assert exit_.code == 0
    return folder


def test_generate_medium_records_its_provenance(generated):
    dataset = TransitionDataset.load(generated / "medium.hdf5")
    assert len(dataset) == 300 and dataset.transition_ids.tolist() == list(range(300))
    meta = dataset.metadata
    assert (meta["env_id"], meta["quality"], meta["source"], meta["seed"]) == ("Pendulum-v1", "medium",
                                                                                "trajlab generate", 0)
    assert meta["action_low"] == [-2.0] and meta["action_high"] == [2.0]
    assert Path(meta["behaviour_checkpoints"][0]).is_file()
    (work,) = generated.glob("Pendulum-v1-quick-seed0-*.work")
    behaviour = json.loads((work / "behaviour.json").read_text())
    snapshots = behaviour["snapshots"]
    assert [row["step"] for row in snapshots] == [200, 400, 600]
    # expert = the best snapshot; medium = another snapshot, the closest to a third of the way from random
    expert = max(snapshots, key=lambda row: row["eval_return"])
    assert behaviour["expert_step"] == expert["step"] != meta["behaviour_steps"][0]
    target = meta["random_return"] + (meta["expert_return"] - meta["random_return"]) / 3
    others = [row for row in snapshots if row["step"] != expert["step"]]
    assert meta["behaviour_steps"][0] == min(others, key=lambda row: abs(row["eval_return"] - target))["step"]
    assert meta["behaviour_return"] == pytest.approx(
        next(row["eval_return"] for row in snapshots if row["step"] == meta["behaviour_steps"][0]))
    assert meta["random_return"] == behaviour["random_return"] and meta["expert_return"] == behaviour["expert_return"]


def test_other_qualities_reuse_the_behaviour_policies(generated, capsys):
    (work,) = generated.glob("Pendulum-v1-quick-seed0-*.work")
    stamps = {p: p.stat().st_mtime_ns for p in (work / "snapshots").iterdir()}
    args = ["--env", "Pendulum-v1", *TINY, "--json"]
    cli(capsys, "data", "generate", "--quality", "medium-expert", "--out", generated / "me.hdf5", *args)
    cli(capsys, "data", "generate", "--quality", "medium-replay", "--out", generated / "mr.hdf5", *args)
    assert {p: p.stat().st_mtime_ns for p in (work / "snapshots").iterdir()} == stamps  # nothing retrained

    medium = TransitionDataset.load(generated / "medium.hdf5")
    mixed = TransitionDataset.load(generated / "me.hdf5")
    assert len(mixed) == 600 and len(np.unique(mixed.transition_ids)) == 600
    assert_same_rows(mixed.subset_transitions(range(300)), medium)  # the same medium rollouts, cached
    assert set(mixed.episode_ids[300:]).isdisjoint(mixed.episode_ids[:300])

    replay = TransitionDataset.load(generated / "mr.hdf5")
    medium_step = medium.metadata["behaviour_steps"][0]
    assert replay.transition_ids.tolist() == list(range(medium_step))  # the buffer up to the medium snapshot
    assert replay.metadata["quality"] == "medium-replay"


def test_interrupted_generation_resumes_to_the_same_policies(generated, tmp_path, monkeypatch, capsys):
    from trajlab.commands import generate

    original_call = generate._Snapshots.__call__

    def interrupt_at_400(self, step, agent, replay):
        if step == 400:
            raise KeyboardInterrupt
        original_call(self, step, agent, replay)

    args = ["data", "generate", "--env", "Pendulum-v1", "--quality", "expert", "--out", tmp_path / "e.hdf5",
            "--work-dir", tmp_path / "work", *TINY]
    monkeypatch.setattr(generate._Snapshots, "__call__", interrupt_at_400)
    with pytest.raises(SystemExit) as stopped:
        main([str(a) for a in args])
    assert stopped.value.code == 130
    assert not (tmp_path / "e.hdf5").exists() and not (tmp_path / "work" / "behaviour.json").exists()
    first_snapshot = tmp_path / "work" / "snapshots" / "step_000000200.safetensors"
    written_before = first_snapshot.stat().st_mtime_ns

    monkeypatch.setattr(generate._Snapshots, "__call__", original_call)
    cli(capsys, *args)
    assert first_snapshot.stat().st_mtime_ns == written_before  # continued from step 200, not from scratch
    (reference_work,) = generated.glob("Pendulum-v1-quick-seed0-*.work")
    resumed = json.loads((tmp_path / "work" / "behaviour.json").read_text())
    uninterrupted = json.loads((reference_work / "behaviour.json").read_text())
    assert resumed["snapshots"] == uninterrupted["snapshots"]
    assert resumed["expert_return"] == uninterrupted["expert_return"]


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_outputs_get_the_mode_a_plain_open_gives(tmp_path, capsys, umask):
    synthetic_dataset().save(tmp_path / "d.hdf5")
    previous = os.umask(umask)
    try:
        cli(capsys, "data", "subset", tmp_path / "d.hdf5", "--episodes", "1,2", "--out", tmp_path / "subset.hdf5")
        (tmp_path / "plain.txt").write_text("opened the ordinary way")
    finally:
        os.umask(previous)
    modes = {name: stat.S_IMODE((tmp_path / name).stat().st_mode) for name in ("subset.hdf5", "plain.txt")}
    assert modes == {"subset.hdf5": 0o666 & ~umask, "plain.txt": 0o666 & ~umask}


def test_a_work_folder_from_before_a_setting_was_added_is_reused_at_its_default():
    from trajlab.commands.generate import _without_added_defaults

    saved = {"seed": 0, "train": {"total_steps": 600}, "agent": {"hidden": [8, 8]}}
    defaults = {"train": {"total_steps": 1000, "reward_scale": 1.0}, "agent": {"hidden": [256, 256]}}
    now = {"seed": 0, "train": {"total_steps": 600, "reward_scale": 1.0}, "agent": {"hidden": [8, 8]}}
    assert _without_added_defaults(now, saved, defaults) == saved
    changed = {**now, "train": {"total_steps": 600, "reward_scale": -100.0}}
    assert _without_added_defaults(changed, saved, defaults)["train"] == {"total_steps": 600, "reward_scale": -100.0}


def test_the_bench_preset_loads_and_snapshots_divide_its_steps():
    from trajlab.commands.generate import GenerateConfig
    from trajlab.core.config import load_preset

    bench = load_preset(GenerateConfig, "data", "bench")
    quick, paper = (load_preset(GenerateConfig, "data", name) for name in ("quick", "paper"))
    assert quick.sac_steps < bench.sac_steps < paper.sac_steps and bench.sac_preset == "paper"
    assert bench.sac_steps % bench.snapshot_every == 0


def test_a_work_folder_of_only_the_used_snapshots_rebuilds_medium_and_refuses_medium_replay(generated, tmp_path,
                                                                                            capsys):
    # what benchmarks/results/bench_data/ keeps of a bench run: settings, behaviour and the medium and expert
    # snapshots, without the training run or the replay buffer
    (work,) = generated.glob("Pendulum-v1-quick-seed0-*.work")
    medium = TransitionDataset.load(generated / "medium.hdf5")
    kept = tmp_path / "kept"
    (kept / "snapshots").mkdir(parents=True)
    for name in ("settings.json", "behaviour.json"):
        shutil.copy(work / name, kept / name)
    behaviour = json.loads((work / "behaviour.json").read_text())
    for step in (medium.metadata["behaviour_steps"][0], behaviour["expert_step"]):
        shutil.copy(work / "snapshots" / f"step_{step:09d}.safetensors", kept / "snapshots")
    args = ["--env", "Pendulum-v1", *TINY, "--work-dir", kept]
    cli(capsys, "data", "generate", "--quality", "medium", "--out", tmp_path / "m.hdf5", *args, "--json")
    assert_same_rows(TransitionDataset.load(tmp_path / "m.hdf5"), medium)
    with pytest.raises(SystemExit) as exit_:
        main([str(a) for a in ["data", "generate", "--quality", "medium-replay", "--out", tmp_path / "mr.hdf5",
                               *args]])
    assert exit_.value.code == 2 and not (tmp_path / "mr.hdf5").exists()
    assert "has no replay.hdf5" in capsys.readouterr().err
