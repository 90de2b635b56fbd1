"""`trajlab critical data|train|evaluate|explain|attack`: Deep State Identifier's critical states as commands.

    trajlab critical data --env minigrid-keycorridor --episodes 1000 --out DATA
    trajlab critical train DATA --out RUN
    trajlab critical evaluate RUN --data DATA --out EVAL
    trajlab critical explain RUN --data DATA --episode ID --out EXPLAIN
    trajlab critical attack RUN --out ATTACK          (a model trained on Pong videos)
    trajlab critical improve RUN --out IMPROVE        (PPO on MiniGrid with a bonus at the critical frames)

Each checks its request before it writes anything. Presets: configs/critical/<preset>.yaml, one section per
command.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from trajlab.core.config import load_nested_preset
from trajlab.core.errors import TrajlabError
from trajlab.core.rundir import RunDirectory
from trajlab.core.seeding import seed_everything, set_threads
from trajlab.envs.minigrid import make_minigrid
from trajlab.explain.attack import AttackConfig
from trajlab.explain.dsi import REVERSE_TARGETS, DSIConfig, ModelConfig, TrainProgress
from trajlab.explain.gridworld import GridWorldConfig
from trajlab.explain.improve import ARMS, LearnerConfig
from trajlab.explain.pong import PongConfig

FRAMES = "frames.h5"
MODEL = "final"
BEST = "best_validation"
SELECTIONS = ("last", "val_f1", "auto")
ENVS = ("minigrid-keycorridor", "pong")


@dataclass(frozen=True)
class DataConfig:
    """Collect labelled episode videos (section `data`)."""

    out: str
    """Run directory to write (frames.h5 holds every episode with its split)."""
    env: str = "minigrid-keycorridor"
    """Environment: minigrid-keycorridor (GridWorld-S) or pong (single-point Atari Pong episodes)."""
    episodes: int = 2000
    """Training episodes (a share of them becomes the validation split)."""
    test_episodes: int = 400
    """Test episodes (the paper: 400 for GridWorld)."""
    val_fraction: float = 0.1
    """Share of the training episodes held out to choose the threshold honestly."""
    gridworld: GridWorldConfig = GridWorldConfig()
    """How GridWorld episodes are drawn."""
    pong: PongConfig = PongConfig()
    """How Pong episodes are drawn."""
    preset: str = "quick"
    """Preset: configs/critical/<preset>.yaml (quick: CPU minutes; paper: the published sizes)."""
    seed: int = 0
    """Seed of the layouts and the random walks."""
    overwrite: bool = False
    """Replace a run already in `out`."""


@dataclass(frozen=True)
class TrainConfig:
    """Train the detector and return predictor (section `train`)."""

    data: str
    """Run directory of `trajlab critical data` (or its frames.h5)."""
    out: str
    """Run directory to write."""
    model: ModelConfig = ModelConfig()
    """The networks."""
    dsi: DSIConfig = DSIConfig()
    """Loss weights and optimisation."""
    preset: str = "quick"
    """Preset: configs/critical/<preset>.yaml."""
    seed: int = 0
    """Seed of initialisation and minibatches."""
    threads: int | None = None
    """Torch CPU threads (default: torch's choice)."""
    device: str = "cpu"
    """Torch device (cpu or cuda)."""
    overwrite: bool = False
    """Replace a run already in `out`."""
    resume: bool = False
    """Continue an interrupted run in `out` from its last finished epoch (same data and settings)."""
    select: str = "last"
    """Which epoch's networks become the model. "last": the final epoch's. "val_f1": the epoch with the best
    honest F1@2 on the validation successes (it needs their ground-truth critical frames: GridWorld has them,
    Pong does not). "auto": val_f1 where the validation episodes have critical frames, else last. A run's F1
    moves by about 15 points from one epoch to the next (docs/benchmarks.md); choosing on validation steadies
    it without looking at the test episodes."""


@dataclass(frozen=True)
class EvaluateConfig:
    """F1@tolerance of the critical states against the ground truth, with baselines (section `evaluate`)."""

    model: str
    """Run directory of `trajlab critical train` (or its checkpoint file)."""
    data: str
    """Run directory of `trajlab critical data` (or its frames.h5); its test split is scored."""
    out: str
    """Run directory to write."""
    saliency: bool = True
    """Also score the gradient-saliency baseline on the same return predictor."""
    preset: str = "quick"
    """Preset: configs/critical/<preset>.yaml."""
    seed: int = 0
    """Seed of the random baseline."""
    device: str = "cpu"
    """Torch device (cpu or cuda)."""
    overwrite: bool = False
    """Replace a run already in `out`."""


@dataclass(frozen=True)
class ExplainConfig:
    """One episode's critical states as a GIF and a per-step score plot (section `explain`)."""

    model: str
    """Run directory of `trajlab critical train` (or its checkpoint file)."""
    data: str
    """Run directory of `trajlab critical data` (or its frames.h5)."""
    episode: int
    """Episode id to explain."""
    out: str
    """Run directory to write (plots/episode_<id>.gif, plots/episode_<id>_scores.png)."""
    threshold: float | None = None
    """Frames whose score reaches this are highlighted as critical; None: the threshold with the best F1@2 on the
    validation episodes (the honest protocol's choice; a mask's scale differs from run to run)."""
    preset: str = "quick"
    """Preset: configs/critical/<preset>.yaml."""
    fps: int = 4
    """GIF frames per second."""
    overwrite: bool = False
    """Replace a run already in `out`."""


def load_critical_config(cls: type, section: str, preset: str, **values: Any) -> Any:
    """`cls` from configs/critical/<preset>.yaml's `section`, with non-None `values` on top (nested: key by key)."""
    return load_nested_preset(cls, "critical", preset, values, section=section)


def frames_file(source: str | Path) -> Path:
    """frames.h5 of a data run directory, or the file itself."""
    path = Path(source)
    path = path / FRAMES if path.is_dir() else path
    if not path.is_file():
        raise TrajlabError(f"{source}: no frame store (expected a `trajlab critical data` run or a {FRAMES})")
    return path


def model_file(source: str | Path) -> Path:
    path = Path(source)
    path = path / "checkpoints" / f"{MODEL}.safetensors" if path.is_dir() else path
    if not path.is_file():
        raise TrajlabError(f"{source}: no model (expected a `trajlab critical train` run)")
    return path


# --- data ------------------------------------------------------------------------------------------------------
def run_data(config: DataConfig) -> dict[str, Any]:
    from trajlab.data.frames import FrameStore

    if config.env not in ENVS:
        raise TrajlabError(f"unknown env {config.env!r}; available: {', '.join(ENVS)}")
    if config.episodes < 2 or config.test_episodes < 1 or not 0 <= config.val_fraction < 1:
        raise TrajlabError("need at least 2 training and 1 test episode, and val_fraction in [0, 1)")
    for name in ("positive_fraction", "key_then_wander_fraction", "key_then_door_fraction"):
        if not 0 <= getattr(config.gridworld, name) <= 1:
            raise TrajlabError(f"gridworld.{name} must be in [0, 1], got {getattr(config.gridworld, name)}")
    run_dir = RunDirectory.create(config.out, config, command="critical data", overwrite=config.overwrite)
    rng = seed_everything(config.seed)
    started = time.perf_counter()
    episodes, class_names = _collect(config, rng, _splits(config, rng))
    store = FrameStore.from_episodes(episodes, env_id=config.env, class_names=class_names)
    elapsed = time.perf_counter() - started
    store.save(run_dir.path / FRAMES)
    result = {"run_dir": str(run_dir.path), "frames_file": str(run_dir.path / FRAMES), "env": config.env,
              "episodes": {split: int(len(store.rows(split))) for split in ("train", "val", "test")},
              "label_counts": {name: int((store.labels == index).sum()) for index, name in
                               enumerate(store.class_names)}, "frames": int(len(store.frames)),
              "frame_shape": list(store.frame_shape), "mean_length": float(store.lengths.mean()),
              "critical_frames": int(store.critical.sum()), "wall_time_s": elapsed,
              "frames_per_s": len(store.frames) / max(elapsed, 1e-9)}
    run_dir.write_result(result)
    return result


def _collect(config: DataConfig, rng: np.random.Generator, splits: list[str]) -> tuple[list, tuple[str, ...]]:
    """Every episode of the request, with a progress bar; layout/reset seeds are the episode's index."""
    from trajlab.core.progress import update_bar
    from trajlab.explain import gridworld, pong

    episodes = []
    env = pong.make_env(config.pong) if config.env == "pong" else None
    with update_bar("collecting", len(splits), unit="episodes") as show:
        for index, split in enumerate(splits):
            seed = config.seed * 1_000_003 + index
            if env is None:
                positive = bool(rng.random() < config.gridworld.positive_fraction)
                episodes.append(gridworld.collect_episode(seed, positive, config.gridworld, rng, split))
            else:
                episodes.append(pong.collect_episode(env, seed, config.pong, rng, split))
            show(index + 1)
    return episodes, pong.CLASS_NAMES if env is not None else gridworld.CLASS_NAMES


def _splits(config: DataConfig, rng: np.random.Generator) -> list[str]:
    val = int(round(config.episodes * config.val_fraction))
    train = ["val" if i < val else "train" for i in range(config.episodes)]
    return list(rng.permutation(train)) + ["test"] * config.test_episodes


# --- train -----------------------------------------------------------------------------------------------------
def run_train(config: TrainConfig) -> dict[str, Any]:
    from trajlab.core.progress import update_bar
    from trajlab.data.frames import FrameStore
    from trajlab.explain.dsi import new_model, new_optimizers, save_model, train

    set_threads(config.threads)
    store = FrameStore.load(frames_file(config.data))
    train_rows = store.rows("train")
    _check_train_config(config, store)
    on_validation = selects_on_validation(config.select, store)
    run_dir = RunDirectory.create(config.out, config, command="critical train", overwrite=config.overwrite,
                                  resume=config.resume)
    seed_everything(config.seed)
    dsi = new_model(store, config.model)
    dsi.detector.to(config.device)
    dsi.predictor.to(config.device)
    optimizers = new_optimizers(dsi, config.dsi)
    choice = EpochChoice(run_dir, store, on_validation, config.device)
    start, earlier_s = (_resume_point(run_dir, config, dsi, optimizers, choice) if config.resume
                        else (TrainProgress(), 0.0))
    updates = config.dsi.epochs * -(-len(train_rows) // config.dsi.batch_size)
    started = time.perf_counter()

    def save_epoch(done: TrainProgress) -> None:
        choice.after_epoch(dsi, done.epochs)
        _save_epoch(run_dir, dsi, optimizers, done, earlier_s + time.perf_counter() - started, choice.history)

    with update_bar("training", updates, completed=start.updates) as show:
        done = train(dsi, store, config.dsi, seed=config.seed, optimizers=optimizers, start=start,
                     log=run_dir.log_metrics, progress=show, on_epoch_end=save_epoch, device=config.device)
    elapsed = earlier_s + time.perf_counter() - started
    selected = choice.restore_best(dsi) if choice.active else done.epochs
    checkpoint = save_model(str(run_dir.checkpoint_path(MODEL)), dsi, {"data": config.data, "epoch": selected})
    result = {"run_dir": str(run_dir.path), "checkpoint": checkpoint, "env": store.env_id,
              "train_episodes": int(len(train_rows)), "updates": done.updates, "frames_seen": done.frames,
              "resumed_from_epoch": start.epochs if config.resume else None, "wall_time_s": elapsed,
              "frames_per_s": done.frames / max(elapsed, 1e-9), "selected_epoch": selected,
              "selection": "val_f1" if choice.active else "last", "validation": choice.history}
    run_dir.write_result(result)
    return result


def selects_on_validation(select: str, store: Any) -> bool:
    """Whether `select` (TrainConfig.select) picks the epoch on the validation successes' F1@2."""
    labelled = any(store.episode_critical(int(row)).size for row in store.rows("val"))
    if select == "val_f1" and not labelled:
        raise TrajlabError("select val_f1 needs validation episodes with ground-truth critical frames "
                           "(GridWorld successes); this data has none: use --select last")
    return select == "val_f1" or (select == "auto" and labelled)


class EpochChoice:
    """Scores each finished epoch on the validation episodes and keeps the best epoch's networks on disk.

    The history (epoch, validation F1@2) travels in each epoch checkpoint, so a resumed run chooses as an
    uninterrupted one would. Ties go to the later epoch."""

    def __init__(self, run_dir: RunDirectory, store: Any, active: bool, device: str = "cpu") -> None:
        self.run_dir, self.store, self.active, self.device = run_dir, store, active, device
        self.history: list[dict[str, float]] = []

    def best(self) -> dict[str, float] | None:
        return max(reversed(self.history), key=lambda row: row["validation_f1_at_2"], default=None)

    def after_epoch(self, dsi: Any, epoch: int) -> None:
        from trajlab.explain.dsi import save_model

        if not self.active:
            return
        f1 = max(validation_sweep(dsi, self.store, device=self.device).values())
        self.history.append({"epoch": epoch, "validation_f1_at_2": f1})
        if self.best()["epoch"] == epoch:
            save_model(str(self.run_dir.checkpoint_path(BEST)), dsi, {"epoch": epoch, "validation_f1_at_2": f1})

    def restore_best(self, dsi: Any) -> int:
        """Load the best epoch's networks into `dsi`; returns that epoch."""
        from trajlab.explain.dsi import load_model

        best = load_model(str(self.run_dir.checkpoint_path(BEST)))
        dsi.detector.load_state_dict(best.detector.state_dict())
        dsi.predictor.load_state_dict(best.predictor.state_dict())
        return int(self.best()["epoch"])


def _check_train_config(config: TrainConfig, store: Any) -> None:
    train_rows = store.rows("train")
    if len(train_rows) == 0 or len(np.unique(store.labels[train_rows])) < 2:
        raise TrajlabError(f"{config.data}: the training split needs episodes of at least two outcomes")
    numbers = [item.name for item in fields(DSIConfig) if type(item.default) in (int, float)]
    bad = [name for name in numbers if type(getattr(config.dsi, name)) not in (int, float)]
    if bad:  # e.g. --set dsi.batch_size=eight (float fields already refuse text when the config is read)
        raise TrajlabError(f"dsi.{bad[0]} must be a number, got {getattr(config.dsi, bad[0])!r}")
    if config.dsi.batch_size < 1 or config.dsi.epochs < 1:
        raise TrajlabError("batch_size and epochs must be at least 1")
    if config.dsi.reverse_target not in REVERSE_TARGETS:
        raise TrajlabError(f"dsi.reverse_target must be one of {', '.join(REVERSE_TARGETS)}, "
                           f"got {config.dsi.reverse_target!r}")
    if config.resume and config.overwrite:
        raise TrajlabError("--resume and --overwrite exclude each other")
    if config.select not in SELECTIONS:
        raise TrajlabError(f"select must be one of {', '.join(SELECTIONS)}, got {config.select!r}")


EPOCH_PREFIX = "epoch_"
_SAME_ON_RESUME = ("data", "model", "dsi", "seed", "select")


def _save_epoch(run_dir: RunDirectory, dsi: Any, optimizers: Any, done: TrainProgress, elapsed_s: float,
                validation: list[dict[str, float]]) -> None:
    """Networks, optimisers and torch's random state after an epoch; the previous epoch's file is then removed."""
    from trajlab.core.checkpoint import save_checkpoint
    from trajlab.training.resume import torch_random_states

    state = {"detector": dsi.detector.state_dict(), "predictor": dsi.predictor.state_dict(),
             "optimizers": [optim.state_dict() for optim in optimizers], "random": torch_random_states()}
    path = save_checkpoint(run_dir.checkpoint_path(f"{EPOCH_PREFIX}{done.epochs}"), state,
                           {"kind": "dsi_training", **vars(done), "elapsed_s": elapsed_s, "validation": validation})
    for old in run_dir.checkpoints.glob(f"{EPOCH_PREFIX}*.safetensors"):
        if old != path:
            old.unlink()
            old.with_suffix(".json").unlink(missing_ok=True)


def _resume_point(run_dir: RunDirectory, config: TrainConfig, dsi: Any, optimizers: Any, choice: EpochChoice
                  ) -> tuple[TrainProgress, float]:
    """Restore the last finished epoch of an interrupted run: (its progress, wall seconds spent before)."""
    from trajlab.core.checkpoint import load_checkpoint
    from trajlab.core.config import to_dict
    from trajlab.training.resume import restore_torch_random_states

    saved, given = run_dir.config(), to_dict(config)
    for name in _SAME_ON_RESUME:
        if saved.get(name) != given.get(name):
            raise TrajlabError(f"{run_dir.path}: cannot resume with a different {name} "
                               f"(run has {saved.get(name)!r}, given {given.get(name)!r})")
    latest = run_dir.latest_checkpoint(EPOCH_PREFIX)
    if latest is None:  # stopped before its first epoch ended: start from scratch
        run_dir.truncate_metrics(0)
        return TrainProgress(), 0.0
    state, meta = load_checkpoint(latest, device=config.device)
    dsi.detector.load_state_dict(state["detector"])
    dsi.predictor.load_state_dict(state["predictor"])
    for optim, optim_state in zip(optimizers, state["optimizers"]):
        optim.load_state_dict(optim_state)
    restore_torch_random_states(state["random"])
    choice.history = list(meta.get("validation", []))
    done = TrainProgress(int(meta["epochs"]), int(meta["updates"]), int(meta["frames"]))
    run_dir.truncate_metrics(done.updates)
    return done, float(meta["elapsed_s"])


# --- evaluate --------------------------------------------------------------------------------------------------
def run_evaluate(config: EvaluateConfig) -> dict[str, Any]:
    from trajlab.data.frames import FrameStore
    from trajlab.explain.dsi import check_fits, load_model
    from trajlab.report.sections.critical import plot_f1, write_critical_report

    dsi = load_model(str(model_file(config.model)))
    store = FrameStore.load(frames_file(config.data))
    check_fits(dsi, store, str(config.data))
    if len(store.rows("test")) == 0:
        raise TrajlabError(f"{config.data}: no test episodes to evaluate on")
    run_dir = RunDirectory.create(config.out, config, command="critical evaluate", overwrite=config.overwrite)
    started = time.perf_counter()
    result = {"run_dir": str(run_dir.path), "model": config.model, "data": config.data,
              **score_methods(dsi, store, saliency=config.saliency, seed=config.seed, device=config.device)}
    result["wall_time_s"] = time.perf_counter() - started
    # Pong has no ground-truth critical frames: only accuracy and fidelity are scored there
    result["plots"] = [str(plot_f1(result["methods"], run_dir.plots / "f1.png"))] if result["methods"] else []
    write_critical_report(run_dir.path / "report.html", result)
    run_dir.write_result(result)
    return result


def score_methods(dsi: Any, store: Any, *, saliency: bool, seed: int, device: str = "cpu") -> dict[str, Any]:
    """F1@T of DSI's mask, random scores and (optionally) gradient saliency, both protocols; predictor accuracy;
    EDGE-style fidelity of DSI's top frames against random frames."""
    from trajlab.explain.dsi import mask_scores, predict, saliency_scores
    from trajlab.explain.fidelity import fidelity
    from trajlab.explain.metrics import evaluate_scores, random_scores

    def positives(split: str) -> list[int]:
        return [int(row) for row in store.rows(split) if store.episode_critical(int(row)).size]

    test_rows, val_rows = positives("test"), positives("val")
    truths = {name: [store.episode_critical(row) for row in rows] for name, rows in
              (("test", test_rows), ("val", val_rows))}
    scorers = {"dsi": lambda rows: mask_scores(dsi, store, rows, device=device),
               "random": lambda rows: random_scores([store.lengths[row] for row in rows], seed + len(rows))}
    if saliency:
        scorers["saliency"] = lambda rows: saliency_scores(dsi, store, rows, device=device)
    methods = {}
    for name, scorer in scorers.items() if test_rows else ():
        val = (scorer(val_rows), truths["val"]) if val_rows else None
        methods[name] = evaluate_scores((scorer(test_rows), truths["test"]), val)
    all_test = [int(row) for row in store.rows("test")]
    accuracy = float((predict(dsi, store, all_test, device=device).argmax(1) == store.labels[all_test]).mean())
    kept = fidelity(dsi, store, all_test, mask_scores(dsi, store, all_test, device=device), seed=seed, device=device)
    # the accuracy of always answering the commonest outcome: what a predictor that has learned nothing scores
    majority = float(np.bincount(store.labels[all_test]).max() / max(len(all_test), 1))
    return {"methods": methods, "predictor_test_accuracy": accuracy, "test_majority_share": majority, "fidelity": kept,
            "scored_test_episodes": len(test_rows), "val_episodes": len(val_rows),
            "f1_at_2_paper": _f1_at_2(methods, "paper"), "f1_at_2_honest": _f1_at_2(methods, "honest")}


def _f1_at_2(methods: dict[str, Any], protocol: str) -> float | None:
    """DSI's F1@2 under a protocol (None where it was not measured: no ground truth, or no validation)."""
    return methods.get("dsi", {}).get(protocol, {}).get("T=2", {}).get("f1")


# --- explain ---------------------------------------------------------------------------------------------------
def run_explain(config: ExplainConfig) -> dict[str, Any]:
    from trajlab.data.frames import FrameStore
    from trajlab.explain.dsi import check_fits, load_model, mask_scores
    from trajlab.report.sections.critical import highlight_gif, plot_episode_scores

    dsi = load_model(str(model_file(config.model)))
    store = FrameStore.load(frames_file(config.data))
    check_fits(dsi, store, str(config.data))
    row = store.row_of(config.episode)
    if config.threshold is not None and not 0 <= config.threshold <= 1:
        raise TrajlabError("threshold must be in [0, 1]")
    run_dir = RunDirectory.create(config.out, config, command="critical explain", overwrite=config.overwrite)
    threshold = validation_threshold(dsi, store) if config.threshold is None else config.threshold
    scores = mask_scores(dsi, store, [row])[0]
    truth = store.episode_critical(row)
    gif = highlight_gif(store.episode_frames(row), scores, threshold,
                        run_dir.plots / f"episode_{config.episode}.gif", fps=config.fps)
    plot = plot_episode_scores(scores, truth, threshold, run_dir.plots / f"episode_{config.episode}_scores.png",
                               title=f"episode {config.episode} ({store.class_names[store.labels[row]]})")
    result = {"run_dir": str(run_dir.path), "episode": config.episode, "label": store.class_names[store.labels[row]],
              "length": int(store.lengths[row]), "scores": [float(s) for s in scores],
              "threshold": threshold, "critical_steps": [int(t) for t in np.flatnonzero(scores >= threshold)],
              "ground_truth_steps": [int(t) for t in truth], "gif": str(gif), "plots": [str(plot)]}
    run_dir.write_result(result)
    return result


def validation_threshold(dsi: Any, store: Any, tolerance: int = 2) -> float:
    """The sweep's threshold with the best honest F1 at `tolerance` on the validation successes (0.5 without)."""
    from trajlab.explain.metrics import best_threshold

    curve = validation_sweep(dsi, store, tolerance)
    return best_threshold(curve) if curve else 0.5


def validation_sweep(dsi: Any, store: Any, tolerance: int = 2, device: str = "cpu") -> dict[float, float]:
    """Honest F1 (%) at each threshold of the sweep on the validation successes ({} when there are none)."""
    from trajlab.explain.dsi import mask_scores
    from trajlab.explain.metrics import sweep

    rows = [int(row) for row in store.rows("val") if store.episode_critical(int(row)).size]
    if not rows:
        return {}
    return sweep(mask_scores(dsi, store, rows, device=device), [store.episode_critical(r) for r in rows], tolerance)


# --- the quickstart's step ----------------------------------------------------------------------------------------
QUICKSTART_SIZES = {"episodes": 240, "test_episodes": 60, "epochs": 10, "batch_size": 8}
"""The quickstart's cut of the quick preset (fits its few minutes; the full quick preset is the benchmark's).
Minibatches of 8 episodes instead of 32 give the same frames four times the updates, which the mask needs to rise
at this size (docs/benchmarks.md: F1@2 84.3, 59.3, 82.8, 84.2 in seeds 0-3, against 48.4 at 32 in seed 0; random
46-50)."""


def quickstart_step(out_dir: Path, *, seed: int) -> dict[str, Any]:
    """Data, training, evaluation and one explained episode at a reduced quick preset (a few minutes on 2
    cores; F1 here varies more between seeds than the full quick preset's): paths, figures and F1 for the report
    section."""
    from trajlab.core.seeding import threads_restored

    sizes, started = QUICKSTART_SIZES, time.perf_counter()
    out_dir = Path(out_dir)
    data = run_data(load_critical_config(DataConfig, "data", "quick", out=str(out_dir / "data"), seed=seed,
                                         episodes=sizes["episodes"], test_episodes=sizes["test_episodes"],
                                         overwrite=True))
    # one thread: at these frame and network sizes a second one costs more than it gives (1 thread 619 frames/s,
    # torch's default of 2 at 133 frames/s, beside other jobs on the 2 cores; docs/benchmarks.md)
    with threads_restored():  # the tours after this one keep their threads
        trained = run_train(load_critical_config(TrainConfig, "train", "quick", data=data["run_dir"], seed=seed,
                                                 out=str(out_dir / "train"), threads=1, overwrite=True,
                                                 dsi={"epochs": sizes["epochs"], "batch_size": sizes["batch_size"]}))
    evaluated = run_evaluate(load_critical_config(EvaluateConfig, "evaluate", "quick", model=trained["run_dir"],
                                                  data=data["run_dir"], out=str(out_dir / "evaluate"), seed=seed,
                                                  overwrite=True))
    from trajlab.data.frames import FrameStore

    store = FrameStore.load(data["frames_file"])
    episode = int(store.episode_ids[next(int(r) for r in store.rows("test") if store.labels[r] == 1)])
    explained = run_explain(load_critical_config(ExplainConfig, "explain", "quick", model=trained["run_dir"],
                                                 data=data["run_dir"], episode=episode,
                                                 out=str(out_dir / "explain"), overwrite=True))
    random_f1 = evaluated["methods"]["random"]["paper"]["T=2"]["f1"]
    sentences = [
        f"A return predictor and a per-frame mask (Deep State Identifier) trained on {sizes['episodes']} "
        f"MiniGrid key-corridor episode videos labelled only by success, at {trained['frames_per_s']:.0f} "
        "frames/s.",
        f"Against the labelled critical steps of held-out successes (key, door, ball) its mask scores F1@2 "
        f"{evaluated['f1_at_2_paper']:.1f} under the paper's protocol (its per-frame counting, threshold picked on "
        f"the test set) and {evaluated['f1_at_2_honest']:.1f} honestly (each labelled step hit or missed, "
        f"threshold picked on a validation split), against {random_f1:.1f} for random scores in the same run.",
    ]
    if evaluated["f1_at_2_paper"] < random_f1 + 5:
        sentences.append(f"At this tour's size ({sizes['epochs']} epochs on {sizes['episodes']} episodes) the mask "
                         "has not yet risen above 0 on the frames that decide the outcome; the full quick preset "
                         "(`trajlab critical train` at `--preset quick`, 10 epochs on 600 episodes) is what "
                         "docs/benchmarks.md measures.")
    return {"title": "Which moments decided an episode (trajlab critical)", "sentences": sentences,
            "plots": evaluated["plots"] + explained["plots"], "gifs": {f"episode {episode}": explained["gif"]},
            "report": str(Path(evaluated["run_dir"]) / "report.html"), "wall_time_s": time.perf_counter() - started,
            "data": data["run_dir"], "train": trained["run_dir"], "evaluate": evaluated["run_dir"],
            "explain": explained["run_dir"], "f1_at_2_paper": evaluated["f1_at_2_paper"],
            "f1_at_2_honest": evaluated["f1_at_2_honest"], "random_f1_at_2": random_f1,
            "train_frames_per_s": trained["frames_per_s"], "data_frames_per_s": data["frames_per_s"]}


# --- attack ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AttackRunConfig:
    """Attack the Pong victim at its critical steps (section `attack`)."""

    model: str
    """Run directory of `trajlab critical train` on Pong videos."""
    out: str
    """Run directory to write."""
    attack: AttackConfig = AttackConfig()
    """How many points and how many replaced actions."""
    pong: PongConfig = PongConfig()
    """The victim and the frames (must match the data the model was trained on)."""
    preset: str = "quick"
    """Preset: configs/critical/<preset>.yaml."""
    seed: int = 0
    """Seed of the points (each episode's reset and controller seeds derive from it)."""
    threads: int | None = None
    """Torch CPU threads (default: torch's choice)."""
    overwrite: bool = False
    """Replace a run already in `out`."""


def run_attack(config: AttackRunConfig) -> dict[str, Any]:
    from trajlab.core.progress import update_bar
    from trajlab.core.seeding import derive_seed
    from trajlab.explain.attack import attack_episode, summarise
    from trajlab.explain.dsi import load_model
    from trajlab.explain.pong import ENV_ID, frame_shape, make_env

    set_threads(config.threads)
    dsi = load_model(str(model_file(config.model)))
    if dsi.env_id != ENV_ID:
        raise TrajlabError(f"{config.model}: the attack needs a model trained on Pong videos, not {dsi.env_id!r}")
    if config.attack.episodes < 2 or config.attack.steps < 1:
        raise TrajlabError("the attack needs at least 2 episodes and 1 step")
    if frame_shape(config.pong) != tuple(dsi.frame_shape):
        raise TrajlabError(f"{config.model}: the model's frames are {tuple(dsi.frame_shape)}, the attack's pong "
                           f"settings give {frame_shape(config.pong)} (use the preset the data was collected with)")
    env = make_env(config.pong)
    run_dir = RunDirectory.create(config.out, config, command="critical attack", overwrite=config.overwrite)
    started, rows = time.perf_counter(), []
    with update_bar("attacking", config.attack.episodes, unit="episodes") as show:
        for index in range(config.attack.episodes):
            seed = derive_seed(config.seed, "attack-episode", index) % 2**31
            rows.append(attack_episode(env, dsi, seed, config.pong, config.attack.steps))
            show(index + 1)
    result = {"run_dir": str(run_dir.path), "model": config.model, **summarise(rows),
              "wall_time_s": time.perf_counter() - started}
    run_dir.write_result(result)
    return result


# --- improve ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImproveConfig:
    """PPO on a MiniGrid task with and without a bonus at the detector's critical frames (section `improve`)."""

    model: str
    """Run directory of `trajlab critical train` on GridWorld (minigrid-keycorridor) videos."""
    out: str
    """Run directory to write (result.json with every run's curve, plots/improve_success.png)."""
    learner: LearnerConfig = LearnerConfig()
    """The task, the bonus and the PPO settings."""
    arms: tuple[str, ...] = ARMS
    """Which arms to run, comma-separated: plain, critical, shuffled (the same bonus at random frames)."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """One run per arm and seed, comma-separated, e.g. 0,1,2 (a seed fixes the layouts, the initial weights and
    the minibatches)."""
    preset: str = "quick"
    """Preset: configs/critical/<preset>.yaml."""
    threads: int | None = None
    """Torch CPU threads (default: torch's choice)."""
    overwrite: bool = False
    """Replace a run already in `out`."""


def run_improve(config: ImproveConfig) -> dict[str, Any]:
    from trajlab.explain.dsi import load_model
    from trajlab.explain.gridworld import ENV_ID
    from trajlab.explain.improve import compare_arms, mean_curves, train_arm
    from trajlab.report.plots import plot_curves

    set_threads(config.threads)
    unknown = sorted(set(config.arms) - set(ARMS))
    if unknown or not config.arms or not config.seeds:
        raise TrajlabError(f"improve needs arms among {', '.join(ARMS)} and at least one seed (got arms "
                           f"{list(config.arms)}, seeds {list(config.seeds)})")
    dsi = load_model(str(model_file(config.model)))
    if dsi.env_id != ENV_ID:
        raise TrajlabError(f"{config.model}: policy improvement needs a model trained on GridWorld videos "
                           f"({ENV_ID}), not {dsi.env_id!r}")
    make_minigrid(config.learner.env, seed=0).close()  # an unknown task fails before anything is written
    run_dir = RunDirectory.create(config.out, config, command="critical improve", overwrite=config.overwrite)
    runs = [train_arm(config.learner, arm, seed, dsi) for seed in config.seeds for arm in config.arms]
    plot = plot_curves(mean_curves(runs), run_dir.plots / "improve_success.png",
                       title=f"{config.learner.env}: success rate (mean of {len(config.seeds)} seeds)",
                       xlabel="env steps", ylabel="success rate")
    result = {"run_dir": str(run_dir.path), "model": config.model, "env": config.learner.env,
              **compare_arms(runs), "plot": str(plot), "wall_time_s": sum(r["wall_time_s"] for r in runs),
              "runs": runs}
    run_dir.write_result(result)
    return result
