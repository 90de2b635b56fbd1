"""The torch device a command is asked to run on, checked before any work starts."""

from __future__ import annotations

import torch

from trajlab.core.errors import TrajlabError


def check_device(name: str) -> torch.device:
    """`name` as a torch device; an unknown name, or CUDA where this torch build has no GPU, is a user error."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise TrajlabError(f"unknown device {name!r}; use cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrajlabError(f"--device {name}: no CUDA GPU is available to this torch build")
    return device
