"""Checkpoints as one safetensors file: tensors in the body, a JSON skeleton and metadata in its header.

A nested state (module weights, optimiser states with integer keys, counters) is split into flat tensors and a
JSON skeleton that says where each tensor goes. One file means one atomic rename, so a checkpoint is either
whole or absent; a JSON copy of the metadata is written beside it for people to read. Nothing is unpickled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from trajlab.core.errors import TrajlabError
from trajlab.core.io import atomic_path, write_json_atomic

_SKELETON = "trajlab_skeleton"
_METADATA = "trajlab_metadata"


def flatten_state(state: Any) -> tuple[Any, dict[str, torch.Tensor]]:
    """Split a nested state into a JSON-able skeleton and a flat name -> tensor map."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, torch.Tensor):
            tensors[path] = value.detach().to("cpu").contiguous().clone()
            return {"__tensor__": path}
        if isinstance(value, dict):
            if all(isinstance(key, str) for key in value):
                return {key: walk(item, f"{path}/{key}") for key, item in value.items()}
            return {"__items__": [[key, walk(item, f"{path}/{key}")] for key, item in value.items()]}
        if isinstance(value, (list, tuple)):
            return [walk(item, f"{path}/{index}") for index, item in enumerate(value)]
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise TypeError(f"cannot store a {type(value).__name__} at {path or '/'} in a checkpoint")

    return walk(state, ""), tensors


def unflatten_state(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of `flatten_state`."""
    if isinstance(skeleton, dict):
        if set(skeleton) == {"__tensor__"}:
            return tensors[skeleton["__tensor__"]]
        if set(skeleton) == {"__items__"}:
            return {key: unflatten_state(item, tensors) for key, item in skeleton["__items__"]}
        return {key: unflatten_state(item, tensors) for key, item in skeleton.items()}
    if isinstance(skeleton, list):
        return [unflatten_state(item, tensors) for item in skeleton]
    return skeleton


def save_checkpoint(path: str | Path, state: Any, metadata: dict[str, Any] | None = None) -> Path:
    """Write `state` (nested tensors/scalars) and `metadata` (JSON) atomically to `path` (.safetensors)."""
    target = Path(path)
    skeleton, tensors = flatten_state(state)
    header = {_SKELETON: json.dumps(skeleton), _METADATA: json.dumps(metadata or {}, default=str)}
    with atomic_path(target) as temp:
        save_file(tensors, str(temp), metadata=header)
    write_json_atomic(target.with_suffix(".json"), metadata or {})
    return target


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[Any, dict[str, Any]]:
    """Read a checkpoint written by `save_checkpoint`: (state, metadata). Errors name the file and the problem."""
    source = Path(path)
    if not source.is_file():
        raise TrajlabError(f"{source}: checkpoint not found")
    try:
        tensors = load_file(str(source), device=str(device))
        header = _read_header(source)
        skeleton = json.loads(header[_SKELETON])
        metadata = json.loads(header.get(_METADATA, "{}"))
    except (SafetensorError, OSError, ValueError, KeyError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise TrajlabError(f"{source}: not a readable trajlab checkpoint ({reason})") from None
    try:
        return unflatten_state(skeleton, tensors), metadata
    except KeyError as error:
        raise TrajlabError(f"{source}: checkpoint is missing tensor {error}") from None


def read_checkpoint_metadata(path: str | Path) -> dict[str, Any]:
    """Only the metadata of a checkpoint, without loading its tensors."""
    source = Path(path)
    try:
        return json.loads(_read_header(source).get(_METADATA, "{}"))
    except (OSError, ValueError) as error:
        raise TrajlabError(f"{source}: not a readable trajlab checkpoint ({error})") from None


def _read_header(path: Path) -> dict[str, str]:
    with open(path, "rb") as handle:
        size_bytes = handle.read(8)
        if len(size_bytes) != 8:
            raise ValueError("file too short")
        size = int.from_bytes(size_bytes, "little")
        if size > 100_000_000:
            raise ValueError("header too large")
        raw = handle.read(size)
        if len(raw) != size:
            raise ValueError("truncated header")
    header = json.loads(raw)
    metadata = header.get("__metadata__")
    if not isinstance(metadata, dict) or _SKELETON not in metadata:
        raise ValueError("no trajlab skeleton in header")
    return metadata
