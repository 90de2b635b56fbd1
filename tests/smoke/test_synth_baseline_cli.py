"""`trajlab synth baseline` (MST / AIM): its bad-input errors, the missing optional extra, and an MST release."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from trajlab.cli import run as cli
from trajlab.data.dataset import TransitionDataset
from trajlab.testing import synthetic_dataset


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("baseline")
    synthetic_dataset(num_episodes=4, episode_length=20, observation_dim=2, action_dim=1, seed=1).save(
        root / "public.h5")
    synthetic_dataset(num_episodes=8, episode_length=25, observation_dim=2, action_dim=1, seed=2).save(
        root / "private.h5")
    synthetic_dataset(num_episodes=4, episode_length=20, observation_dim=3, action_dim=1, seed=3).save(
        root / "other.h5")
    return root


def _baseline(root, *args):
    return cli("synth", "baseline", "--private", root / "private.h5", "--public", root / "public.h5", *args)


@pytest.mark.parametrize(("args", "message"), [
    (["--method", "mst", "--epsilon", 0], "epsilon must be a positive number"),
    (["--method", "aim", "--epsilon", -1], "epsilon must be a positive number"),
    (["--method", "mst", "--delta", 0.01], "delta must be in (0, 1/n) for n = 160"),
    (["--method", "dpctgan"], "unknown method 'dpctgan'; known: mst, aim"),
    (["--method", "mst", "--bins", 0], "bins and the number of samples must be at least 1"),
    (["--method", "mst", "--n", 0], "bins and the number of samples must be at least 1"),
    (["--method", "mst", "--binning", "kmeans"], "unknown binning 'kmeans'"),
    (["--method", "aim", "--aim-rounds", 0], "aim_rounds must be at least 1"),
    (["--method", "aim", "--aim-rounds", 7], "aim_rounds must exceed the 7 columns"),
])
def test_bad_request_is_one_line_exit_2_and_writes_nothing(data, capsys, args, message):
    out = data / "bad.h5"
    code = _baseline(data, "--out", out, "--delta", 1e-4, *args)
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert not out.exists()


def test_public_data_of_other_spaces_and_an_existing_file_are_refused(data, capsys):
    out = data / "bad.h5"
    assert cli("synth", "baseline", "--method", "mst", "--private", data / "private.h5", "--public",
               f"{data / 'public.h5'},{data / 'other.h5'}", "--delta", 1e-4, "--out", out) == 2
    assert "public data of other spaces than the private data's" in capsys.readouterr().err
    assert not out.exists()
    (data / "taken.h5").write_bytes(b"mine")
    assert _baseline(data, "--method", "mst", "--delta", 1e-4, "--out", data / "taken.h5") == 2
    assert "file exists" in capsys.readouterr().err and (data / "taken.h5").read_bytes() == b"mine"


def test_missing_smartnoise_is_a_one_line_error_naming_the_extra(data, capsys, monkeypatch):
    for name in [name for name in sys.modules if name == "snsynth" or name.startswith("snsynth.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "snsynth", None)  # `import snsynth` now raises ImportError
    out = data / "none.h5"
    assert _baseline(data, "--method", "mst", "--delta", 1e-4, "--out", out) == 2
    err = capsys.readouterr().err
    assert "smartnoise-synth is not installed" in err and "make synth-baselines" in err and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.slow  # jax's import and mbi's compilation take longer than a CI test may (26 s on the shared cores)
def test_mst_releases_a_dataset_that_evaluate_takes(data, capsys):
    pytest.importorskip("snsynth")
    out = data / "mst.h5"
    assert _baseline(data, "--method", "mst", "--delta", 1e-4, "--bins", 4, "--n", 50, "--threads", 1, "--out",
                     out, "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["transitions"] == 50 and result["members"] == 160 and result["cardinalities"] == [4] * 6 + [2]
    released = TransitionDataset.load(out)
    meta = released.metadata
    assert meta["method"] == "mst" and meta["epsilon"] == 10.0 and meta["delta"] == 1e-4
    assert meta["differentially_private"] is True and meta["public_sources"] == [str(data / "public.h5")]
    assert meta["private_sources"] == [str(data / "private.h5")]
    np.testing.assert_array_equal(released.transition_ids, np.arange(50))
    assert released.spec == TransitionDataset.load(data / "private.h5").spec
    assert np.abs(released.actions).max() <= 1.0
    assert cli("synth", "evaluate", out, "--real", data / "private.h5", "--out", data / "eval", "--json") == 0
    assert 0 <= json.loads(capsys.readouterr().out)["column_shapes"] <= 1
