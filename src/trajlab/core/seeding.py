"""One place that seeds every source of randomness, so the same seed on the same CPU gives the same result."""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import Iterator

import numpy as np
import torch


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and PyTorch; return a NumPy generator derived from the same seed.

    A run calls it once, before it builds its agent (`trajlab.algos.base.new_agent`). It does not set
    PYTHONHASHSEED: Python reads that only when an interpreter starts, so setting it at run time leaves this
    process's str hashing as it is (it reached only child processes started later). Results must not depend on
    the iteration order of sets of strings; child seeds come from `derive_seed`, which hashes with SHA-256.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def torch_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A private torch generator, so sampling does not depend on what else drew from the global one."""
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


def derive_seed(seed: int, *names: str | int) -> int:
    """A stable child seed for a named sub-task (a shadow agent, an environment, a sampler)."""
    sequence = np.random.SeedSequence([seed, *[_stable_int(n) for n in names]])
    return int(sequence.generate_state(1)[0])


def _stable_int(name: str | int) -> int:
    if isinstance(name, int):
        return name
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


@contextlib.contextmanager
def threads_restored() -> Iterator[None]:
    """Put PyTorch's intra-op thread count back as it was after the block (set_threads inside it is process-wide)."""
    before = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(before)


def set_threads(num_threads: int | None) -> None:
    """Limit PyTorch's intra-op threads (None leaves the default)."""
    if num_threads is not None and num_threads > 0:
        torch.set_num_threads(num_threads)
