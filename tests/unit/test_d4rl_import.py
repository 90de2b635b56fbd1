"""D4RL .hdf5 import/export and Minari export/import round trips on hand-built files."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from trajlab.core.errors import TrajlabError
from trajlab.data import TransitionDataset
from trajlab.data.collect import collect
from trajlab.data.d4rl import export_d4rl, import_d4rl, open_dataset

# 8 rows: episode A = rows 0-2 (terminal at 2), B = rows 3-5 (timeout at 5), C = rows 6-7 (ends with neither)
TERMINALS = np.array([0, 0, 1, 0, 0, 0, 0, 0], dtype=bool)
TIMEOUTS = np.array([0, 0, 0, 0, 0, 1, 0, 0], dtype=bool)


def write_d4rl(path, *, with_next: bool = True, **replace) -> None:
    """A file in D4RL's layout: root arrays, infos/*, metadata/* (a string, an int, a nested weight group)."""
    observations = np.arange(16, dtype=np.float32).reshape(8, 2)
    arrays = {
        "observations": observations, "actions": np.linspace(-1, 1, 8, dtype=np.float32)[:, None],
        "rewards": np.arange(8, dtype=np.float32), "terminals": TERMINALS, "timeouts": TIMEOUTS,
    }
    if with_next:
        arrays["next_observations"] = observations + 100
    arrays.update(replace)
    with h5py.File(path, "w") as handle:
        for key, value in arrays.items():
            if value is not None:
                handle.create_dataset(key, data=value)
        handle.create_dataset("infos/qpos", data=np.zeros((8, 3)))
        handle["metadata/algorithm"] = "SAC"
        handle["metadata/iteration"] = 7
        handle.create_dataset("metadata/policy/fc0/weight", data=np.ones((4, 4)))


def test_import_with_next_observations_keeps_every_row(tmp_path):
    write_d4rl(tmp_path / "toy.hdf5")
    dataset = import_d4rl(tmp_path / "toy.hdf5")
    assert len(dataset) == 8
    assert dataset.episode_ids.tolist() == [0, 0, 0, 1, 1, 1, 2, 2]
    assert dataset.transition_ids.tolist() == list(range(8))
    assert dataset.episode_returns().tolist() == [3.0, 12.0, 13.0]  # the unfinished last episode is kept
    np.testing.assert_array_equal(dataset.next_observations, dataset.observations + 100)
    assert dataset.metadata["algorithm"] == "SAC" and dataset.metadata["iteration"] == 7
    assert "policy" not in dataset.metadata  # weight arrays are not metadata
    assert dataset.metadata["source"] == "d4rl import" and dataset.metadata["imported_from"] == "toy.hdf5"


def test_import_without_next_observations_derives_them(tmp_path):
    write_d4rl(tmp_path / "toy.hdf5", with_next=False)
    dataset = import_d4rl(tmp_path / "toy.hdf5")
    # the timeout row (5) and the final row (7) have no known successor and are dropped
    assert dataset.transition_ids.tolist() == [0, 1, 2, 3, 4, 6]
    assert dataset.episode_ids.tolist() == [0, 0, 0, 1, 1, 2]
    np.testing.assert_array_equal(dataset.next_observations[:2], dataset.observations[1:3])
    np.testing.assert_array_equal(dataset.next_observations[2], dataset.observations[2])  # terminal: unused
    np.testing.assert_array_equal(dataset.next_observations[5], [14.0, 15.0])  # row 6 -> row 7's observation


def test_import_without_timeouts_treats_them_as_absent(tmp_path):
    write_d4rl(tmp_path / "old.hdf5", timeouts=None)
    dataset = import_d4rl(tmp_path / "old.hdf5")
    assert dataset.episode_ids.tolist() == [0, 0, 0, 1, 1, 1, 1, 1]


def test_env_id_from_argument_or_d4rl_file_name(tmp_path):
    write_d4rl(tmp_path / "toy.hdf5")
    assert import_d4rl(tmp_path / "toy.hdf5", env_id="Pendulum-v1").metadata["env_id"] == "Pendulum-v1"
    assert "env_id" not in import_d4rl(tmp_path / "toy.hdf5").metadata
    rng = np.random.default_rng(0)
    write_d4rl(tmp_path / "hopper_medium-v2.hdf5", observations=rng.normal(size=(8, 11)).astype(np.float32),
               next_observations=rng.normal(size=(8, 11)).astype(np.float32))
    assert import_d4rl(tmp_path / "hopper_medium-v2.hdf5").metadata["env_id"] == "Hopper-v5"
    # a file named like Hopper whose observations do not fit Hopper gets no env id
    write_d4rl(tmp_path / "hopper_toy.hdf5")
    assert "env_id" not in import_d4rl(tmp_path / "hopper_toy.hdf5").metadata


def test_missing_key_and_inconsistent_lengths_name_the_problem(tmp_path):
    write_d4rl(tmp_path / "a.hdf5", rewards=None)
    with pytest.raises(TrajlabError, match="a.hdf5: missing required key.*rewards"):
        import_d4rl(tmp_path / "a.hdf5")
    write_d4rl(tmp_path / "b.hdf5", actions=np.zeros((7, 1), dtype=np.float32))
    with pytest.raises(TrajlabError, match="b.hdf5: inconsistent array lengths.*actions 7"):
        import_d4rl(tmp_path / "b.hdf5")


def test_export_round_trip_keeps_data_ids_and_metadata(tmp_path):
    write_d4rl(tmp_path / "toy.hdf5")
    original = import_d4rl(tmp_path / "toy.hdf5", env_id="Pendulum-v1").without([1])
    export_d4rl(original, tmp_path / "out.hdf5")
    with h5py.File(tmp_path / "out.hdf5") as handle:
        assert {"observations", "actions", "rewards", "next_observations", "terminals", "timeouts"} <= set(handle)
        assert "episode_ids" not in handle  # plain layout: ids live in a group D4RL readers ignore
        assert handle["metadata/env_id"][()] == b"Pendulum-v1"
    again = import_d4rl(tmp_path / "out.hdf5")
    for name in ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts",
                 "episode_ids", "transition_ids"):
        np.testing.assert_array_equal(getattr(again, name), getattr(original, name), err_msg=name)
    assert again.metadata == original.metadata


def test_export_marks_inner_unfinished_episodes_as_timeouts(tmp_path):
    write_d4rl(tmp_path / "toy.hdf5")
    dataset = import_d4rl(tmp_path / "toy.hdf5")
    reordered = dataset.subset([2]).concat(dataset.subset([0]))  # the unfinished episode now comes first
    export_d4rl(reordered, tmp_path / "out.hdf5")
    with h5py.File(tmp_path / "out.hdf5", "r+") as handle:
        assert handle["timeouts"][()].tolist() == [False, True, False, False, False]
        del handle["trajlab"]  # what a plain D4RL reader sees: episodes from terminals and timeouts only
        del handle.attrs["trajlab_metadata"]
    assert import_d4rl(tmp_path / "out.hdf5").episode_lengths().tolist() == [2, 3]


def test_open_dataset_reads_trajlab_and_d4rl_files(tmp_path):
    write_d4rl(tmp_path / "toy.hdf5")
    dataset = import_d4rl(tmp_path / "toy.hdf5").without([0])
    dataset.save(tmp_path / "ours.hdf5")
    assert open_dataset(tmp_path / "ours.hdf5").transition_ids.tolist() == [3, 4, 5, 6, 7]
    assert len(open_dataset(tmp_path / "toy.hdf5")) == 8


# --- Minari ------------------------------------------------------------------------------------------------
minari = pytest.importorskip("minari")


@pytest.fixture
def pendulum_dataset() -> TransitionDataset:
    # 450 random steps: two episodes that time out at 200 steps and an unfinished one of 50
    return collect(None, "Pendulum-v1", num_transitions=450, seed=3, metadata={"quality": "random"})


def test_minari_round_trip_in_a_temporary_root(pendulum_dataset, tmp_path, monkeypatch):
    from trajlab.data.minari_io import export_minari, import_minari

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "elsewhere"))
    original = pendulum_dataset.without([1])  # ids 0 and 2 remain: sparse ids must survive
    folder = export_minari(original, "trajlab/pendulum-random-v0", root=tmp_path / "root")
    assert folder == tmp_path / "root" / "trajlab" / "pendulum-random-v0"
    assert not (tmp_path / "elsewhere").exists()
    assert [p.name for p in (tmp_path / "root").iterdir()] == ["trajlab"]  # no staging folder left
    stored = minari.MinariDataset(folder / "data")
    assert stored.total_episodes == 2 and stored.total_steps == 250
    assert stored.env_spec.id == "Pendulum-v1"
    again = import_minari("trajlab/pendulum-random-v0", root=tmp_path / "root")
    for name in ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts",
                 "episode_ids", "transition_ids"):
        np.testing.assert_array_equal(getattr(again, name), getattr(original, name), err_msg=name)
    assert again.metadata["quality"] == "random" and again.metadata["env_id"] == "Pendulum-v1"
    assert again.metadata["minari_dataset_id"] == "trajlab/pendulum-random-v0"
    by_path = import_minari(folder)
    np.testing.assert_array_equal(by_path.transition_ids, original.transition_ids)


def test_minari_import_of_a_foreign_dataset_uses_minari_episode_ids(pendulum_dataset, tmp_path):
    from minari.data_collector import EpisodeBuffer

    from trajlab.data.minari_io import import_minari

    buffers = [
        EpisodeBuffer(id=i, observations=np.asarray(e.observations.tolist() + [e.next_observations[-1]]),
                      actions=np.asarray(e.actions), rewards=np.asarray(e.rewards),
                      terminations=np.asarray(e.terminals), truncations=np.asarray(e.timeouts))
        for i, e in enumerate(pendulum_dataset.episodes())
    ]
    monkey_root = tmp_path / "root"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINARI_DATASETS_PATH", str(monkey_root))
        with pytest.warns(UserWarning):
            minari.create_dataset_from_buffers("pendulum-foreign-v0", buffers, env="Pendulum-v1")
    imported = import_minari("pendulum-foreign-v0", root=monkey_root)
    assert imported.episode_id_list.tolist() == [0, 1, 2]
    assert imported.transition_ids.tolist() == list(range(450))
    assert imported.metadata["source"] == "minari import" and imported.metadata["env_id"] == "Pendulum-v1"
    assert imported.metadata["action_low"] == [-2.0] and imported.metadata["action_high"] == [2.0]
    np.testing.assert_array_equal(imported.observations, pendulum_dataset.observations)


def test_minari_export_refuses_what_it_cannot_store(pendulum_dataset, tmp_path):
    from trajlab.data.minari_io import export_minari, import_minari

    root = tmp_path / "root"
    export_minari(pendulum_dataset, "pendulum-v0", root=root)
    with pytest.raises(TrajlabError, match="already there"):
        export_minari(pendulum_dataset, "pendulum-v0", root=root)
    with pytest.raises(TrajlabError, match="not a Minari dataset id"):
        export_minari(pendulum_dataset, "no version", root=root)
    with pytest.raises(TrajlabError, match="no env_id"):
        export_minari(pendulum_dataset.with_metadata(env_id=None), "other-v0", root=root)
    with pytest.raises(TrajlabError, match="do not continue"):
        export_minari(pendulum_dataset.subset_transitions([0, 2, 3]), "gappy-v0", root=root)
    with pytest.raises(TrajlabError, match="does not fit Hopper-v5"):
        export_minari(pendulum_dataset.with_metadata(env_id="Hopper-v5"), "hopper-v0", root=root)
    with pytest.raises(TrajlabError, match="no Minari dataset 'missing-v0'"):
        import_minari("missing-v0", root=root)
    assert sorted(p.name for p in root.iterdir()) == ["pendulum-v0"]
    export_minari(pendulum_dataset.subset([0]), "pendulum-v0", root=root, overwrite=True)
    assert len(import_minari("pendulum-v0", root=root)) == 200
    assert sorted(p.name for p in root.iterdir()) == ["pendulum-v0"]
