"""trajlab's HDF5 format: the D4RL layout at the root, plus id arrays and a JSON metadata attribute."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

import trajlab
from trajlab.core.errors import TrajlabError
from trajlab.core.io import atomic_path
from trajlab.data.schema import ARRAY_FIELDS, FORMAT_ATTR, FORMAT_VERSION, ID_FIELDS, METADATA_ATTR, OPTIONAL_FIELDS

# fletcher32 checksums every chunk, so a corrupted file fails to load instead of loading wrong numbers
_CHUNK_OPTIONS = {"compression": "gzip", "compression_opts": 1, "fletcher32": True}


def save_columns(path: str | Path, columns: dict[str, np.ndarray], metadata: dict[str, Any]) -> Path:
    """Write a dataset's columns (schema names) and metadata as one trajlab HDF5 file, atomically."""
    target = Path(path)
    stored = {**metadata, "trajlab_version": trajlab.__version__}
    with atomic_path(target) as temp, h5py.File(temp, "w") as handle:
        for name, values in columns.items():
            handle.create_dataset(name, data=values, **_CHUNK_OPTIONS)
        handle.attrs[METADATA_ATTR] = json.dumps(stored, default=str)
        handle.attrs[FORMAT_ATTR] = FORMAT_VERSION
    return target


def load_columns(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any], Path]:
    """(columns, metadata, path) of a trajlab HDF5 file; a file that lacks a required column is a user error."""
    source = Path(path)
    arrays, attrs = read_hdf5_arrays(source)
    missing = [name for name in (*ARRAY_FIELDS, *ID_FIELDS) if name not in arrays]
    if missing:
        looks_like_d4rl = set(missing) <= set(ID_FIELDS) | {"next_observations"}
        hint = " (a D4RL file? use `trajlab data import`)" if looks_like_d4rl else ""
        raise TrajlabError(f"{source}: missing required key(s) {', '.join(missing)}{hint}")
    try:
        metadata = json.loads(attrs.get(METADATA_ATTR, "{}"))
    except json.JSONDecodeError:
        raise TrajlabError(f"{source}: metadata attribute is not valid JSON") from None
    wanted = (*ARRAY_FIELDS, *ID_FIELDS, *OPTIONAL_FIELDS)
    return {name: arrays[name] for name in wanted if name in arrays}, metadata, source


def read_hdf5_arrays(source: Path) -> tuple[dict[str, np.ndarray], dict[str, object]]:
    """Every dataset at the root of an HDF5 file (as arrays, never objects) and its root attributes."""
    if not source.is_file():
        raise TrajlabError(f"{source}: file not found")
    try:
        with h5py.File(source, "r") as handle:
            arrays = {}
            for name, node in handle.items():
                if isinstance(node, h5py.Dataset):
                    if node.dtype.kind == "O":
                        raise TrajlabError(f"{source}: dataset {name!r} holds objects, which trajlab never loads")
                    arrays[name] = node[()]
            attrs = {key: _attr(value) for key, value in handle.attrs.items()}
    except TrajlabError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise TrajlabError(f"{source}: not a readable HDF5 file ({reason})") from None
    return arrays, attrs


def _attr(value: object) -> object:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value
