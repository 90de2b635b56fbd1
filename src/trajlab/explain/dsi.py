"""Deep State Identifier (Liu et al., ICCV 2023): a return predictor R and a critical-state detector D trained
from episode videos labelled only by their outcome.

D maps a video X to a mask m_t in (0, 1) per frame; the frames the mask must keep for R to still predict the
outcome are the critical states. The two are trained in alternating steps:

    detector:  lambda_l1 * mean_t |m_t| + lambda_cls * CE(R(m * X), y) + lambda_rev * CE(R((1 - m) * X), uniform)
    predictor: CE(R(X), y)

The L1 term here is the element-wise mean over the episode's real frames; the authors' code takes a matrix
1-norm of the [B, T] mask, which is its largest column sum (the busiest time step over the batch), not a
sparsity penalty per frame. Pixels are scaled to [0, 1] the same way in training and testing.

Two documented departures, off by default (the quick preset turns both on, paper.yaml keeps the published
objective): `reverse_target="not_outcome"` asks R not to give the outcome from the removed frames, instead of
being unsure, and `predictor_dropout` also trains R on random frame subsets; `DSIConfig` says why each is needed
for the mask not to settle at 1 on every frame.

Where m * X is applied: the per-frame CNN normalises each frame (instance norm), so scaling a frame's pixels by
m_t would reach R almost unchanged (a frame at 20% brightness normalises to the same features). m_t therefore
scales frame t's CNN features before the BiLSTM: a frame with m_t = 0 contributes nothing, as a black frame would
to a network without normalisation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trajlab.data.frames import FrameStore
from trajlab.nn.video import VideoEncoder


@dataclass(frozen=True)
class ModelConfig:
    """The detector's and predictor's networks (each has its own CNN + BiLSTM)."""

    channels: tuple[int, ...] = (32, 64, 128, 128, 256)
    """Output channels of the per-frame conv layers; the last is the feature size (the paper: 5 layers, 256)."""
    hidden: int = 128
    """LSTM hidden size per direction (the paper: 128)."""
    layers: int = 2
    """Stacked BiLSTM layers (the paper: 2)."""


@dataclass(frozen=True)
class DSIConfig:
    """The alternating training of detector and predictor (GridWorld defaults from the paper)."""

    l1: float = 5e-3
    """lambda_l1: weight of the mask's mean absolute value (sparsity)."""
    cls: float = 1.0
    """lambda_cls: weight of CE(R(m * X), y), the kept frames must still give the outcome."""
    rev: float = 2.0
    """lambda_rev: weight of CE(R((1 - m) * X), uniform), the removed frames must not."""
    reverse_target: str = "uniform"
    """What R must say about the removed frames (1 - m) * X. "uniform" (the paper): no outcome at all,
    CE against the uniform distribution. "not_outcome": not the episode's outcome, -log(1 - p_y). With two
    outcomes, removing a success's evidence makes R predict failure, not "unsure", so under "uniform" only an
    all-zero input (m = 1 on every frame) satisfies the term, and the mask collapses to 1 (docs/benchmarks.md)."""
    predictor_dropout: bool = False
    """Also train R, in the same predictor step, on each video with a random subset of its frames kept (per
    episode a keep probability drawn from U(0, 1), then each frame kept or zeroed independently). Trained on full
    videos only (the paper), R has never seen a sparse m * X, so the kept term favours masks near 1 whatever the
    frames say; the random subsets carry no information about the outcome, so R cannot learn to read the
    detector's mask."""
    batch_size: int = 64
    """Episodes per minibatch."""
    epochs: int = 20
    """Passes over the training episodes."""
    learning_rate: float = 1e-4
    """Adam learning rate of both networks."""
    weight_decay: float = 1e-4
    """Adam weight decay of both networks."""


class Predictor(nn.Module):
    """R: video -> outcome logits."""

    def __init__(self, num_classes: int, model: ModelConfig) -> None:
        super().__init__()
        self.encoder = VideoEncoder(model.channels, model.hidden, model.layers)
        self.head = nn.Linear(self.encoder.out_features, num_classes)

    def forward(self, video: torch.Tensor, lengths: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Outcome logits; a mask [B, T] applies m * X at the frame encoder's output (see the module docstring)."""
        return self.head(self.encoder(video, lengths, mask)[1])


class Detector(nn.Module):
    """D: video -> mask [B, T] in (0, 1) (padding steps are 0)."""

    def __init__(self, model: ModelConfig) -> None:
        super().__init__()
        self.encoder = VideoEncoder(model.channels, model.hidden, model.layers)
        self.head = nn.Linear(self.encoder.out_features, 1)

    def forward(self, video: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = torch.sigmoid(self.head(self.encoder(video, lengths)[0]).squeeze(-1))
        return mask * valid_steps(lengths, video.shape[1])


def valid_steps(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """[B, T] float: 1 at an episode's real frames, 0 at padding."""
    return (torch.arange(steps, device=lengths.device)[None, :] < lengths[:, None]).float()


def random_frame_subset(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """[B, T] 0/1 weights: each episode keeps each real frame with its own probability drawn from U(0, 1)."""
    keep_probability = torch.rand(len(lengths), 1, device=lengths.device)
    kept = torch.rand(len(lengths), steps, device=lengths.device) < keep_probability
    return kept.float() * valid_steps(lengths, steps)


def batch_videos(store: FrameStore, rows: Sequence[int], device: str = "cpu"
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(video [B, T, 3, H, W] in [0, 1], lengths [B], labels [B]) for the episodes in `rows`, zero-padded."""
    lengths = store.lengths[list(rows)]
    video = np.zeros((len(rows), int(lengths.max()), *store.frame_shape), dtype=np.uint8)
    for slot, row in enumerate(rows):
        video[slot, :lengths[slot]] = store.episode_frames(int(row))
    tensor = torch.from_numpy(video).to(device).permute(0, 1, 4, 2, 3).float().div_(255.0)
    return tensor, torch.from_numpy(lengths).to(device), torch.from_numpy(store.labels[list(rows)]).to(device)


def detector_loss(detector: Detector, predictor: Predictor, video: torch.Tensor, lengths: torch.Tensor,
                  labels: torch.Tensor, config: DSIConfig) -> dict[str, torch.Tensor]:
    """The detector's three terms (and their weighted sum, `loss`) on one batch; R is used, not trained, here."""
    mask = detector(video, lengths)
    valid = valid_steps(lengths, video.shape[1])
    sparsity = (mask.abs() * valid).sum(dim=1).div(lengths).mean()
    kept = F.cross_entropy(predictor(video, lengths, mask), labels)
    removed = removed_loss(predictor(video, lengths, (1.0 - mask) * valid), labels, config.reverse_target)
    loss = config.l1 * sparsity + config.cls * kept + config.rev * removed
    return {"loss": loss, "sparsity": sparsity, "kept_ce": kept, "removed_ce": removed}


REVERSE_TARGETS = ("uniform", "not_outcome")


def removed_loss(logits: torch.Tensor, labels: torch.Tensor, target: str) -> torch.Tensor:
    """The reverse term on R's logits for the removed frames (see `DSIConfig.reverse_target`)."""
    log_probs = F.log_softmax(logits, dim=1)
    if target == "uniform":
        return -log_probs.mean(dim=1).mean()
    if target == "not_outcome":
        p_outcome = log_probs.gather(1, labels[:, None]).squeeze(1).exp()
        return -torch.log1p(-p_outcome.clamp(max=1.0 - 1e-6)).mean()
    raise ValueError(f"reverse_target must be one of {REVERSE_TARGETS}, got {target!r}")


@dataclass
class DSIModel:
    """The trained pair plus what it was trained on (so it can refuse data of another env)."""

    detector: Detector
    predictor: Predictor
    env_id: str
    class_names: tuple[str, ...]
    frame_shape: tuple[int, int, int]
    model: ModelConfig


def new_model(store: FrameStore, model: ModelConfig) -> DSIModel:
    return DSIModel(Detector(model), Predictor(store.num_classes, model), store.env_id, store.class_names,
                    store.frame_shape, model)


@dataclass(frozen=True)
class TrainProgress:
    """How far a training run got: whole epochs, updates and frames."""

    epochs: int = 0
    updates: int = 0
    frames: int = 0


Optimizers = tuple[torch.optim.Optimizer, torch.optim.Optimizer]


def new_optimizers(dsi: DSIModel, config: DSIConfig) -> Optimizers:
    """Adam for the detector and for the predictor."""
    def adam(net: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.Adam(net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)

    return adam(dsi.detector), adam(dsi.predictor)


def train(dsi: DSIModel, store: FrameStore, config: DSIConfig, *, seed: int, optimizers: Optimizers | None = None,
          start: TrainProgress = TrainProgress(), log: Callable[[int, dict[str, float]], None] | None = None,
          progress: Callable[[int], None] | None = None,
          on_epoch_end: Callable[[TrainProgress], None] | None = None, device: str = "cpu") -> TrainProgress:
    """Alternate one predictor step and one detector step per minibatch of training episodes, from `start` to
    `config.epochs`. Each epoch's order is drawn from (seed, epoch), so a run continued from an epoch's end
    (its optimisers and torch's random state restored) repeats the uninterrupted run."""
    rows = store.rows("train")
    optim_d, optim_r = optimizers or new_optimizers(dsi, config)
    done = start
    for epoch in range(start.epochs, config.epochs):
        order = np.random.default_rng([seed, epoch]).permutation(rows)
        updates, frames = done.updates, done.frames
        for begin in range(0, len(order), config.batch_size):
            video, lengths, labels = batch_videos(store, order[begin:begin + config.batch_size], device)
            metrics = _alternating_step(dsi, optim_d, optim_r, video, lengths, labels, config)
            updates, frames = updates + 1, frames + int(lengths.sum())
            if log is not None:
                log(updates, {"epoch": epoch, **metrics})
            if progress is not None:
                progress(updates)
        done = TrainProgress(epoch + 1, updates, frames)
        if on_epoch_end is not None:
            on_epoch_end(done)
    return done


def _alternating_step(dsi: DSIModel, optim_d: torch.optim.Optimizer, optim_r: torch.optim.Optimizer,
                      video: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor,
                      config: DSIConfig) -> dict[str, float]:
    """Predictor step on the full videos, then detector step with the predictor frozen."""
    dsi.predictor.train()
    logits = dsi.predictor(video, lengths)
    predictor_loss = F.cross_entropy(logits, labels)
    if config.predictor_dropout:
        kept = random_frame_subset(lengths, video.shape[1])
        predictor_loss = predictor_loss + F.cross_entropy(dsi.predictor(video, lengths, kept), labels)
    optim_r.zero_grad()
    predictor_loss.backward()
    optim_r.step()
    dsi.predictor.requires_grad_(False)
    terms = detector_loss(dsi.detector, dsi.predictor, video, lengths, labels, config)
    optim_d.zero_grad()
    terms["loss"].backward()
    optim_d.step()
    dsi.predictor.requires_grad_(True)
    accuracy = float((logits.argmax(dim=1) == labels).float().mean())
    return {"predictor_loss": float(predictor_loss.detach()), "predictor_accuracy": accuracy,
            **{f"detector_{name}": float(value.detach()) for name, value in terms.items()}}


@torch.no_grad()
def mask_scores(dsi: DSIModel, store: FrameStore, rows: Sequence[int], batch_size: int = 64,
                device: str = "cpu") -> list[np.ndarray]:
    """The detector's mask m_t (the critical-state score) of each episode in `rows`."""
    dsi.detector.eval()
    scores: list[np.ndarray] = []
    for begin in range(0, len(rows), batch_size):
        chunk = list(rows[begin:begin + batch_size])
        video, lengths, _ = batch_videos(store, chunk, device)
        mask = dsi.detector(video, lengths).cpu().numpy()
        scores += [mask[slot, :n] for slot, n in enumerate(lengths.cpu().numpy())]
    return scores


@torch.no_grad()
def predict(dsi: DSIModel, store: FrameStore, rows: Sequence[int], batch_size: int = 64,
            device: str = "cpu") -> np.ndarray:
    """R's outcome probabilities [len(rows), classes] on the full videos."""
    dsi.predictor.eval()
    out = []
    for begin in range(0, len(rows), batch_size):
        video, lengths, _ = batch_videos(store, list(rows[begin:begin + batch_size]), device)
        out.append(torch.softmax(dsi.predictor(video, lengths), dim=1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, len(dsi.class_names)))


def saliency_scores(dsi: DSIModel, store: FrameStore, rows: Sequence[int], device: str = "cpu") -> list[np.ndarray]:
    """Gradient-saliency baseline: |d logit_y / d frame_t| summed over pixels, scaled to [0, 1] per episode."""
    dsi.predictor.eval()
    scores = []
    for row in rows:
        video, lengths, labels = batch_videos(store, [row], device)
        video.requires_grad_(True)
        # LSTMs refuse backward in eval mode only under cuDNN; on CPU this is fine, on GPU keep train mode
        logit = dsi.predictor(video, lengths)[0, labels[0]]
        (grad,) = torch.autograd.grad(logit, video)
        raw = grad.abs().sum(dim=(2, 3, 4))[0].cpu().numpy()
        span = raw.max() - raw.min()
        scores.append((raw - raw.min()) / span if span > 0 else np.zeros_like(raw))
    return scores


def save_model(path: str, dsi: DSIModel, extra: dict | None = None) -> str:
    """Both networks as one safetensors checkpoint; what they were trained on in its JSON metadata."""
    from trajlab.core.checkpoint import save_checkpoint
    from trajlab.core.config import to_dict

    meta = {"kind": "dsi", "env_id": dsi.env_id, "class_names": list(dsi.class_names),
            "frame_shape": list(dsi.frame_shape), "model": to_dict(dsi.model), **(extra or {})}
    state = {"detector": dsi.detector.state_dict(), "predictor": dsi.predictor.state_dict()}
    return str(save_checkpoint(path, state, meta))


def load_model(path: str) -> DSIModel:
    """A model saved by `save_model` (a one-line error for any other checkpoint)."""
    from trajlab.core.checkpoint import load_checkpoint
    from trajlab.core.config import from_dict
    from trajlab.core.errors import TrajlabError

    state, meta = load_checkpoint(path)
    if meta.get("kind") != "dsi":
        raise TrajlabError(f"{path}: not a Deep State Identifier checkpoint (from `trajlab critical train`)")
    model = from_dict(ModelConfig, meta["model"], where=str(path))
    dsi = DSIModel(Detector(model), Predictor(len(meta["class_names"]), model), meta["env_id"],
                   tuple(meta["class_names"]), tuple(meta["frame_shape"]), model)
    dsi.detector.load_state_dict(state["detector"])
    dsi.predictor.load_state_dict(state["predictor"])
    return dsi


def check_fits(dsi: DSIModel, store: FrameStore, where: str) -> None:
    """A model only explains videos of the env and frame size it was trained on."""
    from trajlab.core.errors import TrajlabError

    if store.env_id != dsi.env_id:
        raise TrajlabError(f"{where}: videos of {store.env_id!r}, but the model was trained on {dsi.env_id!r}")
    if tuple(store.frame_shape) != tuple(dsi.frame_shape):
        raise TrajlabError(f"{where}: frames of size {store.frame_shape}, the model's are {tuple(dsi.frame_shape)}")
    if tuple(store.class_names) != tuple(dsi.class_names):
        raise TrajlabError(f"{where}: outcome classes {store.class_names} differ from the model's {dsi.class_names}")
