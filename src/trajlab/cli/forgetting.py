"""`trajlab forget`, `trajlab audit` and `trajlab poison` (trajlab.commands.forget, .audit, .poison)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from trajlab.cli import options
from trajlab.cli.options import JSON, NO_RESUME_HINT, ConfigDocs, emit, nested_overrides, on_interrupt, with_options

app = typer.Typer()

FORGET = ConfigDocs("trajlab.commands.forget", "ForgetConfig")
AUDIT = ConfigDocs("trajlab.commands.audit", "AuditRunConfig")
POISON = ConfigDocs("trajlab.commands.poison", "PoisonRunConfig")
AUDITOR = ConfigDocs("trajlab.audit.trajauditor", "AuditConfig")
POISONING = ConfigDocs("trajlab.poison.poison", "PoisonConfig")

FORGET_HEADLINE = ("evaluation.*.mean_return", "evaluation.return_ratio")
"""The environment returns of the original, unlearned and retrained agents (--evaluate)."""
POISON_HEADLINE = ("poisoned_agent.*_return", "methods.*.*_return", "methods.*.recovery*",
                   "methods.*.clean_retention", "methods.*.wall_time_s")
"""Per agent: normal and triggered return; per method also recovery, clean retention and wall time."""

SET_OPTION = typer.Option([], "--set", help="Override a preset value: SECTION.KEY=VALUE, e.g. finetune.steps=500.")
SHADOWS = typer.Option(None, "--shadows", help=AUDITOR["num_shadows"])
EXECUTOR = typer.Option(None, "--executor", help=AUDITOR["executor"])
CONTROLS = typer.Option(None, "--controls", help=AUDITOR["control_episodes"])
TEST = typer.Option("trajauditor", "--test", help=AUDIT["test"])
CANARIES = typer.Option(0, "--canaries", help=AUDIT["canaries"])


def _auditor_overrides(set_options: list[str], shadows: int | None, executor: str | None,
                       controls: int | None, test: str = "trajauditor") -> dict[str, Any]:
    """--set overrides with the auditor's own options merged into the chosen test's section (auditor for
    trajauditor, lira for lira)."""
    section = "lira" if test == "lira" else "auditor"
    return with_options(nested_overrides(set_options),
                        **{section: {"num_shadows": shadows, "executor": executor, "control_episodes": controls}})


def _episode_list(text: str | None) -> tuple[int, ...] | None:
    """'3,17,42' -> (3, 17, 42) (None when not given); non-integers are a user error."""
    if text is None:
        return None
    from trajlab.data.ids import parse_episode_ids

    return tuple(parse_episode_ids(text))


def _optional(path: Path | None) -> str | None:
    return None if path is None else str(path)


@app.command("forget")
def forget(
    agent: Path = typer.Option(..., "--agent", help=FORGET["agent"]),
    dataset: Path = typer.Option(..., "--dataset", help=FORGET["dataset"]),
    out: Path = options.out(FORGET),
    method: str = typer.Option("trajdeleter", "--method", help=FORGET["method"]),
    episodes: str | None = typer.Option(None, "--episodes", help=FORGET["episodes"]),
    episodes_file: Path | None = typer.Option(None, "--episodes-file", help=FORGET["episodes_file"]),
    fraction: float | None = typer.Option(None, "--fraction", help=FORGET["fraction"]),
    episodes_from: Path | None = typer.Option(None, "--episodes-from", help=FORGET["episodes_from"]),
    worst: int | None = typer.Option(None, "--worst", help=FORGET["worst"]),
    by: str = typer.Option("return", "--by", help=FORGET["by"]),
    seed: int = options.seed(FORGET),
    preset: str = options.preset(FORGET),
    audit: bool = typer.Option(False, "--audit", help=FORGET["audit"]),
    evaluate: bool = typer.Option(False, "--evaluate", help=FORGET["evaluate"]),
    retrain: bool = typer.Option(False, "--retrain", help=FORGET["compare_retrain"]),
    shadows: int | None = SHADOWS,
    executor: str | None = EXECUTOR,
    controls: int | None = CONTROLS,
    test: str = typer.Option("trajauditor", "--test", help=FORGET["test"]),
    canaries: int = typer.Option(0, "--canaries", help=FORGET["canaries"]),
    eval_episodes: int | None = typer.Option(None, "--eval-episodes", help=FORGET["eval_episodes"]),
    device: str = options.device(FORGET),
    threads: int | None = options.threads(FORGET),
    overwrite: bool = options.overwrite(FORGET),
    set_options: list[str] = SET_OPTION,
    as_json: bool = JSON,
) -> None:
    """Make a trained offline agent forget trajectories; writes a new run with a deletion certificate.

    Exactly one of --episodes, --episodes-file, --fraction and --episodes-from (with --worst) says what to
    forget. Bad requests (unknown ids, an empty set, the whole dataset, a dataset that does not match the agent)
    stop before anything is written.

    Examples:

      trajlab forget --agent runs/td3 --dataset hopper.hdf5 --episodes 3,17,42 --out runs/td3-forget

      trajlab forget --agent runs/td3 --dataset hopper.hdf5 --fraction 0.01 --audit --evaluate --out runs/f1

      trajlab forget --agent runs/iql --dataset hopper.hdf5 --method finetune --episodes-file ids.txt --out runs/f2

      trajlab forget --agent runs/td3 --dataset hopper.hdf5 --episodes 7 --set trajdeleter.balance=0.5 --out runs/f3

      trajlab forget --agent runs/pitod-td3 --dataset hopper.hdf5 --episodes-from runs/pitod-td3 --worst 2 --out runs/f4
    """
    from trajlab.commands.forget import load_forget_config, run

    overrides = _auditor_overrides(set_options, shadows, executor, controls, test)
    config = load_forget_config(
        preset, **with_options(overrides, **dict(
            agent=str(agent), dataset=str(dataset), out=str(out), method=method,
            episodes=_episode_list(episodes), episodes_file=_optional(episodes_file),
            fraction=fraction, episodes_from=_optional(episodes_from), worst=worst, by=by,
            seed=seed, audit=audit, test=test, canaries=canaries, evaluate=evaluate,
            compare_retrain=retrain,
            eval_episodes=eval_episodes, device=device, threads=threads, overwrite=overwrite)),
    )
    with on_interrupt(NO_RESUME_HINT):
        emit(run(config), as_json, headline=FORGET_HEADLINE)


@app.command("audit")
def audit(
    agent: Path = typer.Option(..., "--agent", help=AUDIT["agent"]),
    dataset: Path = typer.Option(..., "--dataset", help=AUDIT["dataset"]),
    episodes: str | None = typer.Option(None, "--episodes", help=AUDIT["episodes"]),
    episodes_file: Path | None = typer.Option(None, "--episodes-file", help=AUDIT["episodes_file"]),
    reference_dataset: Path | None = typer.Option(None, "--reference-dataset", help=AUDIT["reference_dataset"]),
    original: Path | None = typer.Option(None, "--original", help=AUDIT["original"]),
    shadows: int | None = SHADOWS,
    executor: str | None = EXECUTOR,
    controls: int | None = CONTROLS,
    test: str = TEST,
    canaries: int = CANARIES,
    preset: str = options.preset(AUDIT),
    out: Path | None = options.out(AUDIT, default=None),
    device: str = options.device(AUDIT),
    threads: int | None = options.threads(AUDIT),
    overwrite: bool = options.overwrite(AUDIT),
    set_options: list[str] = SET_OPTION,
    as_json: bool = JSON,
) -> None:
    """Judge, per trajectory, whether an agent was trained on it (TrajAuditor: shadows + Grubbs test; or --test
    lira: a likelihood-ratio test with shadows trained from scratch, TPR at 1%/0.1% FPR, AUC and a p-value).

    Examples:

      trajlab audit --agent runs/td3-forget --dataset hopper.hdf5 --episodes 3,17,42

      trajlab audit --agent runs/td3-forget --dataset hopper.hdf5 --episodes 3,17,42 --test lira --shadows 8

      trajlab audit --agent runs/td3 --dataset hopper.hdf5 --episodes-file ids.txt --shadows 5 --executor local --json
    """
    from trajlab.commands.audit import load_audit_config, run

    overrides = _auditor_overrides(set_options, shadows, executor, controls, test)
    config = load_audit_config(
        preset, **with_options(overrides, **dict(
            agent=str(agent), dataset=str(dataset), episodes=_episode_list(episodes),
            episodes_file=_optional(episodes_file), reference_dataset=_optional(reference_dataset),
            original=_optional(original), out=_optional(out), test=test, canaries=canaries, device=device,
            threads=threads, overwrite=overwrite)),
    )
    with on_interrupt(NO_RESUME_HINT):
        emit(run(config), as_json)


@app.command("poison")
def poison(
    dataset: Path = typer.Option(..., "--dataset", help=POISON["dataset"]),
    out: Path = options.out(POISON),
    algo: str | None = typer.Option(None, "--algo", help=POISON["algo"]),
    fraction: float | None = typer.Option(None, "--fraction", help=POISONING["fraction"]),
    train_steps: int | None = typer.Option(None, "--train-steps", help=POISON["train_steps"]),
    methods: str | None = typer.Option(None, "--methods", help=POISON["methods"]),
    seed: int = options.seed(POISON),
    preset: str = options.preset(POISON),
    device: str = options.device(POISON),
    threads: int | None = options.threads(POISON),
    overwrite: bool = options.overwrite(POISON),
    set_options: list[str] = SET_OPTION,
    as_json: bool = JSON,
) -> None:
    """Plant a backdoor (trigger + bad actions) in some trajectories, train an agent on them, measure its return
    with and without the trigger, then unlearn the poisoned trajectories with each method and measure recovery.

    Examples:

      trajlab poison --dataset hopper-mr.hdf5 --out runs/poison

      trajlab poison --dataset hopper-mr.hdf5 --algo iql --fraction 0.05 --methods trajdeleter,retrain --out runs/p2
    """
    from trajlab.commands.poison import load_poison_config, run

    overrides = with_options(nested_overrides(set_options), poison={"fraction": fraction})
    chosen = None if methods is None else tuple(name.strip() for name in methods.split(",") if name.strip())
    config = load_poison_config(
        preset, **with_options(overrides, **dict(
            dataset=str(dataset), out=str(out), algo=algo, train_steps=train_steps, methods=chosen, seed=seed,
            device=device, threads=threads, overwrite=overwrite)),
    )
    with on_interrupt(NO_RESUME_HINT):
        emit(run(config), as_json, headline=POISON_HEADLINE)
