"""Run directories: config.yaml, result.json, metrics.csv, checkpoints/, plots/, TensorBoard events, report.html.

A run is complete when `result.json` exists. A run directory without it is an interrupted run, which
`--resume` continues from its latest checkpoint; every file is written atomically, so a killed run never leaves
a half-written file behind.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

from trajlab.core.config import to_dict
from trajlab.core.errors import TrajlabError
from trajlab.core.io import atomic_path, write_json_atomic, write_yaml_atomic

RESULT = "result.json"
CONFIG = "config.yaml"
METRICS = "metrics.csv"


class RunDirectory:
    """One run's folder. Use `RunDirectory.create` to start or resume one, `RunDirectory.open` to read one."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._metric_columns: list[str] | None = None
        self._writer: Any = None

    @classmethod
    def create(cls, path: str | Path, config: Any, *, command: str, resume: bool = False,
               overwrite: bool = False) -> RunDirectory:
        """Start a new run (the folder must not hold a run) or, with `resume`, reopen an interrupted one."""
        run = cls(path)
        if run.path.exists() and any(run.path.iterdir()):
            if resume:
                if run.is_complete():
                    raise TrajlabError(f"{run.path}: run already finished; nothing to resume")
                return run
            if overwrite:
                shutil.rmtree(run.path)
            elif run.is_complete():
                raise TrajlabError(f"{run.path}: a finished run is already there (use --overwrite or another --out)")
            else:
                raise TrajlabError(f"{run.path}: an unfinished run is there (use --resume to continue it)")
        elif resume:
            raise TrajlabError(f"{run.path}: no run to resume")
        run.path.mkdir(parents=True, exist_ok=True)
        run.checkpoints.mkdir(exist_ok=True)
        run.plots.mkdir(exist_ok=True)
        write_yaml_atomic(run.path / CONFIG, {"command": command, **_config_dict(config)})
        return run

    @classmethod
    def open(cls, path: str | Path) -> RunDirectory:
        run = cls(path)
        if not (run.path / CONFIG).is_file():
            raise TrajlabError(f"{run.path}: not a trajlab run directory (no {CONFIG})")
        return run

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def plots(self) -> Path:
        return self.path / "plots"

    def is_complete(self) -> bool:
        return (self.path / RESULT).is_file()

    def config(self) -> dict[str, Any]:
        from trajlab.core.config import load_yaml

        return load_yaml(self.path / CONFIG) or {}

    def result(self) -> dict[str, Any]:
        if not self.is_complete():
            raise TrajlabError(f"{self.path}: run has no {RESULT} (unfinished?)")
        return json.loads((self.path / RESULT).read_text())

    def write_result(self, result: dict[str, Any]) -> Path:
        self.close()
        write_json_atomic(self.path / RESULT, result)
        return self.path / RESULT

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        """Append one row to metrics.csv (columns fixed by the first row) and to TensorBoard."""
        row = {"step": step, **{k: float(v) for k, v in metrics.items()}}
        path = self.path / METRICS
        if self._metric_columns is None:
            self._metric_columns = _existing_columns(path) or list(row)
            if not path.exists():
                with open(path, "w", newline="") as handle:
                    csv.DictWriter(handle, self._metric_columns).writeheader()
        with open(path, "a", newline="") as handle:
            csv.DictWriter(handle, self._metric_columns, extrasaction="ignore").writerow(row)
        self._tensorboard().add_scalars_flat(step, metrics)

    def truncate_metrics(self, after_step: int) -> None:
        """Drop metrics rows logged after `after_step` (a resumed run repeats them from its checkpoint)."""
        path = self.path / METRICS
        if not path.is_file():
            return
        with open(path, newline="") as handle:
            rows = list(csv.reader(handle))
        kept = rows[:1] + [row for row in rows[1:] if row and float(row[0]) <= after_step]
        with atomic_path(path) as temp, open(temp, "w", newline="") as handle:
            csv.writer(handle).writerows(kept)

    def _tensorboard(self) -> _Scalars:
        if self._writer is None:
            self._writer = _Scalars(self.path / "tensorboard")
        return self._writer

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def checkpoint_path(self, name: str) -> Path:
        return self.checkpoints / f"{name}.safetensors"

    def latest_checkpoint(self, prefix: str = "step_") -> Path | None:
        """The checkpoint with the highest step number among `<prefix><step>.safetensors`."""
        found = sorted(self.checkpoints.glob(f"{prefix}*.safetensors"), key=lambda p: _step_of(p, prefix))
        return found[-1] if found else None


class _Scalars:
    """TensorBoard scalars, opened lazily (the import costs about a second)."""

    def __init__(self, folder: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(folder))

    def add_scalars_flat(self, step: int, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(name, float(value), step)

    def close(self) -> None:
        self.writer.close()


def _existing_columns(path: Path) -> list[str] | None:
    if not path.is_file():
        return None
    with open(path, newline="") as handle:
        header = next(csv.reader(handle), None)
    return header or None


def _step_of(path: Path, prefix: str) -> int:
    try:
        return int(path.stem[len(prefix):])
    except ValueError:
        return -1


def _config_dict(config: Any) -> dict[str, Any]:
    if isinstance(config, dict):
        return config
    return to_dict(config)


def agent_checkpoint(path: str | Path) -> Path:
    """The checkpoint file of a run directory (final, else latest step) or the file itself."""
    source = Path(path)
    if source.is_file():
        return source
    if not source.is_dir():
        raise TrajlabError(f"{source}: no such agent run or checkpoint")
    final = source / "checkpoints" / "final.safetensors"
    if final.is_file():
        return final
    run = RunDirectory(source)
    latest = run.latest_checkpoint() if run.checkpoints.is_dir() else None
    if latest is None:
        raise TrajlabError(f"{source}: run has no checkpoints/final.safetensors (unfinished or not a trajlab run)")
    return latest
