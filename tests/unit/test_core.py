"""Core pieces: checkpoints, configs, run directories, atomic writes, registry, batches, reports."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from trajlab.core.checkpoint import flatten_state, load_checkpoint, save_checkpoint, unflatten_state
from trajlab.core.config import field_docs, from_dict, replace, to_dict
from trajlab.core.errors import TrajlabError
from trajlab.core.io import atomic_path, write_json_atomic
from trajlab.core.protocols import Batch
from trajlab.core.registry import Registry
from trajlab.core.rundir import RunDirectory
from trajlab.core.seeding import derive_seed


@dataclass(frozen=True)
class _Inner:
    width: int = 8
    """Width of a layer."""


@dataclass(frozen=True)
class _Config:
    lr: float = 1e-3
    """Learning rate."""
    sizes: tuple[int, ...] = (4, 4)
    """Hidden sizes."""
    inner: _Inner = _Inner()
    """A nested config."""


def _trained_state() -> dict:
    layer = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(layer.parameters())
    layer(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    return {"net": layer.state_dict(), "opt": optimizer.state_dict(), "count": 7, "name": "x", "none": None}


def test_checkpoint_round_trip_keeps_optimizer_integer_keys(tmp_path):
    state = _trained_state()
    save_checkpoint(tmp_path / "c.safetensors", state, {"algo": "test"})
    loaded, metadata = load_checkpoint(tmp_path / "c.safetensors")
    assert metadata == {"algo": "test"}
    assert json.loads((tmp_path / "c.json").read_text()) == {"algo": "test"}
    assert list(loaded["opt"]["state"]) == [0, 1]
    assert loaded["count"] == 7 and loaded["name"] == "x" and loaded["none"] is None
    for key, value in state["net"].items():
        assert torch.equal(loaded["net"][key], value)
    optimizer = torch.optim.Adam(torch.nn.Linear(3, 2).parameters())
    optimizer.load_state_dict(loaded["opt"])


def test_flatten_unflatten_nested_lists():
    state = {"a": [torch.zeros(2), {"b": torch.ones(1), 3: 4.5}]}
    skeleton, tensors = flatten_state(state)
    json.dumps(skeleton)
    restored = unflatten_state(skeleton, tensors)
    assert torch.equal(restored["a"][0], torch.zeros(2)) and restored["a"][1][3] == 4.5


def test_flatten_rejects_objects():
    with pytest.raises(TypeError, match="cannot store"):
        flatten_state({"x": object()})


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    path = save_checkpoint(tmp_path / "c.safetensors", _trained_state())
    data = path.read_bytes()
    for cut in (4, 60, len(data) - 10):
        broken = tmp_path / f"cut{cut}.safetensors"
        broken.write_bytes(data[:cut])
        with pytest.raises(TrajlabError, match="not a readable trajlab checkpoint"):
            load_checkpoint(broken)
    with pytest.raises(TrajlabError, match="not found"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_checkpoint_overwrite_is_atomic(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "c.safetensors", {"x": torch.ones(2)})
    before = path.read_bytes()

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("trajlab.core.checkpoint.save_file", explode)
    with pytest.raises(RuntimeError):
        save_checkpoint(path, {"x": torch.zeros(2)})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(ValueError), atomic_path(target) as temp:
        temp.write_text("half")
        raise ValueError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_config_docs_and_strict_round_trip():
    docs = field_docs(_Config)
    assert docs == {"lr": "Learning rate.", "sizes": "Hidden sizes.", "inner": "A nested config."}
    config = from_dict(_Config, {"lr": 1, "sizes": [8, 8], "inner": {"width": 3}})
    assert config == _Config(lr=1.0, sizes=(8, 8), inner=_Inner(3))
    assert from_dict(_Config, to_dict(config)) == config
    assert replace(config, lr=0.5).lr == 0.5
    with pytest.raises(TrajlabError, match="unknown option"):
        from_dict(_Config, {"learning_rate": 1})


@dataclass(frozen=True)
class _Rates:
    lr: float = 1e-3
    decay: float | None = None


def test_number_fields_read_yaml_text_numbers_and_refuse_words():
    # YAML 1.1 reads 3e-3 (no dot) as the string "3e-3"
    assert from_dict(_Rates, {"lr": "3e-3", "decay": "1e-4"}) == _Rates(lr=3e-3, decay=1e-4)
    assert from_dict(_Rates, {"decay": None}).decay is None
    with pytest.raises(TrajlabError, match=r"config.lr must be a number, got 'fast'"):
        from_dict(_Rates, {"lr": "fast"})


@dataclass(frozen=True)
class _Switches:
    centre: bool = False
    resume: bool | None = None


def test_switches_refuse_anything_but_true_or_false():
    assert from_dict(_Switches, {"centre": True, "resume": None}) == _Switches(centre=True)
    for values in ({"centre": "maybe"}, {"resume": 1}):
        with pytest.raises(TrajlabError, match=r"must be true or false, got"):
            from_dict(_Switches, values)


def test_run_directory_lifecycle(tmp_path):
    path = tmp_path / "run"
    run = RunDirectory.create(path, _Config(), command="test")
    assert (path / "config.yaml").is_file() and run.checkpoints.is_dir() and run.plots.is_dir()
    run.log_metrics(1, {"loss": 1.0})
    run.log_metrics(2, {"loss": 0.5})
    run.log_metrics(3, {"loss": 0.25})
    run.truncate_metrics(after_step=2)
    assert (path / "metrics.csv").read_text().splitlines() == ["step,loss", "1,1.0", "2,0.5"]
    run.close()
    with pytest.raises(TrajlabError, match="--resume"):
        RunDirectory.create(path, _Config(), command="test")
    resumed = RunDirectory.create(path, _Config(), command="test", resume=True)
    resumed.write_result({"ok": True})
    with pytest.raises(TrajlabError, match="already finished"):
        RunDirectory.create(path, _Config(), command="test", resume=True)
    with pytest.raises(TrajlabError, match="--overwrite"):
        RunDirectory.create(path, _Config(), command="test")
    assert RunDirectory.open(path).result() == {"ok": True}
    RunDirectory.create(path, _Config(), command="test", overwrite=True)
    assert not (path / "result.json").exists()
    with pytest.raises(TrajlabError, match="no run to resume"):
        RunDirectory.create(tmp_path / "other", _Config(), command="test", resume=True)


def test_latest_checkpoint_orders_by_step(tmp_path):
    run = RunDirectory.create(tmp_path / "run", {"a": 1}, command="test")
    for step in (5, 100, 20):
        save_checkpoint(run.checkpoint_path(f"step_{step}"), {"x": torch.ones(1)})
    assert run.latest_checkpoint().name == "step_100.safetensors"


def test_registry_lists_known_names():
    registry: Registry[int] = Registry("widget")
    registry.add("a", 1)
    with pytest.raises(TrajlabError, match="unknown widget 'b'; known: a"):
        registry.get("b")


def test_batch_weighted_mean_and_index():
    batch = Batch(
        observations=torch.zeros(3, 2), actions=torch.zeros(3, 1), rewards=torch.tensor([1.0, 2.0, 3.0]),
        next_observations=torch.zeros(3, 2), terminals=torch.zeros(3), transition_ids=torch.tensor([7, 8, 9]),
        episode_ids=torch.tensor([0, 0, 1]),
    )
    losses = torch.tensor([1.0, 2.0, 3.0])
    assert batch.weighted_mean(losses) == pytest.approx(2.0)
    weighted = batch.replace(weights=torch.tensor([0.0, 1.0, 1.0]))
    assert weighted.weighted_mean(losses) == pytest.approx(2.5)
    assert weighted.index(torch.tensor([2])).transition_ids.tolist() == [9]


def test_derive_seed_is_stable_and_distinct():
    assert derive_seed(1, "shadow", 0) == derive_seed(1, "shadow", 0)
    assert len({derive_seed(1, "shadow", k) for k in range(10)}) == 10


def test_report_embeds_images(tmp_path):
    from trajlab.report import Report, plot_curves, save_gif

    plot = plot_curves({"a": ([0, 1], [0.0, 1.0])}, tmp_path / "p.png", title="curve")
    gif = save_gif(np.zeros((3, 8, 8, 3), dtype=np.uint8), tmp_path / "a.gif")
    out = Report("R").heading("H").table(["k", "v"], [["x", 1.5]]).image(plot).image(gif).write(tmp_path / "r.html")
    text = out.read_text()
    assert "data:image/png;base64," in text and "data:image/gif;base64," in text and "<td class='num'>1.5</td>" in text
    with pytest.raises(TrajlabError):
        save_gif(np.zeros((3, 8, 8)), tmp_path / "bad.gif")
    write_json_atomic(tmp_path / "x.json", {"v": np.float32(1.5)})
    assert json.loads((tmp_path / "x.json").read_text()) == {"v": 1.5}


def _write_presets(root, presets: dict[str, str]) -> None:
    (root / "demo").mkdir()
    for name, text in presets.items():
        (root / "demo" / f"{name}.yaml").write_text(text)


def test_a_preset_that_extends_another_states_only_what_it_changes(tmp_path, monkeypatch):
    from trajlab.core import config

    monkeypatch.setattr(config, "configs_root", lambda: tmp_path)
    _write_presets(tmp_path, {
        "base": "a: {x: 1, y: 2, z: 3}\nb: 5\n",
        "variant": "extends: base\na: {y: 20, z: null}\nc: 7\n",
        "again": "extends: variant\nb: 6\n",
    })
    assert config.read_preset("demo", "variant") == {"a": {"x": 1, "y": 20, "z": None}, "b": 5, "c": 7}
    assert config.read_preset("demo", "again") == {"a": {"x": 1, "y": 20, "z": None}, "b": 6, "c": 7}


def test_a_preset_can_be_a_users_yaml_file_extending_a_packaged_one(tmp_path, monkeypatch):
    from trajlab.core import config

    monkeypatch.setattr(config, "configs_root", lambda: tmp_path)
    _write_presets(tmp_path, {"base": "a: {x: 1, y: 2}\nb: 5\n"})
    mine = tmp_path / "elsewhere" / "mine.yaml"
    mine.parent.mkdir()
    mine.write_text("extends: base\na: {y: 3}\n")
    assert config.read_preset("demo", str(mine)) == {"a": {"x": 1, "y": 3}, "b": 5}
    with pytest.raises(TrajlabError, match="preset file .*missing.yaml not found"):
        config.read_preset("demo", str(tmp_path / "missing.yaml"))


def test_presets_that_extend_in_a_cycle_or_an_unknown_base_fail_in_one_line(tmp_path, monkeypatch):
    from trajlab.core import config

    monkeypatch.setattr(config, "configs_root", lambda: tmp_path)
    _write_presets(tmp_path, {"one": "extends: two\n", "two": "extends: one\n", "lost": "extends: nowhere\n",
                              "listed": "- 1\n- 2\n"})
    with pytest.raises(TrajlabError, match="cycle: one -> two -> one"):
        config.read_preset("demo", "one")
    with pytest.raises(TrajlabError, match="unknown preset 'nowhere'"):
        config.read_preset("demo", "lost")
    with pytest.raises(TrajlabError, match="must be a mapping"):
        config.read_preset("demo", "listed")


def test_set_options_nest_at_any_depth_and_refuse_a_key_that_is_both_value_and_section():
    from trajlab.cli.options import nested_overrides

    assert nested_overrides(["a=1", "b.c=[1, 2]", "b.d.e=x", "b.d.f=0.5"]) == \
        {"a": 1, "b": {"c": [1, 2], "d": {"e": "x", "f": 0.5}}}
    for pairs, message in ((["b=1", "b.c=2"], "b is given a value and sub-keys"),
                           (["b.c=2", "b=1"], "b is given a value and sub-keys"),
                           (["b..c=1"], "empty name between dots"), (["c"], "--set expects KEY=VALUE")):
        with pytest.raises(TrajlabError, match=re.escape(message)):
            nested_overrides(pairs)


def test_command_options_go_over_set_without_erasing_it():
    from trajlab.cli.options import with_options

    given = {"dsi": {"epochs": 6, "l1": 2.0}, "val_fraction": 0.2}
    # an option left at None keeps the --set value; a given one wins inside its section
    assert with_options(given, out="o", dsi={"epochs": None}) == \
        {"dsi": {"epochs": 6, "l1": 2.0}, "val_fraction": 0.2, "out": "o"}
    assert with_options(given, dsi={"epochs": 3})["dsi"] == {"epochs": 3, "l1": 2.0}
    assert given["dsi"]["epochs"] == 6  # the caller's dict is not changed
    with pytest.raises(TrajlabError, match=re.escape("--set seed: seed has its own option (--seed)")):
        with_options({"seed": 3}, seed=0)
    with pytest.raises(TrajlabError, match=re.escape("--set dsi: dsi is a section")):
        with_options({"dsi": 1}, dsi={"epochs": None})


def test_threads_restored_puts_the_thread_count_back():
    from trajlab.core.seeding import set_threads, threads_restored

    before = torch.get_num_threads()
    with threads_restored():
        set_threads(before + 1)
        assert torch.get_num_threads() == before + 1
    assert torch.get_num_threads() == before
