"""What every command shares: the common options (declared once, help read from the config fields' docstrings),
`--set` parsing, result printing and the interrupt hint."""

from __future__ import annotations

import ast
import contextlib
import functools
import json
from collections.abc import Iterator, Sequence
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import typer


class ConfigDocs:
    """The field docstrings of one config class, read from its module's source without importing the module:
    config modules import torch, and `trajlab --help` must stay fast. `run_arguments` documents the options
    that are keyword arguments of the command's run() rather than config fields."""

    def __init__(self, module: str, class_name: str, **run_arguments: str) -> None:
        self.module, self.class_name, self.run_arguments = module, class_name, run_arguments

    def __getitem__(self, field: str) -> str:
        if field in self.run_arguments:
            return self.run_arguments[field]
        docs = _source_field_docs(self.module, self.class_name)
        if field not in docs:
            raise KeyError(f"{self.module}.{self.class_name}.{field} has no docstring to use as help")
        return docs[field]


@functools.cache
def _source_field_docs(module: str, class_name: str) -> dict[str, str]:
    """What `core.config.field_docs` reads from a loaded class (the string under each field), from source."""
    tree = ast.parse(_source_file(module).read_text())
    classes = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == class_name]
    if not classes:
        raise KeyError(f"{module} defines no class {class_name}")
    from trajlab.core.config import class_field_docs

    return class_field_docs(classes[0])


def _source_file(module: str) -> Path:
    """A trajlab module's file, found without importing its packages (some of whose __init__ import torch)."""
    import trajlab

    top, *parts = module.split(".")
    if top != "trajlab" or not parts:
        raise KeyError(f"{module}: not a trajlab module")
    return Path(trajlab.__file__).parent.joinpath(*parts).with_suffix(".py")


# --- the options every command shares ------------------------------------------------------------------------
def device(docs: ConfigDocs, default: str | None = "cpu") -> Any:
    return typer.Option(default, "--device", help=docs["device"])


def threads(docs: ConfigDocs, field: str = "threads") -> Any:
    return typer.Option(None, "--threads", help=docs[field])


def seed(docs: ConfigDocs, default: int = 0) -> Any:
    return typer.Option(default, "--seed", help=docs["seed"])


PRESET_FILE_HELP = " Or a YAML file of your own, which may start with `extends: PRESET` and state only what it changes."


def preset(docs: ConfigDocs, default: str = "quick") -> Any:
    return typer.Option(default, "--preset", help=docs["preset"] + PRESET_FILE_HELP)


def out(docs: ConfigDocs, default: Any = ...) -> Any:
    """--out; required unless a default is given."""
    return typer.Option(default, "--out", help=docs["out"])


def overwrite(docs: ConfigDocs) -> Any:
    return typer.Option(False, "--overwrite", help=docs["overwrite"])


def resume(docs: ConfigDocs) -> Any:
    return typer.Option(False, "--resume", help=docs["resume"])


JSON = typer.Option(False, "--json", help="Print only the result on stdout, as JSON (a run's result.json).")


# --- --set KEY=VALUE -----------------------------------------------------------------------------------------
def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """KEY=VALUE strings -> {key: YAML-parsed value} (so 0.5 is a float, [64, 64] a list, true a bool)."""
    import yaml

    from trajlab.core.errors import TrajlabError

    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise TrajlabError(f"--set expects KEY=VALUE, got {pair!r}")
        try:
            overrides[key.strip()] = yaml.safe_load(text)
        except yaml.YAMLError:
            raise TrajlabError(f"--set {key}: cannot parse value {text!r}") from None
    return overrides


def nested_overrides(pairs: list[str]) -> dict[str, Any]:
    """--set trajdeleter.forget_steps=400 -> {"trajdeleter": {"forget_steps": 400}}, at any depth (values parsed
    as YAML); a key given both a value and sub-keys is refused."""
    from trajlab.core.errors import TrajlabError

    nested: dict[str, Any] = {}
    for key, value in parse_overrides(pairs).items():
        *sections, field = key.split(".")
        if not all(part.strip() for part in key.split(".")):
            raise TrajlabError(f"--set {key}: empty name between dots")
        node = nested
        for depth, section in enumerate(sections):
            node = node.setdefault(section, {})
            if not isinstance(node, dict):
                raise TrajlabError(f"--set {key}: {'.'.join(sections[:depth + 1])} is given a value and sub-keys")
        if isinstance(node.get(field), dict):
            raise TrajlabError(f"--set {key}: {key} is given a value and sub-keys")
        node[field] = value
    return nested


def with_options(overrides: dict[str, Any], **options: Any) -> dict[str, Any]:
    """--set overrides with the command's own options on top. A section given as a dict merges key by key, and an
    option left at None keeps the --set value (or the preset's); a --set key that has its own option is refused,
    since the option's default would otherwise override it without a word."""
    from trajlab.core.errors import TrajlabError

    merged = dict(overrides)
    for key, value in options.items():
        if isinstance(value, dict):
            given = merged.get(key, {})
            if not isinstance(given, dict):
                raise TrajlabError(f"--set {key}: {key} is a section; set its keys ({key}.NAME=VALUE)")
            merged[key] = {**given, **{name: v for name, v in value.items() if v is not None}}
        elif key in merged:
            raise TrajlabError(f"--set {key}: {key} has its own option (--{key.replace('_', '-')}); use that")
        else:
            merged[key] = value
    return merged


# --- printing results ----------------------------------------------------------------------------------------
def emit(result: dict[str, Any], as_json: bool, headline: Sequence[str] = ()) -> None:
    """Print a command's result on stdout: with --json only the JSON, else one `key  value` row per top-level
    value and per nested value whose dotted key matches a `headline` pattern (e.g. "methods.*.recovery")."""
    if as_json:
        typer.echo(json.dumps(result, indent=2, sort_keys=True, default=str))
        return
    rows = summary_rows(result, headline)
    width = max((len(key) for key, _ in rows), default=0)
    for key, value in rows:
        typer.echo(f"{key:<{width}}  {value}")


SHORT_LIST = 10
"""Lists of at most this many plain values are summarised on one row; longer (and empty) ones only in the JSON."""


def summary_rows(result: dict[str, Any], headline: Sequence[str] = ()) -> list[tuple[str, str]]:
    """(key, formatted value) rows of the summary; long lists and values that do not apply (None) are left out."""
    rows = []
    for path, value in _leaves(result):
        key = ".".join(path)
        if value is not None and (len(path) == 1 or any(fnmatch(key, pattern) for pattern in headline)):
            rows.append((key, _format(value)))
    return rows


def _leaves(values: dict[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    for key, value in values.items():
        if isinstance(value, dict):
            yield from _leaves(value, (*prefix, str(key)))
        elif not isinstance(value, (list, tuple)) or _is_short_list(value):
            yield (*prefix, str(key)), value


def _is_short_list(value: list | tuple) -> bool:
    return 0 < len(value) <= SHORT_LIST and not any(isinstance(item, (dict, list, tuple)) for item in value)


def _format(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(_format(item) for item in value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


# --- Ctrl-C --------------------------------------------------------------------------------------------------
class Interrupted(Exception):
    """Ctrl-C in a command, with what the user can do next (main prints it and exits 130)."""

    def __init__(self, hint: str) -> None:
        super().__init__(hint)
        self.hint = hint


NO_RESUME_HINT = "nothing was kept to resume from; rerun with --overwrite to start again"
"""What an interrupted command that keeps nothing to resume from tells the user."""


@contextlib.contextmanager
def on_interrupt(hint: str) -> Iterator[None]:
    """Within the block, Ctrl-C ends the command with `hint` (commands differ in whether a rerun continues)."""
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(hint) from None
