"""Video encoders: a per-frame CNN and a bidirectional LSTM over the frame features (episodes of any length)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class FrameEncoder(nn.Module):
    """Conv layers (3x3, ReLU; stride 2 at the second and third, so a 28x28 view keeps a 7x7 map) with instance
    norm after all but the last, then global average pooling; the last layer's channels are the feature size
    (Deep State Identifier: 5 layers, 256 features). The last layer is not normalised: instance norm makes each
    channel's spatial mean its bias, so pooling it would give the same features for every frame."""

    def __init__(self, channels: Sequence[int] = (32, 64, 128, 128, 256)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        previous = 3
        for index, width in enumerate(channels):
            layers.append(nn.Conv2d(previous, width, 3, stride=2 if index in (1, 2) else 1, padding=1))
            if index < len(channels) - 1:
                layers.append(nn.InstanceNorm2d(width, affine=True))
            layers.append(nn.ReLU())
            previous = width
        self.net = nn.Sequential(*layers)
        self.features = previous

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """[N, 3, H, W] floats -> [N, features]."""
        return self.net(frames).mean(dim=(2, 3))


class VideoEncoder(nn.Module):
    """Per-frame CNN, then a BiLSTM; padding frames are never encoded and never reach the LSTM (packed)."""

    def __init__(self, channels: Sequence[int] = (32, 64, 128, 128, 256), hidden: int = 128,
                 layers: int = 2) -> None:
        super().__init__()
        self.frames = FrameEncoder(channels)
        self.lstm = nn.LSTM(self.frames.features, hidden, num_layers=layers, batch_first=True, bidirectional=True)
        self.out_features = 2 * hidden

    def forward(self, video: torch.Tensor, lengths: torch.Tensor,
                frame_weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """video [B, T, 3, H, W], lengths [B], optional weights [B, T] that scale each frame's features ->
        (per-step features [B, T, 2h], per-episode features [B, 2h])."""
        batch, steps = video.shape[:2]
        valid = torch.arange(steps, device=video.device)[None, :] < lengths[:, None]
        features = video.new_zeros(batch, steps, self.frames.features)
        features[valid] = self.frames(video[valid])
        if frame_weights is not None:
            features = features * frame_weights[:, :, None]
        packed = pack_padded_sequence(features, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, (hidden, _) = self.lstm(packed)
        per_step, _ = pad_packed_sequence(out, batch_first=True, total_length=steps)
        # the last layer's forward state (after the last real frame) and backward state (after frame 0)
        return per_step, torch.cat([hidden[-2], hidden[-1]], dim=1)
