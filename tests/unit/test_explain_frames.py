"""Frame stores: round trip through HDF5, ids and labels aligned with frames, and bad input refused."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from trajlab.core.errors import TrajlabError
from trajlab.data.frames import EpisodeVideo, FrameStore


def video(length: int, value: int = 0, size: int = 6) -> np.ndarray:
    return np.full((length, size, size, 3), value, dtype=np.uint8)


def test_round_trip_keeps_frames_ids_labels_and_critical_steps(tmp_path):
    episodes = [EpisodeVideo(video(3, 10), 1, (0, 2), "train"), EpisodeVideo(video(2, 20), 0, (), "test")]
    store = FrameStore.from_episodes(episodes, env_id="toy", class_names=("lost", "won"), first_id=7)
    loaded = FrameStore.load(store.save(tmp_path / "frames.h5"))
    assert loaded.env_id == "toy" and loaded.class_names == ("lost", "won")
    assert loaded.episode_id.tolist() == [7, 7, 7, 8, 8] and loaded.step.tolist() == [0, 1, 2, 0, 1]
    assert loaded.critical.tolist() == [1, 0, 1, 0, 0]
    assert loaded.episode_frames(loaded.row_of(8))[0, 0, 0, 0] == 20
    assert loaded.episode_critical(0).tolist() == [0, 2]
    assert loaded.rows("test").tolist() == [1] and loaded.labels.tolist() == [1, 0]


@pytest.mark.parametrize(("episodes", "message"), [
    ([EpisodeVideo(video(2, size=6), 0), EpisodeVideo(video(2, size=8), 0)], "mixed frame sizes"),
    ([EpisodeVideo(video(0), 0)], "no frames"),
    ([EpisodeVideo(video(2), 2)], "label 2 out of range"),
    ([EpisodeVideo(video(2), -1)], "out of range"),
    ([EpisodeVideo(video(2), 0, (2,))], "critical step lies outside"),
    ([EpisodeVideo(video(2).astype(np.float32), 0)], "uint8"),
    ([EpisodeVideo(video(2), 0, (), "holdout")], "unknown split"),
    ([], "at least one episode"),
])
def test_bad_episodes_are_one_line_errors(episodes, message):
    with pytest.raises(TrajlabError, match=message):
        FrameStore.from_episodes(episodes, env_id="toy", class_names=("lost", "won"))


def test_load_refuses_other_files_and_inconsistent_stores(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as handle:
        handle.create_dataset("x", data=[1])
    with pytest.raises(TrajlabError, match="not a trajlab frame store"):
        FrameStore.load(other)
    with pytest.raises(TrajlabError, match="no such frame store"):
        FrameStore.load(tmp_path / "missing.h5")
    path = FrameStore.from_episodes([EpisodeVideo(video(3), 1)], env_id="toy", class_names=("a", "b")).save(
        tmp_path / "f.h5")
    with h5py.File(path, "a") as handle:
        handle["episodes/label"][0] = 5
    with pytest.raises(TrajlabError, match="labels outside"):
        FrameStore.load(path)


def test_unknown_episode_id_names_the_range():
    store = FrameStore.from_episodes([EpisodeVideo(video(2), 0)], env_id="toy", class_names=("a", "b"))
    with pytest.raises(TrajlabError, match="no episode 5"):
        store.row_of(5)
