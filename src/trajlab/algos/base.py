"""`AgentBase`: the shared half of every built-in agent (state dicts, devices, acting, checkpoints).

Subclasses build their networks into `self.networks` and optimisers into `self.optimizers`, and implement
`compute_losses`, `update` and `_policy_action`. Save/load then works without further code.

How an agent computes (torch.compile, bfloat16 autocast) is not part of its algorithm config: it is one
`RuntimeOptions` block that every agent takes as `runtime=` and reaches through `self.compiled(fn)` and
`self.autocast()`. Building an agent does not seed the process; a run seeds itself, and `new_agent` is the one
line that seeds and builds an agent for a run.
"""

from __future__ import annotations

import copy
import dataclasses
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from torch import nn

import trajlab
from trajlab.core.checkpoint import load_checkpoint, save_checkpoint
from trajlab.core.config import from_dict, to_dict
from trajlab.core.errors import TrajlabError
from trajlab.core.protocols import Batch, LossOutput
from trajlab.core.registry import Registry
from trajlab.core.seeding import seed_everything
from trajlab.core.spec import SpaceSpec
from trajlab.nn.training import autocast

AGENTS: Registry[type[AgentBase]] = Registry("algorithm")

A = TypeVar("A", bound="AgentBase")
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class RuntimeOptions:
    """How an agent computes, not what it learns: the same algorithm config with other runtime options trains
    the same algorithm (bf16 changes the arithmetic, so off by default; the papers train in float32)."""

    compile: bool = False
    """Run the loss functions through torch.compile (first updates compile for 10-60 s; pays off on long runs,
    mostly for small networks)."""
    bf16: bool = False
    """bfloat16 autocast of the matmuls in updates: faster on CPUs with AVX512-BF16/AMX and on GPUs, but network
    outputs keep only ~3 significant digits (off by default; the papers train in float32)."""

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            if not isinstance(getattr(self, field.name), bool):
                raise TrajlabError(f"runtime option {field.name} must be true or false, "
                                   f"got {getattr(self, field.name)!r}")


RUNTIME_KEYS = tuple(field.name for field in dataclasses.fields(RuntimeOptions))
"""Names of the runtime options, which older agent configs (and `--set` overrides) carry among their own."""


def split_runtime_options(values: Mapping[str, Any], *,
                          where: str = "agent options") -> tuple[dict[str, Any], RuntimeOptions]:
    """(agent config values, RuntimeOptions) from one dict of agent options.

    Until runtime options had their own block, every algorithm config had `compile` and `bf16` fields, so
    checkpoints, run directories and YAML files of that time carry them inside the agent config, and
    `--set compile=true` still names them among the agent's options. This moves them into the runtime options,
    so all of those keep working; the remaining values are the algorithm config's.
    """
    if not isinstance(values, Mapping):
        raise TrajlabError(f"{where}: expected a mapping, got {type(values).__name__}")
    agent_values = {key: value for key, value in values.items() if key not in RUNTIME_KEYS}
    runtime_values = {key: values[key] for key in RUNTIME_KEYS if key in values}
    return agent_values, from_dict(RuntimeOptions, runtime_values, where=where)


class AgentBase(ABC):
    """Base of the built-in agents; a user's agent need only follow `trajlab.core.Agent`."""

    name: ClassVar[str] = "agent"
    config_class: ClassVar[type] = object

    def __init__(self, spec: SpaceSpec, config: Any, *, device: str = "cpu", seed: int = 0,
                 runtime: RuntimeOptions = RuntimeOptions()) -> None:
        # no seeding here: building (or loading) an agent must not move the process's random stream; runs seed
        # themselves before building one (`new_agent`). `seed` is recorded for checkpoints and retraining.
        self.spec = spec
        self.config = config
        self.device = torch.device(device)
        self.seed = seed
        self.runtime = runtime
        self.num_updates = 0
        self.networks: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.loss_scales: dict[str, float] = {}

    # --- runtime options ----------------------------------------------------------------------------
    def compiled(self, method: F) -> F:
        """`method` (bound to this agent or one of its modules) through torch.compile when `runtime.compile` is
        set, else `method` itself."""
        return CompiledMethod(method) if self.runtime.compile else method  # type: ignore[return-value]

    def autocast(self) -> torch.autocast:
        """bfloat16 autocast of the matmuls within the block when `runtime.bf16` is set, else a no-op."""
        return autocast(self.device, self.runtime.bf16)

    # --- the Agent protocol -------------------------------------------------------------------------
    @abstractmethod
    def compute_losses(self, batch: Batch) -> LossOutput:
        """Per-sample losses on a batch (no optimiser steps)."""

    @abstractmethod
    def update(self, batch: Batch) -> dict[str, float]:
        """One training step; the only place that steps optimisers and target networks."""

    @abstractmethod
    def _policy_action(self, observations: torch.Tensor, deterministic: bool) -> torch.Tensor:
        """Actions for a [N, obs_dim] tensor of observations."""

    @torch.no_grad()
    def act(self, observations: np.ndarray, deterministic: bool = True) -> np.ndarray:
        obs = torch.as_tensor(np.array(observations, dtype=np.float32), device=self.device)  # copy: may be read-only
        single = obs.ndim == 1
        actions = self._policy_action(obs.unsqueeze(0) if single else obs, deterministic).cpu().numpy()
        return actions[0] if single else actions

    def modules(self) -> dict[str, nn.Module]:
        return dict(self.networks)

    def state_dict(self) -> dict[str, Any]:
        return {
            "networks": {name: module.state_dict() for name, module in self.networks.items()},
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "num_updates": self.num_updates,
            "extra": self.extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        missing = set(self.networks) - set(state.get("networks", {}))
        if missing:
            raise TrajlabError(f"checkpoint lacks network(s) {', '.join(sorted(missing))} for {self.name}")
        for name, module in self.networks.items():
            module.load_state_dict(state["networks"][name])
        for name, optimizer in self.optimizers.items():
            if name in state.get("optimizers", {}):
                optimizer.load_state_dict(state["optimizers"][name])
        self.num_updates = int(state.get("num_updates", 0))
        self.load_extra_state(state.get("extra") or {})

    def extra_state(self) -> dict[str, Any]:
        """Non-network state to checkpoint (for example the entropy temperature); override as needed."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:  # noqa: B027 (optional hook, empty by default)
        """Restore what `extra_state()` returned."""

    def reduce(self, name: str, per_sample: torch.Tensor, batch: Batch) -> torch.Tensor:
        """The batch loss of one per-sample term: weighted by `batch.weights`, scaled by `loss_scales[name]`.

        `update()` reduces every term through here, so unlearning and influence methods can reweight samples
        (Batch.weights) or whole terms (`scaled_losses`) without touching the algorithm.
        """
        loss = batch.weighted_mean(per_sample)
        scale = self.loss_scales.get(name)
        return loss if scale is None else loss * scale

    # --- conveniences -------------------------------------------------------------------------------
    def train_mode(self, training: bool = True) -> None:
        for module in self.networks.values():
            module.train(training)

    def parameters(self) -> list[nn.Parameter]:
        return [p for module in self.networks.values() for p in module.parameters()]


class CompiledMethod:
    """torch.compile of a bound method, which a copy of its agent rebinds to the copy.

    A compiled function is deep-copied as itself, so a `copy.deepcopy` of the agent (unlearning, shadow agents)
    would go on computing the original's losses and sending gradients to the original's weights; the copy
    compiles its own method instead (once more, on its first call).
    """

    def __init__(self, method: Callable[..., Any]) -> None:
        self.method = method
        self._compiled = torch.compile(method)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._compiled(*args, **kwargs)

    def __deepcopy__(self, memo: dict[int, Any]) -> CompiledMethod:
        return CompiledMethod(copy.deepcopy(self.method, memo))


@contextmanager
def scaled_losses(agent: AgentBase, **scales: float) -> Iterator[AgentBase]:
    """Within the block, `agent.update` multiplies the named loss terms by the given factors.

    Works on any agent with the LossScalable capability. A name that is not one of the agent's loss terms
    (`loss_term_names`) raises TrajlabError: its scale would change nothing, silently.
    """
    from trajlab.core.protocols import loss_term_names

    known = loss_term_names(agent)
    unknown = sorted(set(scales) - set(known))
    if unknown:
        raise TrajlabError(f"{type(agent).__name__} has no loss term {', '.join(map(repr, unknown))} to scale; "
                           f"its terms: {', '.join(known) or 'none (compute_losses names no LossOutput subclass)'}")
    previous = dict(agent.loss_scales)
    agent.loss_scales.update(scales)
    try:
        yield agent
    finally:
        agent.loss_scales = previous



def new_agent(agent_class: type[A], spec: SpaceSpec, config: Any, *, seed: int, device: str = "cpu",
              runtime: RuntimeOptions = RuntimeOptions()) -> A:
    """A fresh agent for a run: seed Python, NumPy and torch with `seed`, then build the agent.

    Every trajlab training run (and a retraining that must equal it) builds its agent this way, so the initial
    weights and the random stream after them depend on the seed alone.
    """
    seed_everything(seed)
    return agent_class(spec, config, device=device, seed=seed, runtime=runtime)


def save_agent(path: str | Path, agent: AgentBase, metadata: dict[str, Any] | None = None, *,
               run_state: dict[str, Any] | None = None) -> Path:
    """Checkpoint an agent with what is needed to rebuild it: algorithm name, config, runtime options, spaces,
    version.

    `run_state` (tensors/scalars, e.g. a sampler's generator state) is stored in the same file under
    "run_state", so a resumable checkpoint is one atomic write; `load_agent` ignores it.
    """
    header = {
        "algo": agent.name,
        "config": to_dict(agent.config),
        "runtime": to_dict(getattr(agent, "runtime", RuntimeOptions())),
        "spec": agent.spec.to_dict(),
        "seed": agent.seed,
        "trajlab_version": trajlab.__version__,
        **(metadata or {}),
    }
    state = agent.state_dict()
    if run_state is not None:
        state["run_state"] = run_state
    return save_checkpoint(path, state, header)


def load_agent(path: str | Path, device: str = "cpu", *, runtime: RuntimeOptions | None = None) -> AgentBase:
    """Rebuild an agent from a checkpoint written by `save_agent`, with the runtime options it was saved with
    (or `runtime`). The process's random state is left as it was."""
    return _rebuild(path, device, runtime, start_run=False)


def start_from_checkpoint(path: str | Path, device: str = "cpu", *,
                          runtime: RuntimeOptions | None = None) -> AgentBase:
    """Rebuild an agent from a checkpoint to start a run from it (forgetting, auditing, a shadow agent, data
    collection). As `new_agent` does for a fresh agent, it seeds the process with the agent's seed before
    building, so such a run draws the same random numbers whichever process runs it and whatever ran before."""
    return _rebuild(path, device, runtime, start_run=True)


def _rebuild(path: str | Path, device: str, runtime: RuntimeOptions | None, *, start_run: bool) -> AgentBase:
    state, metadata = load_checkpoint(path, device=device)
    if "algo" not in metadata or "spec" not in metadata:
        raise TrajlabError(f"{path}: checkpoint has no agent metadata (algo, spec)")
    agent_class = AGENTS.get(metadata["algo"])
    config, saved_runtime = agent_options_from_dict(agent_class, metadata.get("config", {}),
                                                    metadata.get("runtime"), where=f"{path} config")
    spec, seed = SpaceSpec.from_dict(metadata["spec"]), metadata.get("seed", 0)
    if start_run:
        agent = new_agent(agent_class, spec, config, seed=seed, device=device, runtime=runtime or saved_runtime)
    else:
        with preserved_random_state(device):
            agent = agent_class(spec, config, device=device, seed=seed, runtime=runtime or saved_runtime)
    agent.load_state_dict(state)
    return agent


def agent_options_from_dict(agent_class: type[AgentBase], config: Mapping[str, Any],
                            runtime: Mapping[str, Any] | None = None, *,
                            where: str = "agent config") -> tuple[Any, RuntimeOptions]:
    """(agent config, RuntimeOptions) from stored dicts; `compile`/`bf16` inside `config` (how checkpoints and
    run directories stored them before runtime options had their own block) count unless `runtime` sets them."""
    values, legacy = split_runtime_options(config, where=where)
    merged = {**to_dict(legacy), **(runtime or {})}
    return from_dict(agent_class.config_class, values, where=where), from_dict(RuntimeOptions, merged, where=where)


@contextmanager
def preserved_random_state(device: str | torch.device = "cpu") -> Iterator[None]:
    """Restore Python's, NumPy's and torch's (CPU and `device`) global random state after the block.

    Building an agent draws initial weights from the global generators; when a checkpoint's weights replace them
    at once, that draw must not shift the caller's random stream.
    """
    device = torch.device(device)
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=cuda):
            yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
