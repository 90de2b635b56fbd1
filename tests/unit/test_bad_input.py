"""Bad input through the CLI: exit code != 0, one line naming the problem, no traceback, no output harmed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from trajlab.cli import main
from trajlab.core.errors import TrajlabError
from trajlab.data import TransitionDataset
from trajlab.testing import synthetic_dataset

EXISTING = b"an existing file that must survive\n"


def run_cli(capsys, *args: str) -> tuple[int, str]:
    """Run `trajlab ARGS` in-process: (exit code, stderr). An uncaught exception fails the test itself."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    return code, capsys.readouterr().err


def assert_clean_failure(code: int, err: str, *fragments: str) -> None:
    assert code != 0, "the command succeeded on bad input"
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got: {err!r}"
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"


@pytest.fixture
def folder(tmp_path) -> Path:
    (tmp_path / "existing.hdf5").write_bytes(EXISTING)
    return tmp_path


def assert_untouched(folder: Path, *expected_names: str) -> None:
    """The pre-existing output is byte-for-byte intact and nothing else (no temp file) appeared."""
    assert (folder / "existing.hdf5").read_bytes() == EXISTING
    assert sorted(p.name for p in folder.iterdir()) == sorted(["existing.hdf5", *expected_names])


def write_file(path: Path, **arrays) -> Path:
    with h5py.File(path, "w") as handle:
        for key, value in arrays.items():
            handle.create_dataset(key, data=value)
    return path


def d4rl_arrays(n: int = 10) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "observations": rng.normal(size=(n, 3)).astype(np.float32),
        "actions": rng.uniform(-1, 1, size=(n, 1)).astype(np.float32),
        "rewards": rng.normal(size=n).astype(np.float32),
        "terminals": np.arange(n) == n - 1, "timeouts": np.zeros(n, dtype=bool),
    }


# --- damaged files -----------------------------------------------------------------------------------------
def test_corrupt_hdf5(folder, capsys):
    source = folder / "corrupt.hdf5"
    source.write_bytes(b"\x89HDF\r\n\x1a\n" + os.urandom(2000))
    for command in (["data", "info", source], ["data", "import", source, "--out", folder / "existing.hdf5",
                                                "--overwrite"]):
        assert_clean_failure(*run_cli(capsys, *command), "corrupt.hdf5", "not a readable HDF5 file")
    assert_untouched(folder, "corrupt.hdf5")


def test_corrupted_data_chunk_is_detected(folder, capsys):
    synthetic_dataset().save(folder / "good.hdf5")
    data = bytearray((folder / "good.hdf5").read_bytes())
    with h5py.File(folder / "good.hdf5") as handle:
        offset = handle["rewards"].id.get_chunk_info(0).byte_offset  # inside the rewards data, not the slack
    data[offset + 10: offset + 30] = bytes(20)
    (folder / "good.hdf5").write_bytes(bytes(data))
    assert_clean_failure(*run_cli(capsys, "data", "info", folder / "good.hdf5"), "good.hdf5", "not a readable")


def test_truncated_hdf5(folder, capsys):
    synthetic_dataset().save(folder / "whole.hdf5")
    whole = (folder / "whole.hdf5").read_bytes()
    (folder / "cut.hdf5").write_bytes(whole[: len(whole) // 2])
    assert_clean_failure(*run_cli(capsys, "data", "info", folder / "cut.hdf5"), "cut.hdf5", "truncated")
    code, err = run_cli(capsys, "data", "export", folder / "cut.hdf5", "--format", "d4rl", "--out",
                        folder / "existing.hdf5", "--overwrite")
    assert_clean_failure(code, err, "cut.hdf5")
    assert_untouched(folder, "whole.hdf5", "cut.hdf5")


def test_missing_required_key(folder, capsys):
    arrays = d4rl_arrays()
    del arrays["actions"]
    source = write_file(folder / "nokey.hdf5", **arrays)
    assert_clean_failure(*run_cli(capsys, "data", "import", source, "--out", folder / "new.hdf5"),
                         "nokey.hdf5", "missing required key", "actions")
    assert_untouched(folder, "nokey.hdf5")


def test_inconsistent_lengths(folder, capsys):
    source = write_file(folder / "short.hdf5", **{**d4rl_arrays(), "rewards": np.zeros(7, dtype=np.float32)})
    assert_clean_failure(*run_cli(capsys, "data", "import", source, "--out", folder / "new.hdf5"),
                         "short.hdf5", "inconsistent array lengths", "rewards 7")
    assert_untouched(folder, "short.hdf5")


@pytest.mark.parametrize("key", ["rewards", "observations"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_or_inf(folder, capsys, key, value):
    arrays = d4rl_arrays()
    arrays[key][4] = value
    source = write_file(folder / "bad.hdf5", **arrays)
    assert_clean_failure(*run_cli(capsys, "data", "import", source, "--out", folder / "new.hdf5"),
                         "bad.hdf5", f"{key} contains NaN or inf", "row 4")
    # the same in a trajlab file (with ids), read by `data info`
    ours = write_file(folder / "ours.hdf5", **arrays, next_observations=arrays["observations"],
                      episode_ids=np.zeros(10, dtype=np.int64), transition_ids=np.arange(10))
    assert_clean_failure(*run_cli(capsys, "data", "info", ours), "ours.hdf5", f"{key} contains NaN or inf")
    assert_untouched(folder, "bad.hdf5", "ours.hdf5")


# --- unknown names and ids ---------------------------------------------------------------------------------
def test_unknown_env_id(folder, capsys):
    code, err = run_cli(capsys, "data", "generate", "--env", "Nope-v0", "--quality", "medium",
                        "--out", folder / "new.hdf5")
    assert_clean_failure(code, err, "unknown environment 'Nope-v0'", "Hopper-v5")
    source = write_file(folder / "d.hdf5", **d4rl_arrays())
    code, err = run_cli(capsys, "data", "import", source, "--env", "Nope-v0", "--out", folder / "new.hdf5")
    assert_clean_failure(code, err, "unknown environment 'Nope-v0'")
    assert_untouched(folder, "d.hdf5")


def test_unknown_episode_id(folder, capsys):
    dataset = synthetic_dataset()  # episodes 0..5
    with pytest.raises(TrajlabError, match=r"unknown episode id\(s\): 6, 99"):
        dataset.subset([0, 6, 99])
    with pytest.raises(TrajlabError, match=r"unknown episode id\(s\): 42"):
        dataset.without([42])
    dataset.save(folder / "d.hdf5")
    code, err = run_cli(capsys, "data", "subset", folder / "d.hdf5", "--without", "1,42", "--out",
                        folder / "new.hdf5")
    assert_clean_failure(code, err, "unknown episode id(s): 42")
    code, err = run_cli(capsys, "data", "subset", folder / "d.hdf5", "--episodes", "1,x", "--out",
                        folder / "new.hdf5")
    assert_clean_failure(code, err, "comma-separated integers")
    assert_untouched(folder, "d.hdf5")


def test_unknown_minari_dataset(folder, capsys):
    code, err = run_cli(capsys, "data", "import", "missing-v0", "--minari-root", folder / "root",
                        "--out", folder / "new.hdf5")
    assert_clean_failure(code, err, "no Minari dataset 'missing-v0'")
    assert_untouched(folder)


# --- checkpoints -------------------------------------------------------------------------------------------
def test_truncated_checkpoint(tmp_path, capsys):
    from trajlab.algos.base import load_agent, save_agent
    from trajlab.algos.online.sac import SAC, SACConfig
    from trajlab.core.checkpoint import load_checkpoint
    from trajlab.core.rundir import RunDirectory
    from trajlab.core.spec import SpaceSpec

    agent = SAC(SpaceSpec(3, 1, False, (-2.0,), (2.0,)), SACConfig(hidden=(8, 8)))
    whole = save_agent(tmp_path / "agent.safetensors", agent, {"env_id": "Pendulum-v1"}).read_bytes()
    assert load_agent(tmp_path / "agent.safetensors").num_updates == 0
    for cut in (5, 100, len(whole) // 2, len(whole) - 1):
        (tmp_path / "cut.safetensors").write_bytes(whole[:cut])
        for loader in (load_checkpoint, load_agent):
            with pytest.raises(TrajlabError, match="cut.safetensors: not a readable trajlab checkpoint"):
                loader(tmp_path / "cut.safetensors")
    # through the CLI: `trajlab eval` of a run whose final checkpoint was cut short
    run = RunDirectory.create(tmp_path / "run", {"algo": "sac"}, command="test")
    for cut in (100, len(whole) - 1):  # inside the header, and inside the tensors
        run.checkpoint_path("final").write_bytes(whole[:cut])
        assert_clean_failure(*run_cli(capsys, "eval", run.path), "final.safetensors",
                             "not a readable trajlab checkpoint")


# --- outputs that exist --------------------------------------------------------------------------------------
def test_existing_output_is_never_replaced_without_overwrite(folder, capsys):
    synthetic_dataset().save(folder / "d.hdf5")
    out = folder / "existing.hdf5"
    commands = [
        ["data", "import", folder / "d.hdf5", "--out", out],
        ["data", "export", folder / "d.hdf5", "--format", "d4rl", "--out", out],
        ["data", "subset", folder / "d.hdf5", "--episodes", "1", "--out", out],
        ["data", "generate", "--env", "Pendulum-v1", "--quality", "random", "--out", out],
    ]
    for command in commands:
        assert_clean_failure(*run_cli(capsys, *command), "existing.hdf5", "already exists", "--overwrite")
    assert_untouched(folder, "d.hdf5")
    # with --overwrite the same import replaces it atomically
    assert run_cli(capsys, "data", "import", folder / "d.hdf5", "--out", out, "--overwrite")[0] == 0
    assert len(TransitionDataset.load(out)) == len(synthetic_dataset())


def test_real_entry_point_exits_2_with_one_line(tmp_path):
    (tmp_path / "junk.hdf5").write_bytes(b"junk")
    script = Path(sys.executable).parent / "trajlab"
    done = subprocess.run([str(script), "data", "info", str(tmp_path / "junk.hdf5")], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 2
    expected = (f"error: {tmp_path / 'junk.hdf5'}: not a readable HDF5 file (Unable to synchronously open file "
                "(file signature not found))")
    assert done.stderr.strip().splitlines() == [expected]


@pytest.mark.parametrize("command", [
    ["forget", "--episodes", "1", "--out", "OUT/forget"],
    ["audit", "--episodes", "1", "--out", "OUT/audit"],
])
def test_an_unknown_device_is_refused_before_any_work(tmp_path, capsys, command):
    synthetic_dataset().save(tmp_path / "data.hdf5")
    args = [part.replace("OUT", str(tmp_path)) for part in command]
    code, err = run_cli(capsys, *args, "--agent", tmp_path / "no-agent", "--dataset", tmp_path / "data.hdf5",
                        "--device", "tpu7")
    assert_clean_failure(code, err, "unknown device 'tpu7'")
    assert not (tmp_path / command[0]).exists()
