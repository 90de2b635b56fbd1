"""Training the transition diffusion model: non-DP pre-training on public data, DP-SGD fine-tuning on private data.

Both use Adam (beta 0.9, 0.99) with a cosine learning-rate schedule and an EMA copy of the weights (0.995 every
10 steps; the EMA is what `sample` draws from). Pre-training clips the global gradient norm at 1. Fine-tuning
goes through Opacus: `make_private_with_epsilon` picks the noise multiplier for the target (epsilon, delta)
with its RDP accountant, clips every per-sample gradient at C = 1 and draws Poisson batches with its own
DataLoader (trajlab's sampler draws with replacement, which the accountant does not cover). The EMA of DP
weights is post-processing, so it costs no budget. `DPConfig.grad_sample_mode` only picks how Opacus gets each
sample's gradient norm; in ghost mode the EDM loss goes through Opacus's criterion wrapper as `WeightedMSE`.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from trajlab.core.checkpoint import load_checkpoint, save_checkpoint
from trajlab.core.config import from_dict, to_dict
from trajlab.core.errors import TrajlabError
from trajlab.core.seeding import torch_generator
from trajlab.data.dataset import TransitionDataset
from trajlab.privacy.diffusion import (
    Denoiser,
    DiffusionConfig,
    Standardiser,
    WeightedMSE,
    check_diffusion_config,
    edm_loss,
    edm_terms,
    transition_dim,
    transition_matrix,
)

Log = Callable[[int, dict[str, float]], None]
Backward = Callable[[nn.Module, torch.Tensor, "TransitionModel", torch.Generator], torch.Tensor]
"""One batch's forward and backward pass (model, batch, bundle, generator); returns the per-sample losses."""
GRAD_SAMPLE_MODES = ("hooks", "functorch", "ew", "ghost")
CHECKPOINT_KIND = "trajlab.synth.transition_diffusion"
RDP_ORDERS = (*[1 + x / 10.0 for x in range(1, 100)], *range(12, 64), *range(64, 257, 4), 320, 384, 512, 768, 1024)
"""Renyi orders for Opacus's RDP accountant: its defaults (1.1 ... 63) and higher ones, because at epsilon 10
with few steps the best order is above 63, where Opacus warns and its bound (so the noise) is needlessly loose."""


@dataclass(frozen=True)
class OptimConfig:
    """Adam, schedule and EMA shared by pre-training and fine-tuning."""

    learning_rate: float = 3e-4
    """Adam's initial learning rate (cosine-annealed to 0 over the run)."""
    beta1: float = 0.9
    """Adam's beta1."""
    beta2: float = 0.99
    """Adam's beta2."""
    weight_decay: float = 0.0
    """Adam's weight decay."""
    grad_clip: float = 1.0
    """Global gradient-norm clip of non-DP training (DP training clips each sample's gradient instead)."""
    ema_decay: float = 0.995
    """Decay of the EMA weights that sampling uses."""
    ema_every: int = 10
    """Update the EMA weights every this many steps."""


@dataclass(frozen=True)
class DPConfig:
    """DP-SGD fine-tuning (PrivTranR: epsilon 10, delta 1e-6, C 1, batch 128, 5 epochs)."""

    epsilon: float = 10.0
    """Target epsilon of the (epsilon, delta) guarantee per private transition."""
    delta: float = 1e-6
    """Target delta; must be below 1/n for n private training transitions."""
    max_grad_norm: float = 1.0
    """Per-sample gradient clipping norm C."""
    batch_size: int = 128
    """Expected Poisson batch size (sample rate = batch_size / n)."""
    epochs: int = 5
    """Epochs over the private training transitions (steps = epochs * ceil(n / batch_size))."""
    member_fraction: float = 0.8
    """Share of the private transitions used for training; the rest is held out as non-members."""
    grad_sample_mode: str = "ghost"
    """Opacus's per-sample gradient mode: ghost (ghost clipping: per-sample gradient norms without the
    per-sample gradients, then a second backward of the clipped loss; the default, as it is the fastest on the
    quick denoiser and clips as hooks does), hooks, functorch or ew (expanded weights)."""


@dataclass
class TransitionModel:
    """A denoiser with its EMA copy, the standardisation it was trained in, and where it came from."""

    model: Denoiser
    ema: Denoiser
    standardiser: Standardiser
    config: DiffusionConfig
    observation_dim: int
    action_dim: int
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return transition_dim(self.observation_dim, self.action_dim)


# --- building and saving ---------------------------------------------------------------------------------------
def new_model(public: Sequence[TransitionDataset], config: DiffusionConfig, seed: int) -> TransitionModel:
    """A fresh model whose standardisation comes from the (public) datasets given."""
    check_diffusion_config(config)
    spec = _common_spec(public)
    rows = np.concatenate([transition_matrix(ds) for ds in public])
    torch.manual_seed(seed)
    model = Denoiser(transition_dim(spec.observation_dim, spec.action_dim), config)
    return TransitionModel(model, copy.deepcopy(model).requires_grad_(False), Standardiser.fit(rows), config,
                           spec.observation_dim, spec.action_dim, tuple(spec.action_low), tuple(spec.action_high))


def _common_spec(datasets: Sequence[TransitionDataset]) -> Any:
    if not datasets:
        raise TrajlabError("no public dataset given")
    specs = {ds.spec for ds in datasets}
    if len(specs) > 1:
        raise TrajlabError("the public datasets have different observation/action spaces")
    spec = datasets[0].spec
    if spec.discrete:
        raise TrajlabError("synthetic transitions need continuous actions; the public data's are discrete")
    return spec


def check_same_space(model: TransitionModel, dataset: TransitionDataset, what: str = "private") -> None:
    """The data must live in the model's spaces (same dimensions and action bounds)."""
    spec = dataset.spec
    if spec.discrete or (spec.observation_dim, spec.action_dim) != (model.observation_dim, model.action_dim):
        raise TrajlabError(f"{what} data ({spec.observation_dim}-d observations, {spec.action_dim}-d "
                           f"{'discrete ' if spec.discrete else ''}actions) does not match the public data's "
                           f"spaces ({model.observation_dim}-d, {model.action_dim}-d)")
    if not (np.allclose(spec.action_low, model.action_low) and np.allclose(spec.action_high, model.action_high)):
        raise TrajlabError(f"{what} data's action bounds differ from the public data's")


def plain_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """The state of `module` as the plain model names it: Opacus's wrapper adds `_module.` to every key."""
    return {key.replace("_module.", ""): value for key, value in module.state_dict().items()}


def save_model(path: str | Path, bundle: TransitionModel) -> Path:
    """safetensors of the plain model, its EMA and standardiser; JSON metadata with privacy info and sources."""
    state = {"model": plain_state_dict(bundle.model), "ema": plain_state_dict(bundle.ema),
             "standardiser": bundle.standardiser.state()}
    metadata = {"kind": CHECKPOINT_KIND, "diffusion": to_dict(bundle.config),
                "observation_dim": bundle.observation_dim, "action_dim": bundle.action_dim,
                "action_low": list(bundle.action_low), "action_high": list(bundle.action_high), **bundle.info}
    return save_checkpoint(path, state, metadata)


def load_model(path: str | Path) -> TransitionModel:
    state, metadata = load_checkpoint(path)
    if metadata.get("kind") != CHECKPOINT_KIND:
        raise TrajlabError(f"{path}: not a trajlab synth checkpoint")
    config = from_dict(DiffusionConfig, metadata["diffusion"], where=str(path))
    dim = transition_dim(metadata["observation_dim"], metadata["action_dim"])
    model, ema = Denoiser(dim, config), Denoiser(dim, config)
    try:
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
    except RuntimeError as error:
        raise TrajlabError(f"{path}: weights do not fit the model ({str(error).splitlines()[0]})") from None
    keys = ("kind", "diffusion", "observation_dim", "action_dim", "action_low", "action_high")
    info = {key: value for key, value in metadata.items() if key not in keys}
    return TransitionModel(model, ema.requires_grad_(False), Standardiser.from_state(state["standardiser"]), config,
                           metadata["observation_dim"], metadata["action_dim"], tuple(metadata["action_low"]),
                           tuple(metadata["action_high"]), info)


# --- the shared optimisation pieces ----------------------------------------------------------------------------
class EMA:
    """ema <- decay * ema + (1 - decay) * model, every `every` steps."""

    def __init__(self, model: nn.Module, ema: nn.Module, decay: float, every: int) -> None:
        self.source, self.target = list(model.parameters()), list(ema.parameters())
        self.decay, self.every, self.count = decay, max(every, 1), 0

    @torch.no_grad()
    def step(self) -> None:
        self.count += 1
        if self.count % self.every == 0:
            torch._foreach_lerp_(self.target, self.source, 1 - self.decay)


def _adam(model: nn.Module, optim: OptimConfig) -> torch.optim.Adam:
    return torch.optim.Adam(model.parameters(), lr=optim.learning_rate, betas=(optim.beta1, optim.beta2),
                            weight_decay=optim.weight_decay)


def _cosine(optimizer: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(steps, 1))


# --- pre-training (non-DP, public data) ------------------------------------------------------------------------
def pretrain(bundle: TransitionModel, public: Sequence[TransitionDataset], *, steps: int, batch_size: int,
             optim: OptimConfig, seed: int, log: Log | None = None, log_every: int = 100) -> list[float]:
    """Train `bundle` in place on the public rows for `steps` minibatches; returns the mean loss per step."""
    for ds in public:
        check_same_space(bundle, ds, "public")
    rows = torch.from_numpy(bundle.standardiser.forward(np.concatenate([transition_matrix(ds) for ds in public])))
    generator = torch_generator(seed)
    optimizer = _adam(bundle.model, optim)
    schedule, ema = _cosine(optimizer, steps), EMA(bundle.model, bundle.ema, optim.ema_decay, optim.ema_every)
    losses = []
    for step in range(1, steps + 1):
        batch = rows[torch.randint(len(rows), (batch_size,), generator=generator)]
        loss = edm_loss(bundle.model, batch, bundle.config, generator).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(bundle.model.parameters(), optim.grad_clip)
        optimizer.step()
        schedule.step()
        ema.step()
        losses.append(loss.item())
        if log is not None and (step % log_every == 0 or step == steps):
            log(step, {"loss": float(np.mean(losses[-log_every:])), "lr": schedule.get_last_lr()[0]})
    return losses


# --- DP fine-tuning (private data) -----------------------------------------------------------------------------
@dataclass(frozen=True)
class MembershipSplit:
    """Which private transitions trained the model (members) and which were held out (non-members)."""

    members: np.ndarray
    non_members: np.ndarray


def split_members(private: TransitionDataset, fraction: float, seed: int) -> MembershipSplit:
    """A random `fraction` of the private transition ids as members, the rest held out (both sorted)."""
    if not 0.0 < fraction <= 1.0:
        raise TrajlabError(f"member_fraction must be in (0, 1], got {fraction}")
    order = np.random.default_rng(seed).permutation(len(private))
    count = int(round(fraction * len(private)))
    ids = private.transition_ids
    return MembershipSplit(np.sort(ids[order[:count]]), np.sort(ids[order[count:]]))


def check_dp_request(dp: DPConfig, num_members: int, *, private: bool = True) -> None:
    """Reject a budget or batch that cannot work, before anything is trained or written (without `private`,
    only the batch settings: a non-private run spends no budget)."""
    if private:
        _check_budget(dp, num_members)
    if dp.batch_size < 1 or dp.epochs < 1 or dp.max_grad_norm <= 0:
        raise TrajlabError("batch_size and epochs must be at least 1 and max_grad_norm positive")
    if num_members < dp.batch_size:
        raise TrajlabError(f"the private training data ({num_members} transitions) is smaller than the batch "
                           f"size {dp.batch_size}")
    if dp.grad_sample_mode not in GRAD_SAMPLE_MODES:
        raise TrajlabError(f"unknown grad_sample_mode {dp.grad_sample_mode!r}; known: {', '.join(GRAD_SAMPLE_MODES)}")


def _check_budget(dp: DPConfig, num_members: int) -> None:
    check_budget(dp.epsilon, dp.delta, num_members)


def check_budget(epsilon: float, delta: float, num_rows: int) -> None:
    """Reject a budget that cannot work (epsilon <= 0, delta outside (0, 1/n)), before anything is written."""
    if not epsilon > 0 or not math.isfinite(epsilon):
        raise TrajlabError(f"epsilon must be a positive number, got {epsilon}")
    if not 0 < delta < 1 / max(num_rows, 1):
        raise TrajlabError(f"delta must be in (0, 1/n) for n = {num_rows} private training transitions "
                           f"(1/n = {1 / max(num_rows, 1):.3g}), got {delta}")


@dataclass(frozen=True)
class PrivacyReport:
    """What the accountants say about a finished DP fine-tuning."""

    epsilon_target: float
    delta: float
    epsilon_rdp: float
    epsilon_prv: float | None
    noise_multiplier: float
    sample_rate: float
    steps: int
    max_grad_norm: float
    num_members: int
    accountant: str = "rdp"

    def to_dict(self) -> dict[str, Any]:
        return {"epsilon_target": self.epsilon_target, "delta": self.delta, "epsilon_rdp": self.epsilon_rdp,
                "epsilon_prv": self.epsilon_prv, "noise_multiplier": self.noise_multiplier,
                "sample_rate": self.sample_rate, "steps": self.steps, "max_grad_norm": self.max_grad_norm,
                "num_members": self.num_members, "accountant": self.accountant}


def finetune_dp(bundle: TransitionModel, members: TransitionDataset, dp: DPConfig, optim: OptimConfig, *,
                seed: int, log: Log | None = None, log_every: int = 10) -> tuple[PrivacyReport, list[float]]:
    """DP-SGD fine-tuning of `bundle` (in place) on the member transitions; returns the accountants' report."""
    from opacus import PrivacyEngine

    check_same_space(bundle, members)
    check_dp_request(dp, len(members))
    rows = torch.from_numpy(bundle.standardiser.forward(transition_matrix(members)))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(rows), batch_size=dp.batch_size,
                                         generator=torch_generator(seed))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]ecure.*")  # see make_private
        engine = PrivacyEngine(accountant="rdp")
    model, optimizer, dp_loader, backward = make_private(
        engine, bundle.model, _adam(bundle.model, optim), loader, dp, seed, target_epsilon=dp.epsilon,
        target_delta=dp.delta, epochs=dp.epochs, alphas=list(RDP_ORDERS))
    with warnings.catch_warnings():
        # the data need no gradient, so Opacus's full backward hooks fire on module outputs only: as intended
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        losses = _epochs(model, optimizer, dp_loader, bundle, dp.epochs, optim, seed, log, log_every,
                         backward=backward)
    # the plain model without Opacus's hooks: left on, they keep capturing activations at every later forward
    # pass with gradients, and ghost mode's raise at the second one (it takes them for parameter tying)
    bundle.model = model.to_standard_module() if hasattr(model, "to_standard_module") else model
    return _privacy_report(engine, dp, optimizer.noise_multiplier, len(members)), losses


def make_private(engine: Any, module: nn.Module, optimizer: torch.optim.Optimizer, loader: Any, dp: DPConfig,
                 seed: int, **budget: Any) -> tuple[nn.Module, Any, Any, Backward]:
    """Opacus's private model, optimiser and Poisson loader for `dp.grad_sample_mode`, with the backward pass
    that mode needs. `budget` holds make_private_with_epsilon's target_epsilon, target_delta, epochs (and
    alphas) or, without target_epsilon, make_private's noise_multiplier. Opacus clips, noises and accounts in
    every mode; ghost mode only changes how it gets each sample's gradient norm."""
    make = engine.make_private_with_epsilon if "target_epsilon" in budget else engine.make_private
    ghost = dp.grad_sample_mode == "ghost"
    with warnings.catch_warnings():
        # Opacus warns that secure_mode is off (its noise is then not cryptographically secure) on every call
        # (engine and optimiser)
        warnings.filterwarnings("ignore", message=".*[Ss]ecure.*")
        parts = make(module=module, optimizer=optimizer, data_loader=loader, max_grad_norm=dp.max_grad_norm,
                     poisson_sampling=True, grad_sample_mode=dp.grad_sample_mode,
                     noise_generator=torch_generator(seed + 1), **({"criterion": WeightedMSE()} if ghost else {}),
                     **budget)
    if ghost:  # ghost mode also returns the criterion wrapper that runs its two backward passes
        model, dp_optimizer, criterion, dp_loader = parts
        return model, dp_optimizer, dp_loader, _GhostBackward(criterion)
    model, dp_optimizer, dp_loader = parts
    return model, dp_optimizer, dp_loader, backward_mean


def finetune_plain(bundle: TransitionModel, members: TransitionDataset, dp: DPConfig, optim: OptimConfig, *,
                   seed: int, log: Log | None = None, log_every: int = 10) -> list[float]:
    """The same fine-tuning without privacy (in place): shuffled minibatches of `dp.batch_size` for `dp.epochs`
    epochs, Adam, schedule and EMA as DP-SGD's, the global gradient clip instead of the per-sample one, no
    noise. The reference a membership attack and the downstream comparisons measure DP against; it carries no
    guarantee."""
    check_same_space(bundle, members)
    check_dp_request(dp, len(members), private=False)
    rows = torch.from_numpy(bundle.standardiser.forward(transition_matrix(members)))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(rows), batch_size=dp.batch_size,
                                         shuffle=True, generator=torch_generator(seed))
    return _epochs(bundle.model, _adam(bundle.model, optim), loader, bundle, dp.epochs, optim, seed, log, log_every,
                   grad_clip=optim.grad_clip)


def backward_mean(model: nn.Module, batch: torch.Tensor, bundle: TransitionModel,
                  generator: torch.Generator) -> torch.Tensor:
    """Backward of the batch's mean EDM loss (non-DP, and Opacus's hooks, functorch and ew modes, whose hooks
    record the per-sample gradients for the optimiser to clip)."""
    per_sample = edm_loss(model, batch, bundle.config, generator)
    # an empty Poisson batch is still a step the accountant counts: its zero-row backward gives Opacus
    # empty per-sample gradients, and the step adds noise only (a mean over no rows would be NaN)
    (per_sample.mean() if len(batch) else per_sample.sum()).backward()
    return per_sample.detach()


@dataclass(frozen=True)
class _GhostBackward:
    """Backward through Opacus's ghost-clipping criterion wrapper: it evaluates `WeightedMSE` per sample on the
    EDM loss's parts, then its backward computes each sample's gradient norm (first pass) and back-propagates
    the loss reweighted by the clipping coefficients (second pass), leaving the clipped sum in the gradients."""

    criterion: Any

    def __call__(self, model: nn.Module, batch: torch.Tensor, bundle: TransitionModel,
                 generator: torch.Generator) -> torch.Tensor:
        loss = self.criterion(*edm_terms(model, batch, bundle.config, generator))
        loss.backward()
        return loss.loss_per_sample.detach()


def _epochs(model: nn.Module, optimizer: Any, loader: Iterable, bundle: TransitionModel, epochs: int,
            optim: OptimConfig, seed: int, log: Log | None, log_every: int, *,
            grad_clip: float | None = None, backward: Backward = backward_mean) -> list[float]:
    """Fine-tuning epochs; `grad_clip` clips the global gradient norm (None under DP-SGD, which clips each
    sample's gradient itself); `backward` is the pass the Opacus mode needs."""
    schedule = _cosine(optimizer, epochs * len(loader))  # type: ignore[arg-type]
    ema, generator, losses = EMA(model, bundle.ema, optim.ema_decay, optim.ema_every), torch_generator(seed + 2), []
    for _ in range(epochs):
        for (batch,) in loader:
            optimizer.zero_grad(set_to_none=True)
            per_sample = backward(model, batch, bundle, generator)
            if grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            if len(batch):
                losses.append(per_sample.mean().item())
            optimizer.step()
            schedule.step()
            ema.step()
            if log is not None and losses and len(losses) % log_every == 0:
                log(len(losses), {"loss": float(np.mean(losses[-log_every:])), "lr": schedule.get_last_lr()[0]})
    return losses


def _privacy_report(engine: Any, dp: DPConfig, noise_multiplier: float, num_members: int) -> PrivacyReport:
    from opacus.accountants import PRVAccountant

    history = list(engine.accountant.history)
    epsilon_rdp = float(engine.accountant.get_epsilon(dp.delta, alphas=list(RDP_ORDERS)))
    prv = PRVAccountant()
    prv.history = history
    try:
        epsilon_prv: float | None = float(prv.get_epsilon(dp.delta))
    except (ValueError, RuntimeError, AssertionError):
        # PRV's numerical domain can be too small for extreme settings; RDP stays the accountant of record
        epsilon_prv = None
    steps = int(sum(entry[2] for entry in history))
    return PrivacyReport(dp.epsilon, dp.delta, epsilon_rdp, epsilon_prv, float(noise_multiplier),
                         float(history[-1][1]) if history else 0.0, steps, dp.max_grad_norm, num_members)
