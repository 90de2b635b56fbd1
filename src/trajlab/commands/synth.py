"""`trajlab synth pretrain|finetune|sample|evaluate|attack|baseline`: PrivTranR's DP synthetic transitions as commands.

    trajlab synth pretrain --public D1.h5,D2.h5 --out RUN
    trajlab synth finetune RUN --private D.h5 --epsilon 10 --delta 1e-6 --out RUN2
    trajlab synth sample RUN2 --n 100000 --out DATA.h5
    trajlab synth evaluate DATA.h5 --real D.h5 --out EVAL
    trajlab synth attack RUN2 --private D.h5 --out ATTACK
    trajlab synth baseline --method mst --private D.h5 --public D1.h5,D2.h5 --epsilon 10 --out DATA.h5

Each checks its request (files, spaces, budget, sizes) before it writes anything. Presets live in
configs/synth/<preset>.yaml, one section per command.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trajlab.core.config import load_nested_preset
from trajlab.core.errors import TrajlabError
from trajlab.core.io import atomic_path
from trajlab.core.rundir import RunDirectory
from trajlab.core.seeding import seed_everything, set_threads
from trajlab.data.dataset import TransitionDataset
from trajlab.privacy.baselines import TabularOptions
from trajlab.privacy.diffusion import DiffusionConfig
from trajlab.privacy.membership import AttackConfig
from trajlab.privacy.training import DPConfig, OptimConfig

MEMBERS_FILE = "members.npz"
MODEL = "final"


@dataclass(frozen=True)
class PretrainConfig:
    """Non-DP pre-training on public data (presets: configs/synth/<preset>.yaml, section `pretrain`)."""

    public: tuple[str, ...]
    """Public datasets (trajlab HDF5), comma-separated; their statistics standardise every later model."""
    out: str
    """Run directory to write."""
    preset: str = "quick"
    """Preset: configs/synth/<preset>.yaml (quick: CPU minutes; bench: quick with 100 DP epochs; paper:
    PrivTranR's settings)."""
    steps: int = 100_000
    """Pre-training steps; 0 writes the randomly initialised model with the public data's standardisation, the
    start of the DP-without-pre-training baseline (fine-tune it with `synth finetune` as any pre-trained run)."""
    batch_size: int = 256
    """Minibatch size (SynthER: 1,024, or 256 under 800k rows)."""
    diffusion: DiffusionConfig = DiffusionConfig()
    """The denoiser and sampler."""
    optim: OptimConfig = OptimConfig()
    """Adam, schedule, clipping and EMA."""
    seed: int = 0
    """Seed of initialisation, batches and noise."""
    threads: int | None = None
    """Torch CPU threads (default: torch's choice)."""
    log_every: int = 100
    """Write the mean loss to metrics.csv every this many steps."""
    overwrite: bool = False
    """Replace a run already in `out`."""


@dataclass(frozen=True)
class FinetuneConfig:
    """DP-SGD fine-tuning of a pre-trained model on private data (section `finetune`)."""

    pretrained: str
    """Run directory of `trajlab synth pretrain` (or its checkpoint file)."""
    private: str
    """The private dataset (trajlab HDF5), in the public data's spaces."""
    out: str
    """Run directory to write."""
    preset: str = "quick"
    """Preset: configs/synth/<preset>.yaml (quick: CPU minutes; bench: quick with 100 DP epochs; paper:
    PrivTranR's settings)."""
    dp: DPConfig = DPConfig()
    """The privacy budget and DP-SGD settings."""
    private_training: bool = True
    """False: fine-tune without privacy (same member split, batch size and epochs; no per-sample clip, no noise,
    no guarantee): the reference that membership attacks and downstream comparisons measure DP against."""
    optim: OptimConfig = OptimConfig()
    """Adam, schedule and EMA (the per-sample clip replaces the global one)."""
    seed: int = 0
    """Seed of the member split, Poisson batches, DP noise and diffusion noise."""
    threads: int | None = None
    """Torch CPU threads (default: torch's choice)."""
    log_every: int = 10
    """Write the mean loss to metrics.csv every this many steps."""
    overwrite: bool = False
    """Replace a run already in `out`."""


@dataclass(frozen=True)
class SampleConfig:
    """Draw synthetic transitions from a model (section `sample`)."""

    model: str
    """Run directory of `trajlab synth finetune` or `pretrain` (or its checkpoint file)."""
    out: str
    """The synthetic dataset file to write (trajlab HDF5)."""
    num: int = 100_000
    """Transitions to draw (rows that come out NaN are dropped and counted)."""
    preset: str = "quick"
    """Preset: configs/synth/<preset>.yaml."""
    chunk: int = 10_000
    """Transitions denoised at once (bounds memory)."""
    seed: int = 0
    """Seed of the sampler."""
    threads: int | None = None
    """Torch CPU threads (default: torch's choice)."""
    overwrite: bool = False
    """Replace the file in `out`."""


@dataclass(frozen=True)
class EvaluateConfig:
    """Fidelity of synthetic against real transitions (section `evaluate`)."""

    synthetic: str
    """The synthetic dataset (from `trajlab synth sample`)."""
    real: str
    """The real dataset to compare with (e.g. the private data's held-out part, or all of it)."""
    out: str
    """Run directory to write (result.json, plots/marginals.png, report.html)."""
    preset: str = "quick"
    """Preset: configs/synth/<preset>.yaml."""
    max_rows: int = 5000
    """Rows of each side compared (a random subset above this; sdmetrics is quadratic in columns, linear here)."""
    seed: int = 0
    """Seed of the row subsets."""
    overwrite: bool = False
    """Replace a run already in `out`."""


def load_synth_config(cls: type, section: str, preset: str, **values: Any) -> Any:
    """`cls` from configs/synth/<preset>.yaml's `section`, with non-None `values` on top (nested: key by key)."""
    return load_nested_preset(cls, "synth", preset, values, section=section)


# --- pretrain --------------------------------------------------------------------------------------------------
def run_pretrain(config: PretrainConfig) -> dict[str, Any]:
    from trajlab.privacy.training import new_model, pretrain, save_model

    set_threads(config.threads)
    if config.steps < 0 or config.batch_size < 1:
        raise TrajlabError("steps must be at least 0 and batch_size at least 1")
    public = [TransitionDataset.load(path) for path in config.public]
    seed_everything(config.seed)
    bundle = new_model(public, config.diffusion, config.seed)
    run_dir = RunDirectory.create(config.out, config, command="synth pretrain", overwrite=config.overwrite)
    started = time.perf_counter()
    losses = pretrain(bundle, public, steps=config.steps, batch_size=config.batch_size, optim=config.optim,
                      seed=config.seed, log=run_dir.log_metrics, log_every=config.log_every)
    bundle.info = {"env_id": public[0].metadata.get("env_id"), "public_sources": list(config.public),
                   "private_sources": [], "privacy": None}
    checkpoint = save_model(run_dir.checkpoint_path(MODEL), bundle)
    result = {"run_dir": str(run_dir.path), "checkpoint": str(checkpoint), "steps": config.steps,
              "final_loss": float(np.mean(losses[-config.log_every:])) if losses else None,
              "public_sources": list(config.public),
              "public_transitions": int(sum(len(ds) for ds in public)),
              "wall_time_s": time.perf_counter() - started}
    run_dir.write_result(result)
    return result


# --- finetune --------------------------------------------------------------------------------------------------
def run_finetune(config: FinetuneConfig) -> dict[str, Any]:
    from trajlab.privacy.training import check_dp_request, check_same_space, load_model, split_members

    set_threads(config.threads)
    bundle = load_model(_model_checkpoint(config.pretrained))
    private = TransitionDataset.load(config.private)
    check_same_space(bundle, private)
    split = split_members(private, config.dp.member_fraction, config.seed)
    check_dp_request(config.dp, len(split.members), private=config.private_training)
    run_dir = RunDirectory.create(config.out, config, command="synth finetune", overwrite=config.overwrite)
    _write_members(run_dir.path / MEMBERS_FILE, split.members, split.non_members)
    return _finetune(config, bundle, private, split, run_dir)


def _finetune(config: FinetuneConfig, bundle: Any, private: TransitionDataset, split: Any,
              run_dir: RunDirectory) -> dict[str, Any]:
    from trajlab.privacy.training import finetune_dp, finetune_plain, save_model

    seed_everything(config.seed)
    started = time.perf_counter()
    members = private.subset_transitions(split.members)
    settings = {"seed": config.seed, "log": run_dir.log_metrics, "log_every": config.log_every}
    if config.private_training:
        report, losses = finetune_dp(bundle, members, config.dp, config.optim, **settings)
        privacy = report.to_dict()
    else:
        losses, privacy = finetune_plain(bundle, members, config.dp, config.optim, **settings), None
    bundle.info = {**bundle.info, "privacy": privacy, "private_sources": [config.private],
                   "pretrained": config.pretrained}
    checkpoint = save_model(run_dir.checkpoint_path(MODEL), bundle)
    wall_time = time.perf_counter() - started
    result = {"run_dir": str(run_dir.path), "checkpoint": str(checkpoint), "privacy": privacy,
              "members": len(split.members), "non_members": len(split.non_members),
              "members_file": str(run_dir.path / MEMBERS_FILE), "pretrained": config.pretrained,
              "private_source": config.private, "public_sources": bundle.info.get("public_sources", []),
              "final_loss": float(np.mean(losses[-config.log_every:])) if losses else None,
              "steps": len(losses), "steps_per_s": len(losses) / wall_time if wall_time > 0 else None,
              "wall_time_s": wall_time}
    run_dir.write_result(result)
    return result


def _write_members(path: Path, members: np.ndarray, non_members: np.ndarray) -> None:
    """The member and held-out transition ids (what a membership-inference test needs), as plain arrays."""
    with atomic_path(path) as temp, open(temp, "wb") as handle:
        np.savez(handle, member_transition_ids=members, non_member_transition_ids=non_members)


def read_members(run: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(member, non-member) transition ids of a finetune run."""
    path = Path(run) / MEMBERS_FILE
    if not path.is_file():
        raise TrajlabError(f"{run}: no {MEMBERS_FILE} (not a `trajlab synth finetune` run)")
    with np.load(path, allow_pickle=False) as arrays:
        return arrays["member_transition_ids"], arrays["non_member_transition_ids"]


def _model_checkpoint(source: str) -> Path:
    path = Path(source)
    if path.is_dir():
        path = path / "checkpoints" / f"{MODEL}.safetensors"
    if not path.is_file():
        raise TrajlabError(f"{source}: no synth model (expected a run directory with checkpoints/{MODEL}.safetensors)")
    return path


# --- sample ----------------------------------------------------------------------------------------------------
def run_sample(config: SampleConfig) -> dict[str, Any]:
    from trajlab.privacy.synthesis import sample_transitions
    from trajlab.privacy.training import load_model

    set_threads(config.threads)
    bundle = load_model(_model_checkpoint(config.model))
    target = Path(config.out)
    if target.exists() and not config.overwrite:
        raise TrajlabError(f"{target}: file exists (use --overwrite or another --out)")
    if config.num < 1 or config.chunk < 1:
        raise TrajlabError("the number of samples and the chunk size must be at least 1")
    started = time.perf_counter()
    sampled = sample_transitions(bundle, config.num, seed=config.seed, chunk=config.chunk)
    dataset = sampled.dataset.with_metadata(dropped_nonfinite_rows=sampled.dropped_nonfinite,
                                            model=str(config.model))
    dataset.save(target)
    meta = dataset.metadata
    return {"out": str(target), "requested": config.num, "transitions": len(dataset),
            "dropped_nonfinite": sampled.dropped_nonfinite, "epsilon": meta["epsilon"], "delta": meta["delta"],
            "accountant": meta["accountant"], "noise_multiplier": meta["noise_multiplier"],
            "public_sources": meta["public_sources"], "private_sources": meta["private_sources"],
            "terminal_rate": float(dataset.terminals.mean()) if len(dataset) else None,
            "wall_time_s": time.perf_counter() - started}


# --- evaluate --------------------------------------------------------------------------------------------------
def run_evaluate(config: EvaluateConfig) -> dict[str, Any]:
    from trajlab.privacy.fidelity import fidelity
    from trajlab.report.sections.privacy import plot_marginals, write_synth_report

    synthetic, real = TransitionDataset.load(config.synthetic), TransitionDataset.load(config.real)
    if config.max_rows < 2:
        raise TrajlabError("max_rows must be at least 2")
    scores = fidelity(real, synthetic, max_rows=config.max_rows, seed=config.seed)
    run_dir = RunDirectory.create(config.out, config, command="synth evaluate", overwrite=config.overwrite)
    plot = plot_marginals(real, synthetic, run_dir.plots / "marginals.png")
    meta = synthetic.metadata
    result = {"run_dir": str(run_dir.path), "synthetic": config.synthetic, "real": config.real,
              "fidelity": scores.to_dict(), "column_shapes": scores.column_shapes,
              "column_pair_trends": scores.column_pair_trends, "epsilon": meta.get("epsilon"),
              "delta": meta.get("delta"), "accountant": meta.get("accountant"), "plots": [str(plot)]}
    write_synth_report(run_dir.path / "report.html", result, [str(plot)])
    run_dir.write_result(result)
    return result


# --- attack ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AttackRunConfig:
    """Loss-based membership inference on a fine-tuned model (section `attack`)."""

    model: str
    """Run directory of `trajlab synth finetune` (its members.npz says who was trained on)."""
    private: str
    """The private dataset the run fine-tuned on."""
    out: str
    """Run directory to write."""
    synthetic: str | None = None
    """Also check released samples (from `trajlab synth sample`): distance to the closest member vs non-member."""
    preset: str = "quick"
    """Preset: configs/synth/<preset>.yaml."""
    attack: AttackConfig = AttackConfig()
    """The attack's score, noise levels and repeats."""
    reference: str | None = None
    """The reference model of the calibrated score (run directory or checkpoint): a model that never saw the
    private data, in the target's standardisation. Default: the pre-trained run the model was fine-tuned from
    (its checkpoint records the path)."""
    seed: int = 0
    """Seed of the attack's noise."""
    threads: int | None = None
    """Torch CPU threads (default: torch's choice)."""
    overwrite: bool = False
    """Replace a run already in `out`."""


def run_attack(config: AttackRunConfig) -> dict[str, Any]:
    from trajlab.privacy.membership import check_attack_config, distance_to_closest_record, membership_attack
    from trajlab.privacy.training import check_same_space, load_model

    set_threads(config.threads)
    check_attack_config(config.attack)
    bundle = load_model(_model_checkpoint(config.model))
    reference, reference_path = _attack_reference(config, bundle)
    members, non_members = read_members(config.model)
    private = TransitionDataset.load(config.private)
    check_same_space(bundle, private)
    missing = np.setdiff1d(np.concatenate([members, non_members]), private.transition_ids)
    if missing.size:
        raise TrajlabError(f"{config.private}: {missing.size} of the run's member/held-out ids are not in this "
                           "dataset (not the data the run fine-tuned on?)")
    synthetic = None if config.synthetic is None else TransitionDataset.load(config.synthetic)
    if synthetic is not None:
        check_same_space(bundle, synthetic, "synthetic")
    run_dir = RunDirectory.create(config.out, config, command="synth attack", overwrite=config.overwrite)
    member_data, non_member_data = private.subset_transitions(members), private.subset_transitions(non_members)
    scores = membership_attack(bundle, member_data, non_member_data, config.attack, config.seed, reference)
    closest = None if synthetic is None else \
        distance_to_closest_record(bundle, synthetic, member_data, non_member_data, seed=config.seed)
    privacy = bundle.info.get("privacy") or {}
    result = {"run_dir": str(run_dir.path), "model": config.model, "reference": reference_path, "attack": scores,
              "distance_to_closest_record": closest, "epsilon": privacy.get("epsilon_rdp"),
              "delta": privacy.get("delta")}
    run_dir.write_result(result)
    return result


def _attack_reference(config: AttackRunConfig, bundle: Any) -> tuple[Any, str | None]:
    """The calibrated score's reference model and where it came from (None for the plain loss score)."""
    from trajlab.privacy.membership import check_reference
    from trajlab.privacy.training import load_model

    if config.attack.score != "calibrated":
        return None, None
    source = config.reference or bundle.info.get("pretrained")
    if not source:
        raise TrajlabError(f"{config.model}: the checkpoint names no pre-trained model; pass the calibrated "
                           "attack's reference model (--reference) or use --score loss")
    try:
        checkpoint = _model_checkpoint(str(source))
    except TrajlabError as error:
        raise TrajlabError(f"reference model of the calibrated attack: {error}; pass --reference") from None
    reference = load_model(checkpoint)
    check_reference(bundle, reference)
    return reference, str(source)


# --- baseline (MST / AIM) --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BaselineConfig:
    """A DP tabular synthesizer (smartnoise-synth's MST or AIM) on discretised transitions (section `baseline`):
    the baseline the diffusion model's releases are measured against. Bin edges come from the public data, so
    they cost no budget; the whole (epsilon, delta) goes to the synthesizer."""

    method: str
    """mst (McKenna et al.'s maximum-spanning-tree mechanism) or aim (the adaptive, iterative mechanism)."""
    private: str
    """The private dataset (trajlab HDF5)."""
    public: tuple[str, ...]
    """Public datasets, comma-separated: the bin edges of every column come from them (no privacy cost)."""
    out: str
    """The synthetic dataset file to write (trajlab HDF5), in the form `synth sample` writes."""
    preset: str = "quick"
    """Preset: configs/synth/<preset>.yaml."""
    epsilon: float = 10.0
    """Epsilon of the (epsilon, delta) guarantee per private transition, all spent by the synthesizer."""
    delta: float = 1e-6
    """Delta; must be below 1/n for n private training transitions."""
    bins: int = 32
    """Bins per continuous column (fewer where the public values tie); the done flag has its two values."""
    binning: str = "uniform"
    """uniform (equal widths over the public range) or quantile (equal public counts per bin, which leaves few
    bins where private data of another policy puts its mass)."""
    num: int = 10_000
    """Transitions to release."""
    member_fraction: float = 0.8
    """Share of the private transitions the synthesizer sees, chosen as `synth finetune` chooses its members
    (same seed, same rows), so baselines and diffusion models are compared on the same data; 1.0: all."""
    options: TabularOptions = TabularOptions()
    """AIM's rounds and model-size limits."""
    seed: int = 0
    """Seed of the member split, the mechanisms' selection steps, the sampler and the within-bin draws
    (smartnoise's Gaussian noise comes from OpenDP and takes no seed)."""
    threads: int | None = None
    """1: one XLA thread for jax (mbi's estimation); other values leave jax's default."""
    overwrite: bool = False
    """Replace the file in `out`."""


def run_baseline(config: BaselineConfig) -> dict[str, Any]:
    from trajlab.privacy.baselines import (
        Binning,
        fit_sample,
        limit_jax_threads,
        public_rows,
        require_smartnoise,
    )
    from trajlab.privacy.diffusion import transition_matrix
    from trajlab.privacy.training import check_budget, split_members

    public, private, target = _check_baseline(config)
    members = private.subset_transitions(split_members(private, config.member_fraction, config.seed).members)
    check_budget(config.epsilon, config.delta, len(members))
    binning = Binning.fit(public_rows(public), config.bins, config.binning)
    require_smartnoise()
    limit_jax_threads(config.threads)
    started = time.perf_counter()
    codes = fit_sample(config.method, binning.encode(transition_matrix(members)), binning.cardinalities,
                       config.num, epsilon=config.epsilon, delta=config.delta, seed=config.seed,
                       options=config.options)
    rows = binning.decode(codes, np.random.default_rng(config.seed))
    dataset = _baseline_release(config, rows, private, binning, len(members))
    dataset.save(target)
    return {"out": str(target), "method": config.method, "transitions": len(dataset),
            "epsilon": config.epsilon, "delta": config.delta, "accountant": dataset.metadata["accountant"],
            "members": len(members), "cardinalities": binning.cardinalities,
            "public_sources": list(config.public), "private_sources": [config.private],
            "terminal_rate": float(dataset.terminals.mean()), "wall_time_s": time.perf_counter() - started}


def _check_baseline(config: BaselineConfig) -> tuple[list[TransitionDataset], TransitionDataset, Path]:
    """Every request problem a user can make, before anything is fitted or written."""
    from trajlab.privacy.baselines import BINNINGS, METHODS

    if config.method not in METHODS:
        raise TrajlabError(f"unknown method {config.method!r}; known: {', '.join(METHODS)}")
    if config.binning not in BINNINGS:
        raise TrajlabError(f"unknown binning {config.binning!r}; known: {', '.join(BINNINGS)}")
    if config.bins < 1 or config.num < 1:
        raise TrajlabError("bins and the number of samples must be at least 1")
    if config.options.aim_rounds is not None and config.options.aim_rounds < 1:
        raise TrajlabError("aim_rounds must be at least 1 (or unset for smartnoise's default)")
    target = Path(config.out)
    if target.exists() and not config.overwrite:
        raise TrajlabError(f"{target}: file exists (use --overwrite or another --out)")
    if not config.public:
        raise TrajlabError("give at least one public dataset (--public): the bin edges come from it")
    public = [TransitionDataset.load(path) for path in config.public]
    private = TransitionDataset.load(config.private)
    for path, dataset in zip(config.public, public):
        if dataset.spec != private.spec or dataset.discrete:
            raise TrajlabError(f"{path}: public data of other spaces than the private data's ({dataset.spec} vs "
                               f"{private.spec}), or discrete actions")
    columns = 2 * private.observation_dim + private.action_dim + 2
    if config.method == "aim" and config.options.aim_rounds is not None and config.options.aim_rounds <= columns:
        raise TrajlabError(f"aim_rounds must exceed the {columns} columns: AIM first measures every column at the "
                           "per-round noise, which with fewer rounds spends the whole budget")
    return public, private, target


def _baseline_release(config: BaselineConfig, rows: np.ndarray, private: TransitionDataset, binning: Any,
                      members: int) -> TransitionDataset:
    from trajlab.privacy.baselines import release

    return release(rows, private, {
        "source": "trajlab synth baseline", "synthetic": True, "method": config.method,
        "env_id": private.metadata.get("env_id"), "action_low": list(private.spec.action_low),
        "action_high": list(private.spec.action_high), "epsilon": config.epsilon, "delta": config.delta,
        "accountant": f"zCDP of smartnoise-synth {config.method.upper()}, converted to (epsilon, delta) by OpenDP",
        "noise_multiplier": None, "differentially_private": True, "public_sources": list(config.public),
        "private_sources": [config.private], "members": members, "member_fraction": config.member_fraction,
        "member_seed": config.seed, "binning": config.binning, "bins": config.bins,
        "cardinalities": binning.cardinalities, "bin_edges_from": "public data (no privacy cost)"})


# --- the quickstart's step -----------------------------------------------------------------------------------
def quickstart_step(out_dir: Path, *, seed: int, dataset: Path, max_rows: int = 12_000, pretrain_steps: int = 1000,
                    samples: int = 5_000) -> dict[str, Any]:
    """The quickstart's synth tour at the quick preset: at most `max_rows` transitions of the quickstart's
    dataset (whole episodes) split by episodes into a "public" and a "private" half (the same behaviour
    policies: a tour, not the benchmark's setting of different policies), pre-training on the public half, DP
    fine-tuning at epsilon 10 on the private half, a release, its fidelity and the membership attack on the
    model. DP-SGD is the slow part (about 12 steps/s on a core): the cap keeps the tour to minutes."""
    started, out = time.perf_counter(), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = TransitionDataset.load(dataset)
    if len(data) > max_rows:
        data = data.split(max_rows / len(data), seed)[0]
    public, private = data.split(0.5, seed)
    public.save(out / "public.h5")
    private.save(out / "private.h5")

    def config(cls: type, section: str, **values: Any) -> Any:
        return load_synth_config(cls, section, "quick", seed=seed, **values)

    run_pretrain(config(PretrainConfig, "pretrain", public=[str(out / "public.h5")], out=str(out / "pre"),
                        steps=pretrain_steps))
    tuned = run_finetune(config(FinetuneConfig, "finetune", pretrained=str(out / "pre"),
                                private=str(out / "private.h5"), out=str(out / "dp")))
    run_sample(config(SampleConfig, "sample", model=str(out / "dp"), num=samples, out=str(out / "synthetic.h5")))
    fidelity = run_evaluate(config(EvaluateConfig, "evaluate", synthetic=str(out / "synthetic.h5"),
                                   real=str(out / "private.h5"), out=str(out / "evaluate")))
    attack = run_attack(config(AttackRunConfig, "attack", model=str(out / "dp"), private=str(out / "private.h5"),
                               out=str(out / "attack")))["attack"]
    privacy = tuned["privacy"]
    return {"title": "Sharing transitions under differential privacy (PrivTranR)",
            "sentences": _tour_sentences(len(public), tuned, privacy, fidelity, attack, samples),
            "plots": fidelity["plots"], "report": str(out / "evaluate" / "report.html"),
            "epsilon": privacy["epsilon_rdp"], "column_shapes": fidelity["column_shapes"],
            "column_pair_trends": fidelity["column_pair_trends"], "attack_auc": attack["auc"],
            "attack_tpr_at_1pct_fpr": attack["tpr_at_0.01_fpr"], "wall_time_s": time.perf_counter() - started}


def _tour_sentences(public: int, tuned: dict[str, Any], privacy: dict[str, Any], fidelity: dict[str, Any],
                    attack: dict[str, Any], samples: int) -> list[str]:
    return [
        f"A diffusion model of transitions was pre-trained on {public} public transitions and fine-tuned with "
        f"DP-SGD (Opacus) on {tuned['members']} private ones, {tuned['non_members']} more held out; the RDP "
        f"accountant reports epsilon {privacy['epsilon_rdp']:.2f} at delta {privacy['delta']:g} (PRV: "
        f"{privacy['epsilon_prv']:.2f}), noise multiplier {privacy['noise_multiplier']:.2f} over "
        f"{privacy['steps']} steps.",
        f"{samples} released transitions match the private data's per-dimension marginals at "
        f"{fidelity['column_shapes']:.2f} and its pairwise correlations at {fidelity['column_pair_trends']:.2f} "
        "(sdmetrics, 1 = identical).",
        f"A loss-based membership attack on the model tells members from held-out transitions with AUC "
        f"{attack['auc']:.3f} and finds {attack['tpr_at_0.01_fpr']:.1%} of members at a 1% false-positive rate "
        "(0.5 and 1% would be guessing).",
    ]
