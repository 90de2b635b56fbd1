"""`trajlab synth pretrain|finetune|sample|evaluate|attack|baseline|downstream` (trajlab.commands.synth and
trajlab.commands.synth_downstream)."""

from __future__ import annotations

from pathlib import Path

import typer

from trajlab.cli import options
from trajlab.cli.options import JSON, NO_RESUME_HINT, ConfigDocs, emit, nested_overrides, on_interrupt, with_options
from trajlab.core.errors import TrajlabError

app = typer.Typer(help="Differentially private synthetic transitions (PrivTranR): a diffusion model pre-trained "
                       "on public data and fine-tuned with DP-SGD on private data.", no_args_is_help=True)

PRETRAIN = ConfigDocs("trajlab.commands.synth", "PretrainConfig")
FINETUNE = ConfigDocs("trajlab.commands.synth", "FinetuneConfig")
SAMPLE = ConfigDocs("trajlab.commands.synth", "SampleConfig")
EVALUATE = ConfigDocs("trajlab.commands.synth", "EvaluateConfig")
DP = ConfigDocs("trajlab.privacy.training", "DPConfig")
ATTACK = ConfigDocs("trajlab.commands.synth", "AttackRunConfig")
ATTACKER = ConfigDocs("trajlab.privacy.membership", "AttackConfig")
DOWNSTREAM = ConfigDocs("trajlab.commands.synth_downstream", "DownstreamConfig")
BASELINE = ConfigDocs("trajlab.commands.synth", "BaselineConfig")
TABULAR = ConfigDocs("trajlab.privacy.baselines", "TabularOptions")
SET_OPTION = typer.Option([], "--set", help="Override a preset value: KEY=VALUE or SECTION.KEY=VALUE, e.g. "
                                            "diffusion.width=512 or dp.epochs=10.")


def _paths(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _floats(text: str | None) -> list[float] | None:
    """"0.05,0.5" as [0.05, 0.5] (None stays None: the preset's value)."""
    if text is None:
        return None
    try:
        return [float(part) for part in _paths(text)]
    except ValueError:
        raise TrajlabError(f"--sigma: expected comma-separated numbers, got {text!r}") from None


@app.command("pretrain")
def pretrain(
    public: str = typer.Option(..., "--public", help=PRETRAIN["public"]),
    out: Path = options.out(PRETRAIN),
    steps: int | None = typer.Option(None, "--steps", help=PRETRAIN["steps"]),
    preset: str = options.preset(PRETRAIN),
    seed: int = options.seed(PRETRAIN),
    threads: int | None = options.threads(PRETRAIN),
    overwrite: bool = options.overwrite(PRETRAIN),
    set_options: list[str] = SET_OPTION,
    as_json: bool = JSON,
) -> None:
    """Pre-train the transition diffusion model on public datasets (no privacy cost: the data is public).

    Examples:

      trajlab synth pretrain --public hopper-random.h5,hopper-expert.h5 --out runs/synth-pre

      trajlab synth pretrain --public public.h5 --out runs/synth-pre --preset paper --set diffusion.width=1024
    """
    from trajlab.commands.synth import PretrainConfig, load_synth_config, run_pretrain

    config = load_synth_config(PretrainConfig, "pretrain", preset, **with_options(
        nested_overrides(set_options), public=list(_paths(public)), out=str(out), steps=steps, seed=seed,
        threads=threads, overwrite=overwrite))
    with on_interrupt(NO_RESUME_HINT):
        emit(run_pretrain(config), as_json)


@app.command("finetune")
def finetune(
    pretrained: Path = typer.Argument(..., help=FINETUNE["pretrained"]),
    private: Path = typer.Option(..., "--private", help=FINETUNE["private"]),
    out: Path = options.out(FINETUNE),
    epsilon: float | None = typer.Option(None, "--epsilon", help=DP["epsilon"]),
    delta: float | None = typer.Option(None, "--delta", help=DP["delta"]),
    epochs: int | None = typer.Option(None, "--epochs", help=DP["epochs"]),
    batch_size: int | None = typer.Option(None, "--batch-size", help=DP["batch_size"]),
    private_training: bool = typer.Option(True, "--dp/--no-dp", help=FINETUNE["private_training"]),
    preset: str = options.preset(FINETUNE),
    seed: int = options.seed(FINETUNE),
    threads: int | None = options.threads(FINETUNE),
    overwrite: bool = options.overwrite(FINETUNE),
    set_options: list[str] = SET_OPTION,
    as_json: bool = JSON,
) -> None:
    """Fine-tune a pre-trained model on private data with DP-SGD (Opacus, RDP accountant, Poisson batches).

    80% of the private transitions train the model; the other 20% are held out as non-members (their ids are
    in RUN/members.npz). result.json reports the noise multiplier, sample rate, steps and the epsilon spent
    (RDP, with PRV as a cross-check).

    Examples:

      trajlab synth finetune runs/synth-pre --private private.h5 --epsilon 10 --delta 1e-6 --out runs/synth-dp

      trajlab synth finetune runs/synth-pre --private private.h5 --epsilon 1 --out runs/synth-eps1 --json

      trajlab synth finetune runs/synth-pre --private private.h5 --no-dp --epochs 50 --out runs/synth-nodp
    """
    from trajlab.commands.synth import FinetuneConfig, load_synth_config, run_finetune

    config = load_synth_config(FinetuneConfig, "finetune", preset, **with_options(
        nested_overrides(set_options), pretrained=str(pretrained), private=str(private), out=str(out), seed=seed,
        threads=threads, overwrite=overwrite, private_training=private_training,
        dp={"epsilon": epsilon, "delta": delta, "epochs": epochs, "batch_size": batch_size}))
    with on_interrupt(NO_RESUME_HINT):
        emit(run_finetune(config), as_json, headline=("privacy.*",))


@app.command("sample")
def sample(
    model: Path = typer.Argument(..., help=SAMPLE["model"]),
    out: Path = options.out(SAMPLE),
    num: int | None = typer.Option(None, "--n", help=SAMPLE["num"]),
    preset: str = options.preset(SAMPLE),
    seed: int = options.seed(SAMPLE),
    threads: int | None = options.threads(SAMPLE),
    overwrite: bool = options.overwrite(SAMPLE),
    as_json: bool = JSON,
) -> None:
    """Draw synthetic transitions into a dataset whose metadata carries (epsilon, delta) and the sources.

    Examples:

      trajlab synth sample runs/synth-dp --n 100000 --out synthetic.h5

      trajlab synth sample runs/synth-dp --n 1000000 --out synthetic.h5 --preset paper --seed 1
    """
    from trajlab.commands.synth import SampleConfig, load_synth_config, run_sample

    config = load_synth_config(SampleConfig, "sample", preset, model=str(model), out=str(out), num=num, seed=seed,
                               threads=threads, overwrite=overwrite)
    with on_interrupt(NO_RESUME_HINT):
        emit(run_sample(config), as_json)


@app.command("evaluate")
def evaluate(
    synthetic: Path = typer.Argument(..., help=EVALUATE["synthetic"]),
    real: Path = typer.Option(..., "--real", help=EVALUATE["real"]),
    out: Path = options.out(EVALUATE),
    max_rows: int | None = typer.Option(None, "--max-rows", help=EVALUATE["max_rows"]),
    preset: str = options.preset(EVALUATE),
    seed: int = options.seed(EVALUATE),
    overwrite: bool = options.overwrite(EVALUATE),
    as_json: bool = JSON,
) -> None:
    """Fidelity of synthetic transitions against real ones (sdmetrics), with a plot of the marginals.

    Examples:

      trajlab synth evaluate synthetic.h5 --real private.h5 --out runs/synth-eval
    """
    from trajlab.commands.synth import EvaluateConfig, load_synth_config, run_evaluate

    config = load_synth_config(EvaluateConfig, "evaluate", preset, synthetic=str(synthetic), real=str(real),
                               out=str(out), max_rows=max_rows, seed=seed, overwrite=overwrite)
    emit(run_evaluate(config), as_json, headline=("fidelity.column_*",))


@app.command("attack")
def attack(
    model: Path = typer.Argument(..., help=ATTACK["model"]),
    private: Path = typer.Option(..., "--private", help=ATTACK["private"]),
    out: Path = options.out(ATTACK),
    synthetic: Path | None = typer.Option(None, "--synthetic", help=ATTACK["synthetic"]),
    score: str | None = typer.Option(None, "--score", help=ATTACKER["score"]),
    sigmas: str | None = typer.Option(None, "--sigma", "--sigmas", help=ATTACKER["sigmas"] + " Comma-separated."),
    repeats: int | None = typer.Option(None, "--repeats", help=ATTACKER["repeats"]),
    use_ema: bool | None = typer.Option(None, "--ema/--raw", help=ATTACKER["use_ema"]),
    reference: Path | None = typer.Option(None, "--reference", help=ATTACK["reference"]),
    preset: str = options.preset(ATTACK),
    seed: int = options.seed(ATTACK),
    threads: int | None = options.threads(ATTACK),
    overwrite: bool = options.overwrite(ATTACK),
    as_json: bool = JSON,
) -> None:
    """Loss-based membership inference on a fine-tuned model: TPR at 10/1/0.1% FPR and AUC.

    Members are the run's fine-tuning transitions, non-members the ones it held out (RUN/members.npz). The
    default score calibrates each row's loss by the public pre-trained model the run started from (the
    target's loss minus the reference's); --score loss is the uncalibrated attack. With --synthetic, also how
    close released samples come to members compared with non-members.

    Examples:

      trajlab synth attack runs/synth-dp --private private.h5 --out runs/synth-attack

      trajlab synth attack runs/synth-dp --private private.h5 --score loss --sigma 0.5 --repeats 64 --out runs/a

      trajlab synth attack runs/synth-dp --private private.h5 --synthetic synthetic.h5 --out runs/synth-attack
    """
    from trajlab.commands.synth import AttackRunConfig, load_synth_config, run_attack

    config = load_synth_config(AttackRunConfig, "attack", preset, model=str(model), private=str(private),
                               out=str(out), synthetic=None if synthetic is None else str(synthetic), seed=seed,
                               threads=threads, overwrite=overwrite,
                               reference=None if reference is None else str(reference),
                               attack={"score": score, "sigmas": _floats(sigmas), "repeats": repeats,
                                       "use_ema": use_ema})
    emit(run_attack(config), as_json, headline=("attack.*", "distance_to_closest_record.*"))


@app.command("baseline")
def baseline(
    method: str = typer.Option(..., "--method", help=BASELINE["method"]),
    private: Path = typer.Option(..., "--private", help=BASELINE["private"]),
    public: str = typer.Option(..., "--public", help=BASELINE["public"]),
    out: Path = options.out(BASELINE),
    epsilon: float | None = typer.Option(None, "--epsilon", help=BASELINE["epsilon"]),
    delta: float | None = typer.Option(None, "--delta", help=BASELINE["delta"]),
    num: int | None = typer.Option(None, "--n", help=BASELINE["num"]),
    bins: int | None = typer.Option(None, "--bins", help=BASELINE["bins"]),
    binning: str | None = typer.Option(None, "--binning", help=BASELINE["binning"]),
    aim_rounds: int | None = typer.Option(None, "--aim-rounds", help=TABULAR["aim_rounds"]),
    preset: str = options.preset(BASELINE),
    seed: int = options.seed(BASELINE),
    threads: int | None = options.threads(BASELINE),
    overwrite: bool = options.overwrite(BASELINE),
    as_json: bool = JSON,
) -> None:
    """Release transitions from a DP tabular synthesizer (MST or AIM, smartnoise-synth) as the diffusion
    model's baseline: each column binned with edges from the public data (no privacy cost), the synthesizer fitted
    on the private members at (epsilon, delta), samples mapped back uniformly within their bins. Needs the
    optional smartnoise-synth install (`make synth-baselines`).

    Examples:

      trajlab synth baseline --method mst --private private.h5 --public public.h5 --epsilon 10 --out mst.h5

      trajlab synth baseline --method aim --private private.h5 --public a.h5,b.h5 --aim-rounds 20 --out aim.h5
    """
    from trajlab.commands.synth import BaselineConfig, load_synth_config, run_baseline

    config = load_synth_config(BaselineConfig, "baseline", preset, method=method, private=str(private),
                               public=list(_paths(public)), out=str(out), epsilon=epsilon, delta=delta, num=num,
                               bins=bins, binning=binning, seed=seed, threads=threads, overwrite=overwrite,
                               options={"aim_rounds": aim_rounds})
    with on_interrupt(NO_RESUME_HINT):
        emit(run_baseline(config), as_json)


@app.command("downstream")
def downstream(
    synthetic: str = typer.Argument(..., help=DOWNSTREAM["synthetic"]),
    real: Path = typer.Option(..., "--real", help=DOWNSTREAM["real"]),
    out: Path = options.out(DOWNSTREAM),
    algos: str | None = typer.Option(None, "--algos", help=DOWNSTREAM["algos"]),
    steps: int | None = typer.Option(None, "--steps", help=DOWNSTREAM["steps"]),
    seeds: str | None = typer.Option(None, "--seeds", help=DOWNSTREAM["seeds"]),
    eval_episodes: int | None = typer.Option(None, "--eval-episodes", help=DOWNSTREAM["eval_episodes"]),
    env: str | None = typer.Option(None, "--env", help=DOWNSTREAM["env_id"]),
    preset: str = options.preset(DOWNSTREAM),
    device: str = options.device(DOWNSTREAM),
    threads: int | None = options.threads(DOWNSTREAM),
    overwrite: bool = options.overwrite(DOWNSTREAM),
    as_json: bool = JSON,
) -> None:
    """Train offline agents on the real data and on each synthetic dataset, evaluate them in the environment,
    and report each synthetic dataset's return as a share of the real data's.

    Examples:

      trajlab synth downstream synthetic.h5 --real private.h5 --out runs/synth-rl

      trajlab synth downstream nondp.h5,eps1.h5,eps10.h5 --real private.h5 --algos iql --seeds 0,1,2 --out runs/rl
    """
    from trajlab.commands.synth import load_synth_config
    from trajlab.commands.synth_downstream import DownstreamConfig, run_downstream

    config = load_synth_config(
        DownstreamConfig, "downstream", preset, synthetic=_paths(synthetic), real=str(real), out=str(out),
        algos=None if algos is None else _paths(algos), steps=steps, eval_episodes=eval_episodes, env_id=env,
        seeds=None if seeds is None else tuple(int(seed) for seed in _paths(seeds)), device=device,
        threads=threads, overwrite=overwrite)
    with on_interrupt(NO_RESUME_HINT):
        emit(run_downstream(config), as_json, headline=("summary.*.*",))
