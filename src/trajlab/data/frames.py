"""Frame stores: episode videos as uint8 frames with episode and step ids, an outcome label per episode and a
ground-truth critical flag per frame, in one HDF5 file (h5py; nothing is pickled).

Layout of a file (format `trajlab-frames-1`):

    frames        uint8 [N, H, W, 3]   every frame of every episode, episode after episode
    episode_id    int64 [N]            the episode each frame belongs to
    step          int32 [N]            the frame's index inside its episode (0, 1, ...)
    critical      uint8 [N]            1 where the frame is a ground-truth critical state
    episodes/id, episodes/label, episodes/start, episodes/length, episodes/split   one row per episode
    attrs: format, env_id, class_names (JSON)

Frame t of an episode is the observation the agent saw before its action t; the last frame is the one after
its last action.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trajlab.core.errors import TrajlabError
from trajlab.core.io import atomic_path

FORMAT = "trajlab-frames-1"
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class EpisodeVideo:
    """One episode as frames [T, H, W, 3] (uint8), its outcome class and its critical frame indices."""

    frames: np.ndarray
    label: int
    critical_steps: tuple[int, ...] = ()
    split: str = "train"


@dataclass(frozen=True)
class FrameStore:
    """All frames of a set of episodes, flat, with per-episode rows (see the module docstring)."""

    frames: np.ndarray
    episode_id: np.ndarray
    step: np.ndarray
    critical: np.ndarray
    episode_ids: np.ndarray
    labels: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    splits: np.ndarray
    env_id: str
    class_names: tuple[str, ...]

    @classmethod
    def from_episodes(cls, episodes: Sequence[EpisodeVideo], *, env_id: str,
                      class_names: Sequence[str], first_id: int = 0) -> FrameStore:
        """Stack episodes into a store, checking frame sizes, empty episodes, labels, critical steps, splits."""
        if not episodes:
            raise TrajlabError("a frame store needs at least one episode")
        shape = _check_episodes(episodes, len(class_names))
        lengths = np.array([len(ep.frames) for ep in episodes], dtype=np.int64)
        ids = np.arange(first_id, first_id + len(episodes), dtype=np.int64)
        critical = [np.zeros(n, dtype=np.uint8) for n in lengths]
        for flags, ep in zip(critical, episodes):
            flags[list(ep.critical_steps)] = 1
        frames = np.concatenate([np.asarray(ep.frames, dtype=np.uint8) for ep in episodes]).reshape(-1, *shape)
        return cls(frames=frames, episode_id=np.repeat(ids, lengths),
                   step=np.concatenate([np.arange(n, dtype=np.int32) for n in lengths]),
                   critical=np.concatenate(critical), episode_ids=ids,
                   labels=np.array([ep.label for ep in episodes], dtype=np.int64),
                   starts=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64), lengths=lengths,
                   splits=np.array([SPLITS.index(ep.split) for ep in episodes], dtype=np.uint8),
                   env_id=env_id, class_names=tuple(class_names))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.frames.shape[1:])  # type: ignore[return-value]

    def __len__(self) -> int:
        return len(self.episode_ids)

    def episode_frames(self, index: int) -> np.ndarray:
        """Frames [T, H, W, 3] of the episode in row `index`."""
        start = int(self.starts[index])
        return self.frames[start:start + int(self.lengths[index])]

    def episode_critical(self, index: int) -> np.ndarray:
        """Indices of the ground-truth critical frames of the episode in row `index`."""
        start = int(self.starts[index])
        return np.flatnonzero(self.critical[start:start + int(self.lengths[index])])

    def rows(self, split: str) -> np.ndarray:
        """Row indices of the episodes in `split` (train, val or test)."""
        if split not in SPLITS:
            raise TrajlabError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        return np.flatnonzero(self.splits == SPLITS.index(split))

    def row_of(self, episode_id: int) -> int:
        """The row of an episode id; a one-line error names the ids that exist."""
        found = np.flatnonzero(self.episode_ids == episode_id)
        if found.size == 0:
            raise TrajlabError(f"no episode {episode_id} in this frame store (ids {self.episode_ids.min()}.."
                               f"{self.episode_ids.max()})")
        return int(found[0])

    def save(self, path: str | Path) -> Path:
        """Write the store atomically (a failed write leaves no file)."""
        import h5py

        target = Path(path)
        with atomic_path(target) as temp, h5py.File(temp, "w") as handle:
            handle.attrs.update(format=FORMAT, env_id=self.env_id, class_names=json.dumps(list(self.class_names)))
            handle.create_dataset("frames", data=self.frames, compression="gzip", compression_opts=4,
                                  chunks=(min(256, len(self.frames)), *self.frame_shape))
            for name in ("episode_id", "step", "critical"):
                handle.create_dataset(name, data=getattr(self, name))
            group = handle.create_group("episodes")
            for name, values in (("id", self.episode_ids), ("label", self.labels), ("start", self.starts),
                                 ("length", self.lengths), ("split", self.splits)):
                group.create_dataset(name, data=values)
        return target

    @classmethod
    def load(cls, path: str | Path) -> FrameStore:
        """Read a store written by `save`, checking it is one and that its arrays agree."""
        import h5py

        source = Path(path)
        if not source.is_file():
            raise TrajlabError(f"{source}: no such frame store")
        try:
            with h5py.File(source, "r") as handle:
                if handle.attrs.get("format") != FORMAT:
                    raise TrajlabError(f"{source}: not a trajlab frame store (format {handle.attrs.get('format')!r})")
                group = handle["episodes"]
                store = cls(frames=handle["frames"][()], episode_id=handle["episode_id"][()],
                            step=handle["step"][()], critical=handle["critical"][()], episode_ids=group["id"][()],
                            labels=group["label"][()], starts=group["start"][()], lengths=group["length"][()],
                            splits=group["split"][()], env_id=str(handle.attrs["env_id"]),
                            class_names=tuple(json.loads(handle.attrs["class_names"])))
        except (OSError, KeyError) as error:
            raise TrajlabError(f"{source}: not a readable frame store ({error})") from None
        store.check()
        return store

    def check(self) -> None:
        """The per-frame and per-episode arrays describe the same frames; labels and splits are in range."""
        n = len(self.frames)
        if self.frames.dtype != np.uint8 or self.frames.ndim != 4 or self.frames.shape[-1] != 3:
            raise TrajlabError(f"frames must be uint8 [N, H, W, 3], got {self.frames.dtype} {self.frames.shape}")
        if any(len(getattr(self, name)) != n for name in ("episode_id", "step", "critical")):
            raise TrajlabError("frame store: per-frame arrays differ in length from the frames")
        if (self.lengths < 1).any() or int(self.lengths.sum()) != n:
            raise TrajlabError("frame store: episode lengths do not add up to the frames (or an episode is empty)")
        if self.labels.min(initial=0) < 0 or self.labels.max(initial=0) >= self.num_classes:
            raise TrajlabError(f"frame store: labels outside 0..{self.num_classes - 1}")
        if self.splits.max(initial=0) >= len(SPLITS):
            raise TrajlabError("frame store: split codes outside 0..2")


def _check_episodes(episodes: Sequence[EpisodeVideo], num_classes: int) -> tuple[int, ...]:
    """The common frame shape (H, W, 3) of all episodes, or a one-line error for the first bad one."""
    shape: tuple[int, ...] | None = None
    for index, ep in enumerate(episodes):
        frames = np.asarray(ep.frames)
        if frames.ndim != 4 or len(frames) == 0:
            raise TrajlabError(f"episode {index}: no frames (expected [T, H, W, 3] with T >= 1, got {frames.shape})")
        if frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise TrajlabError(f"episode {index}: frames must be uint8 RGB, got {frames.dtype} {frames.shape}")
        if shape is not None and frames.shape[1:] != shape:
            raise TrajlabError(f"episode {index}: frames of size {frames.shape[1:]} among frames of size {shape} "
                               "(mixed frame sizes)")
        shape = frames.shape[1:]
        if not 0 <= ep.label < num_classes:
            raise TrajlabError(f"episode {index}: label {ep.label} out of range 0..{num_classes - 1}")
        if any(not 0 <= step < len(frames) for step in ep.critical_steps):
            raise TrajlabError(f"episode {index}: a critical step lies outside its {len(frames)} frames")
        if ep.split not in SPLITS:
            raise TrajlabError(f"episode {index}: unknown split {ep.split!r}")
    assert shape is not None
    return shape
