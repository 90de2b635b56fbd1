"""Frozen config dataclasses: field docs, strict dict/YAML round trips, and presets under `configs/`.

A config field's documentation is the string literal written under it (as in CORL), read here with `ast`, so
the source stays readable and the CLI can still show it.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import textwrap
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from trajlab.core.errors import TrajlabError

C = TypeVar("C")


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each field of a dataclass, by field name."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        docs.update(class_field_docs(tree.body[0]))  # type: ignore[arg-type]
    return docs


def class_field_docs(node: ast.ClassDef) -> dict[str, str]:
    """The string literal under each annotated field of a parsed class body, by field name (what `field_docs`
    reads; the CLI calls it on source it has not imported, to keep `--help` fast)."""
    docs: dict[str, str] = {}
    for field_node, following in zip(node.body, node.body[1:]):
        is_field = isinstance(field_node, ast.AnnAssign) and isinstance(field_node.target, ast.Name)
        is_doc = isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
        if is_field and is_doc:
            docs[field_node.target.id] = " ".join(str(following.value.value).split())  # type: ignore[union-attr]
    return docs


def to_dict(config: Any) -> dict[str, Any]:
    """A plain dict (nested dataclasses become dicts, tuples become lists) fit for YAML and JSON."""
    return _plain(dataclasses.asdict(config))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value


def from_dict(cls: type[C], values: dict[str, Any], *, where: str = "config") -> C:
    """Build `cls` from a dict, rejecting unknown keys and converting nested dataclasses and tuples."""
    if not isinstance(values, dict):
        raise TrajlabError(f"{where}: expected a mapping, got {type(values).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise TrajlabError(f"{where}: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    hints = typing.get_type_hints(cls)
    converted = {name: _convert(hints[name], value, f"{where}.{name}") for name, value in values.items()}
    return cls(**converted)


def _convert(hint: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(hint) and isinstance(value, dict):
        return from_dict(hint, value, where=where)
    origin = typing.get_origin(hint)
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and float in _number_hints(hint):
        return _float_from_text(value, where)
    # a switch given a word (--set lira.centre=maybe) would otherwise count as on
    if value is not None and not isinstance(value, bool) and set(_number_hints(hint)) <= {bool, type(None)}:
        raise TrajlabError(f"{where} must be true or false, got {value!r}")
    return value


def _number_hints(hint: Any) -> tuple[Any, ...]:
    """The types a field accepts: `float | None` gives (float, NoneType)."""
    return typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)


def _float_from_text(value: str, where: str) -> float:
    # YAML 1.1 reads 3e-3 (no dot) as a string; a number field takes it as the number it spells
    try:
        return float(value)
    except ValueError:
        raise TrajlabError(f"{where} must be a number, got {value!r}") from None


def replace(config: C, **changes: Any) -> C:
    """A copy of a frozen config with some fields changed (unknown names are a user error)."""
    merged = {**to_dict(config), **{k: v for k, v in changes.items() if v is not None}}
    return from_dict(type(config), merged, where=type(config).__name__)


def configs_root() -> Path:
    """The presets folder: inside the installed package, or `configs/` at the top of a source checkout."""
    packaged = Path(__file__).resolve().parent.parent / "configs"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "configs"


def is_preset_file(preset: str) -> bool:
    """A preset named by its own YAML file (a user's variant outside the packaged presets)."""
    return preset.endswith((".yaml", ".yml"))


def preset_path(system: str, preset: str) -> Path:
    if is_preset_file(preset):
        return Path(preset)
    return configs_root() / system / f"{preset}.yaml"


def existing_preset(system: str, preset: str) -> Path:
    """configs/<system>/<preset>.yaml (or the file `preset` names), or a one-line error naming the presets."""
    path = preset_path(system, preset)
    if is_preset_file(preset) and not path.is_file():
        raise TrajlabError(f"preset file {preset} not found")
    if not path.is_file():
        available = sorted(p.stem for p in path.parent.glob("*.yaml")) if path.parent.is_dir() else []
        raise TrajlabError(f"unknown preset {preset!r} for {system}; available: {', '.join(available) or 'none'}")
    return path


def read_preset(system: str, preset: str, *, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """configs/<system>/<preset>.yaml (or the YAML file `preset` names) as a dict. A preset with `extends: OTHER`
    is OTHER's values with its own merged in key by key at any depth (its null values included), so a variant
    states only what it changes; OTHER is a packaged preset's name or another file."""
    if preset in seen:
        raise TrajlabError(f"presets of {system} extend one another in a cycle: {' -> '.join([*seen, preset])}")
    path = existing_preset(system, preset)
    values = load_yaml(path) or {}
    if not isinstance(values, dict):
        raise TrajlabError(f"{path}: a preset must be a mapping of settings, not {type(values).__name__}")
    base = values.pop("extends", None)
    if base is None:
        return values
    return merge_overrides(read_preset(system, str(base), seen=(*seen, preset)), values, keep_none=True)


def load_preset(cls: type[C], system: str, preset: str, **overrides: Any) -> C:
    """Config `cls` from `configs/<system>/<preset>.yaml`, then `overrides` (None values are ignored)."""
    values = read_preset(system, preset)
    values.update({key: value for key, value in overrides.items() if value is not None})
    return from_dict(cls, values, where=f"{system}/{preset}")


def load_yaml(path: str | Path) -> Any:
    try:
        with open(path) as handle:
            return yaml.safe_load(handle)
    except yaml.YAMLError as error:
        raise TrajlabError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    except OSError as error:
        raise TrajlabError(f"{path}: cannot read ({error.strerror})") from None


def merge_overrides(base: dict[str, Any], overrides: dict[str, Any], *,
                     keep_none: bool = False) -> dict[str, Any]:
    """`base` with `overrides` merged in key by key, at any depth; None values leave the base's unless
    `keep_none`."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict):
            inner = merged.get(key) if isinstance(merged.get(key), dict) else {}
            merged[key] = merge_overrides(inner, value, keep_none=keep_none)
        elif value is not None or keep_none:
            merged[key] = value
    return merged


def load_nested_preset(cls: type, system: str, preset: str, overrides: dict[str, Any], *,
                       section: str | None = None) -> Any:
    """`cls` from configs/<system>/<preset>.yaml (or its `section`), merging dict overrides into nested sections
    key by key; None values leave the preset's."""
    loaded = read_preset(system, preset)
    values = dict((loaded.get(section) or {}) if section is not None else loaded)
    values = merge_overrides(values, overrides)
    where = f"{system}/{preset}" + ("" if section is None else f".{section}")
    return from_dict(cls, {**values, "preset": preset}, where=where)
