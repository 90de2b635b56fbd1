"""`trajlab quickstart`: generate a small dataset (cached), train an offline agent, evaluate it, forget 1% of
its trajectories with TrajDeleter, audit them with a membership test whose error rates are measured (LiRA by
default: TrajAuditor flags kept trajectories as often as forgotten ones at this scale), then run each system's
quick tour (`TOURS`), and write one report.html that says in words what was tested and what the verdict means.

Every step is an ordinary trajlab run (`data generate`, `train`, `forget`), so the quickstart's folder holds
run directories a user can inspect and rerun with the CLI.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trajlab.core.config import load_preset, replace, to_dict
from trajlab.core.io import write_json_atomic, write_yaml_atomic


@dataclass(frozen=True)
class QuickstartConfig:
    """The quickstart's choices (configs/quickstart/default.yaml)."""

    env_id: str = "Hopper-v5"
    """Environment of the generated dataset."""
    quality: str = "medium-replay"
    """Dataset quality to generate (random, medium, expert, medium-replay, medium-expert)."""
    data_preset: str = "quick"
    """Preset of `trajlab data generate`."""
    algo: str = "td3_bc"
    """Offline algorithm to train."""
    algo_preset: str = "quick"
    """Preset of the algorithm (configs/offline/<algo>/)."""
    train_steps: int = 20_000
    """Gradient updates of the offline agent."""
    eval_every: int = 4_000
    """Evaluate the agent in the environment every this many updates."""
    eval_episodes: int = 5
    """Episodes per evaluation."""
    forget_preset: str = "quick"
    """Preset of `trajlab forget` (TrajDeleter's and the membership tests' settings)."""
    forget_test: str = "lira"
    """Membership test of the forgetting step: lira (likelihood ratio, shadows trained from scratch, calibrated
    error rates) or trajauditor (the paper's test)."""
    audit_statistic: str = "action_error"
    """LiRA's per-trajectory statistic. At this scale (8 shadows x 20k updates of quick TD3+BC on the quick Hopper
    data) action_error separates members from non-members (calibration AUC 0.75, TPR 14% at 1% FPR) and the
    forget preset's critic_loss does not (AUC 0.52): benchmarks/results/lira_statistics_quick.json."""
    audit_controls: int | None = 40
    """Control trajectories (still trained on) scored by LiRA beside the forgotten ones. Scoring costs no shadow,
    and with as many controls as forgotten trajectories (4) a test of AUC 0.75 cannot show that it sees members
    (measured: control p = 0.45), so its verdict was 'not specific' whatever the deletion did."""
    audit_executor: str = "local"
    """How the membership test's shadows train: local (a process pool of one-thread jobs, two at a time: the
    fastest layout for small networks on 2 cores, trajlab.execution), in-process or ray."""
    gif_steps: int = 300
    """Environment steps shown in the GIF of the trained agent."""
    tours: tuple[str, ...] = ("influence", "synth", "safe", "critical")
    """The other systems' quick steps after the forgetting story, in order, comma-separated on the command line
    (known: the keys of TOURS; empty: the forgetting story alone)."""
    seed: int = 0
    """Seed of every step."""
    out: str = "runs/quickstart"
    """Folder of the quickstart's runs and report (replaced when the quickstart runs again)."""
    cache: str | None = None
    """Dataset cache folder (default: $TRAJLAB_CACHE or ~/.cache/trajlab)."""


TOURS = {
    "influence": "trajlab.commands.influence",
    "synth": "trajlab.commands.synth",
    "safe": "trajlab.commands.safe",
    "critical": "trajlab.commands.critical",
}
"""Tour name -> the command module whose `quickstart_step(out_dir, *, seed)` runs that system at its quick
preset and returns {"title", "sentences", "plots", "report", "wall_time_s", ...} for the report (and "gifs",
name -> path, where it records any)."""
WITH_DATASET = ("synth",)
"""Tours whose step also takes the quickstart's dataset (`dataset=`)."""


def check_tours(tours: tuple[str, ...]) -> None:
    from trajlab.core.errors import TrajlabError

    unknown = [name for name in tours if name not in TOURS]
    if unknown:
        raise TrajlabError(f"unknown quickstart tour(s) {', '.join(unknown)}; known: {', '.join(TOURS)}")


def cache_folder(config: QuickstartConfig) -> Path:
    base = config.cache or os.environ.get("TRAJLAB_CACHE") or Path.home() / ".cache" / "trajlab"
    return Path(base) / "datasets"


def run(config: QuickstartConfig, *, say: Any = print) -> dict[str, Any]:
    """Run the whole story; `say` receives one line per step (the CLI prints them)."""
    import shutil

    from trajlab.core.errors import TrajlabError

    if config.forget_test not in ("lira", "trajauditor"):  # before minutes of training, not after
        raise TrajlabError(f"unknown membership test {config.forget_test!r}; known: lira, trajauditor")
    check_tours(config.tours)
    total = 5 + len(config.tours)
    out = Path(config.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    write_yaml_atomic(out / "config.yaml", {"command": "quickstart", **to_dict(config)})
    started = time.perf_counter()
    dataset_path = _dataset(config, say)
    say(f"[2/{total}] training {config.algo} for {config.train_steps} updates on {dataset_path.name}")
    training = _train(config, dataset_path, out / "agent")
    say(f"[3/{total}] evaluated: mean return {training['eval_mean_return']:.1f}; recording a GIF")
    gif = _gif(config, out)
    say(f"[4/{total}] forgetting 1% of the trajectories with TrajDeleter and auditing them ({config.forget_test})")
    from trajlab.commands.forget import quickstart_step

    forgetting = quickstart_step(out / "agent", dataset_path, out / "forget", seed=config.seed,
                                 preset=config.forget_preset, test=config.forget_test,
                                 **_audit_overrides(config))
    tours = _tours(config, out, dataset_path, say, first=5, total=total)
    say(f"[{total}/{total}] writing the report")
    result = _summary(config, dataset_path, training, forgetting, time.perf_counter() - started)
    result["tours"] = tours
    write_json_atomic(out / "result.json", result)
    _report(config, out, result, forgetting, gif, training["updates_per_s"])
    from trajlab.report.sections.quickstart import audit_sentences

    for sentence in audit_sentences(result, result["forgotten_episodes"]):
        say(sentence)
    say(f"done in {result['wall_time_s'] / 60:.1f} min: open {out / 'report.html'} (the forget run's full "
        f"report: {result['forget_report']})")
    return result


def _tours(config: QuickstartConfig, out: Path, dataset: Path, say: Any, *, first: int,
           total: int) -> dict[str, dict[str, Any]]:
    """Run every tour into out/<name>; their results by name."""
    import importlib

    done = {}
    for index, name in enumerate(config.tours, start=first):
        say(f"[{index}/{total}] {name}: the quick preset of trajlab {name}")
        extra = {"dataset": dataset} if name in WITH_DATASET else {}
        done[name] = importlib.import_module(TOURS[name]).quickstart_step(out / name, seed=config.seed, **extra)
        for sentence in done[name]["sentences"]:
            say(f"    {sentence}")
    return done


def _audit_overrides(config: QuickstartConfig) -> dict[str, Any]:
    """Changes to the forget preset's settings of the chosen test."""
    if config.forget_test == "lira":
        return {"lira": {"executor": config.audit_executor, "statistic": config.audit_statistic,
                         "control_episodes": config.audit_controls}}
    return {"auditor": {"executor": config.audit_executor}}


def _dataset(config: QuickstartConfig, say: Any) -> Path:
    from trajlab.commands.generate import GenerateConfig
    from trajlab.commands.generate import run as generate

    path = cache_folder(config) / f"{config.env_id}-{config.quality}-{config.data_preset}-seed{config.seed}.hdf5"
    if path.is_file():
        say(f"[1/5] using the cached dataset {path}")
        return path
    say(f"[1/5] generating a {config.quality} {config.env_id} dataset (cached in {path.parent}; minutes, once)")
    generate_config = load_preset(GenerateConfig, "data", config.data_preset, env_id=config.env_id,
                                  quality=config.quality, out=str(path), seed=config.seed)
    generate(replace(generate_config, preset=config.data_preset))
    return path


def _train(config: QuickstartConfig, dataset_path: Path, run_path: Path) -> dict[str, Any]:
    from trajlab.training.offline import TrainConfig
    from trajlab.training.offline import run as train

    return train(TrainConfig(
        algo=config.algo, dataset=str(dataset_path), steps=config.train_steps, preset=config.algo_preset,
        seed=config.seed, eval_every=config.eval_every, eval_episodes=config.eval_episodes,
        log_every=max(1, config.eval_every // 4), checkpoint_every=config.train_steps, out=str(run_path),
    ))


def _gif(config: QuickstartConfig, out: Path) -> Path:
    from trajlab.algos.base import load_agent
    from trajlab.eval import capture_frames
    from trajlab.report import save_gif

    agent = load_agent(out / "agent" / "checkpoints" / "final.safetensors")
    frames = capture_frames(agent, config.env_id, seed=config.seed, max_steps=config.gif_steps, render_every=2)
    return save_gif(frames, out / "plots" / "agent.gif", fps=25)


def _summary(config: QuickstartConfig, dataset_path: Path, training: dict[str, Any], forgetting: dict[str, Any],
             wall_time: float) -> dict[str, Any]:
    """result.json: eval_normalized_score is D4RL's, eval_behaviour_normalized_score the score against the
    dataset's behaviour policies; the audit keys (report.sections.quickstart.AUDIT_KEYS) are always present."""
    import json

    from trajlab.report.sections.quickstart import audit_summary

    certificate = json.loads(Path(forgetting["certificate"]).read_text())
    return {
        "env_id": config.env_id, "dataset": str(dataset_path), "algo": config.algo,
        "train_steps": config.train_steps, "eval_mean_return": training["eval_mean_return"],
        "eval_normalized_score": training["eval_normalized_score"],
        "eval_behaviour_normalized_score": training["eval_behaviour_normalized_score"],
        "forget_run": forgetting["run_dir"], "forget_report": str(Path(forgetting["run_dir"]) / "report.html"),
        "forgotten_episodes": forgetting["num_forgotten_episodes"],
        **audit_summary(forgetting, certificate),
        "forget_wall_time_s": forgetting["wall_time_s"], "wall_time_s": wall_time,
    }


def _report(config: QuickstartConfig, out: Path, result: dict[str, Any], forgetting: dict[str, Any],
            gif: Path, updates_per_s: float | None) -> Path:
    from trajlab.report import Report, plot_curves, read_metrics
    from trajlab.report.sections.quickstart import audit_sentences, score_rows

    metrics = read_metrics(out / "agent" / "metrics.csv")
    curve = plot_curves({"evaluation return": (metrics["step"], metrics["eval_return"])},
                        out / "plots" / "learning_curve.png", title=f"{config.algo} on {config.env_id}",
                        xlabel="gradient update", ylabel="mean return")
    report = Report(f"trajlab quickstart: {config.algo} on {config.env_id} {config.quality}")
    report.paragraph("A small dataset was generated with a SAC behaviour policy, an offline agent was trained on "
                     "it, 1% of its trajectories were forgotten with TrajDeleter, and a membership test checked "
                     "whether the unlearned agent still carries them.")
    report.heading("Training").key_values({"dataset": result["dataset"], "updates": config.train_steps,
                                           "updates per second": updates_per_s, **score_rows(result)})
    report.paragraph("Normalised scores are 100 x (return - random) / (expert - random). The D4RL score uses "
                     "D4RL's published random and expert returns (for the v5 MuJoCo tasks the same numbers as "
                     "D4RL's v2 tasks), the one RL papers report; the score vs the dataset's behaviour policies "
                     "uses the random and SAC expert returns measured when this dataset was generated, and the "
                     "quick preset's expert is far weaker than D4RL's, so that score runs much higher.")
    report.image(curve, "Evaluation return during training")
    report.image(gif, "The trained agent")
    report.heading("Forgetting and auditing")
    for sentence in audit_sentences(result, result["forgotten_episodes"]):
        report.paragraph(sentence)
    report.link("the forget run's report", "forget/report.html",
                before="Every trajectory's score, the ROC curve and the deletion certificate: ")
    for plot in forgetting.get("plots", []):
        report.image(plot, Path(plot).stem.replace("_", " "))
    for name, tour in result["tours"].items():
        report.heading(tour["title"])
        for sentence in tour["sentences"]:
            report.paragraph(sentence)
        if tour.get("report"):
            report.link(f"the {name} run's report", str(Path(tour["report"]).relative_to(out)),
                        before="Every number and plot: ")
        for plot in tour["plots"]:
            report.image(plot, Path(plot).stem.replace("_", " "))
        for name_of_gif, gif_path in (tour.get("gifs") or {}).items():
            report.image(gif_path, name_of_gif)
    return report.write(out / "report.html")
