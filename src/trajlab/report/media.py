"""Animated GIFs of agents (imageio), written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trajlab.core.errors import TrajlabError
from trajlab.core.io import atomic_path


def save_gif(frames: np.ndarray | list[np.ndarray], path: str | Path, *, fps: int = 25) -> Path:
    """Write RGB frames [T, H, W, 3] (uint8) as a looping GIF."""
    import imageio.v2 as imageio

    stack = np.asarray(frames)
    if stack.ndim != 4 or stack.shape[-1] != 3 or len(stack) == 0:
        raise TrajlabError(f"a GIF needs frames of shape [T, H, W, 3], got {stack.shape}")
    target = Path(path)
    with atomic_path(target) as temp:
        imageio.mimsave(temp, list(stack.astype(np.uint8)), format="GIF", duration=1000 / fps, loop=0)
    return target
