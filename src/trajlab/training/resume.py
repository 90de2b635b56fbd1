"""Step checkpoints that `--resume` continues from exactly: the agent's state and a `ResumeState` in one file.

The resume state travels under `run_state` in the agent checkpoint (`save_agent`), so a step is resumable once
one atomic write has finished; `load_agent` reads the same file as a plain agent checkpoint.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from trajlab.algos.base import AgentBase, save_agent
from trajlab.core.checkpoint import load_checkpoint
from trajlab.core.errors import TrajlabError


@dataclass(frozen=True)
class ResumeState:
    """Where a run stood at a step checkpoint: enough to continue with the draws it would have made."""

    kind: str
    """The training that wrote it ("offline" or "online"); the other kind refuses it."""
    step: int
    """Steps done."""
    elapsed_s: float
    """Wall seconds of the run so far, over all its sessions."""
    metric_window: dict[str, dict[str, Any]]
    """`MetricWindow.state()`: the part of a log interval that came before the checkpoint."""
    last_eval: dict[str, Any] | None
    """The latest evaluation (`EvalSummary` fields), None before the first."""
    random: dict[str, Any]
    """Generator states by name: torch's (and CUDA's, when in use) and the loop's own (sampler, env, ...)."""
    loop: dict[str, Any] = field(default_factory=dict)
    """What one kind of training adds (online: updates, episodes, evaluation history, timings)."""

    def write(self, path: Path, agent: AgentBase, metadata: dict[str, Any]) -> Path:
        """The agent checkpoint at `path`, carrying this state."""
        return save_agent(path, agent, metadata, run_state=asdict(self))

    @classmethod
    def read_into(cls, agent: AgentBase, path: Path, *, kind: str, device: str) -> ResumeState:
        """Load a step checkpoint's agent state into `agent`; its resume state."""
        state, _ = load_checkpoint(path, device=device)
        saved = state.pop("run_state", None)
        if not isinstance(saved, dict) or saved.get("kind") != kind:
            raise TrajlabError(f"{path}: not a step checkpoint of {kind} training (no run state to resume from)")
        missing = sorted({item.name for item in fields(cls)} - set(saved))
        if missing:
            raise TrajlabError(f"{path}: run state lacks {', '.join(missing)}")
        try:
            agent.load_state_dict(state)
        except (RuntimeError, KeyError) as error:
            raise TrajlabError(f"{path}: does not fit this agent ({str(error).splitlines()[0]})") from None
        return cls(**saved)


def torch_random_states() -> dict[str, torch.Tensor]:
    """torch's global generator state, and CUDA's when CUDA is in use (dropout and policy noise draw there)."""
    states = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state()
    return states


def restore_torch_random_states(states: dict[str, Any]) -> None:
    """Undo `torch_random_states` (the tensors may come back on the training device)."""
    torch.set_rng_state(states["torch"].cpu())
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state(states["cuda"].cpu())
