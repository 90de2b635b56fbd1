"""Would TrajAuditor's K shadows train faster as ONE stacked model (K copies batched) than one after another?

The shadows are K fine-tunings of the same network on the same data, so their parameters can be stacked along
a new leading dimension and every update run once for all K with `torch.func.vmap` (each copy its own batch,
its own smoothing noise; Adam and Polyak averaging are element-wise, so one optimiser over the stacked tensors
is K independent ones). This script does that for TD3+BC, running the agent's own per-sample loss methods with
each copy's weights swapped in (`functional_call`); what it adds is the update's order (critic, then every
`policy_freq` updates actor and targets), which `update()` keeps to itself. It times this against the
library's paths on the same original agent:

* sequential: the K fine-tunings one after another in this process (`AuditConfig.executor="in-process"`);
* pool: `trajlab.execution`'s local process pool, one thread per worker (`executor="local"`), when asked for;
* stacked: this script's vmapped update.

Before timing it checks the stacked update against the agent's own `update()`: with the smoothing noise off and
the same batches, every stacked copy must act and value like a sequentially trained copy.

    python benchmarks/stacked_shadows.py --dataset hopper-mr.hdf5 --shadows 5 --steps 300 --rounds 3

Prints one JSON line per measurement and a summary line with medians and ratios (stacked / sequential time).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from dataclasses import replace

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from trajlab.algos import AGENTS, new_agent
from trajlab.audit import AuditConfig
from trajlab.audit.shadows import train_shadows
from trajlab.core.config import load_preset
from trajlab.core.protocols import Batch
from trajlab.data import TransitionDataset
from trajlab.nn.training import adam


class _AgentLosses(nn.Module):
    """The agent's networks as one module, so `functional_call` can swap in one copy's weights while the agent's
    own loss methods run (they reach the networks through the agent, which holds these same module objects)."""

    def __init__(self, agent) -> None:
        super().__init__()
        self.nets = nn.ModuleDict(agent.networks)
        self.agent = [agent]  # in a list: not a submodule

    def forward(self, loss: str, batch: Batch) -> torch.Tensor:
        return getattr(self.agent[0], loss)(batch)


class StackedTD3BC:
    """K copies of a TD3+BC agent trained as one: parameters [K, ...], one vmapped update for all copies, each
    running the agent's own per-sample critic and actor losses."""

    def __init__(self, agent, copies: int) -> None:
        self.agent, self.config, self.copies = agent, agent.config, copies
        self.losses = _AgentLosses(copy.deepcopy(agent))
        self.params = {name: self._stack(name) for name in agent.networks}
        self.optimizers = {"critic": adam(self.params["critic"].values(), self.config.critic_lr),
                           "actor": adam(self.params["actor"].values(), self.config.actor_lr)}
        self.num_updates = agent.num_updates
        self._per_copy = vmap(self._mean_loss, in_dims=(None, 0, 0), randomness="different")

    def _stack(self, name: str) -> dict[str, torch.Tensor]:
        params, _ = stack_module_state([self.agent.networks[name]] * self.copies)
        trainable = name in ("actor", "critic")
        return {key: value.detach().clone().requires_grad_(trainable) for key, value in params.items()}

    def _mean_loss(self, loss: str, params: dict, data: tuple) -> torch.Tensor:
        observations, actions, rewards, next_observations, terminals = data
        empty = torch.zeros(0)
        batch = Batch(observations, actions, rewards, next_observations, terminals, empty, empty)
        return functional_call(self.losses, params, (loss, batch)).mean()

    def _named(self, **networks: dict) -> dict[str, torch.Tensor]:
        return {f"nets.{name}.{key}": value for name, params in networks.items() for key, value in params.items()}

    def update(self, batches: list) -> None:
        """One update of every copy; `batches[k]` is copy k's raw batch."""
        prepared = [self.agent.preprocess(batch) for batch in batches]
        data = tuple(torch.stack([getattr(b, field) for b in prepared])
                     for field in ("observations", "actions", "rewards", "next_observations", "terminals"))
        p = self.params
        everything = self._named(**p)
        self._step("critic", self._per_copy("_critic_loss_eager", everything, data).sum())
        if self.num_updates % self.config.policy_freq == 0:
            frozen_critic = {key: value.detach() for key, value in p["critic"].items()}
            self._step("actor", self._per_copy("_actor_loss_eager", self._named(**{**p, "critic": frozen_critic}),
                                               data).sum())
            with torch.no_grad():
                for source, target in (("actor", "actor_target"), ("critic", "critic_target")):
                    torch._foreach_lerp_(list(p[target].values()), list(p[source].values()), self.config.tau)
        self.num_updates += 1

    def _step(self, name: str, loss: torch.Tensor) -> None:
        params = list(self.params[name].values())
        for param, grad in zip(params, torch.autograd.grad(loss, params)):
            param.grad = grad.contiguous()  # vmap can return transposed strides; the fused Adam needs the param's
        self.optimizers[name].step()

    def copy_weights(self, index: int, name: str) -> dict[str, torch.Tensor]:
        return {key: value[index].detach() for key, value in self.params[name].items()}

    def forward(self, name: str, index: int, *inputs: torch.Tensor) -> torch.Tensor:
        """Network `name` of copy `index` applied to `inputs`."""
        return functional_call(self.agent.networks[name], self.copy_weights(index, name), inputs)


def check_against_sequential(original, dataset: TransitionDataset, steps: int = 20) -> dict[str, float]:
    """Stacked copies against agents trained by their own update() on the same batches (smoothing noise off, so
    both paths are deterministic): largest differences of actions and of Q values (relative to mean |Q|) on
    held-out states. Weights are not compared directly: on its first steps Adam moves a weight by +-lr whatever
    the size of its gradient, so a gradient that is float round-off in one path flips sign in the other."""
    quiet = copy.deepcopy(original)
    quiet.config = replace(quiet.config, policy_noise=0.0)
    sequential = [copy.deepcopy(quiet) for _ in range(2)]
    stacked = StackedTD3BC(quiet, 2)
    samplers = [dataset.sampler(seed=index) for index in range(2)]
    for _ in range(steps):
        batches = [sampler.sample(quiet.config.batch_size) for sampler in samplers]
        stacked.update(batches)
        for agent, batch in zip(sequential, batches):
            agent.update(batch)
    held_out = quiet.preprocess(dataset.sampler(seed=99).sample(256))
    action_gap, q_gap = 0.0, 0.0
    with torch.no_grad():
        for k, agent in enumerate(sequential):
            actions = stacked.forward("actor", k, held_out.observations)
            q = stacked.forward("critic", k, held_out.observations, held_out.actions)
            reference_q = agent.critic(held_out.observations, held_out.actions)
            action_gap = max(action_gap, float((actions - agent.actor(held_out.observations)).abs().max()))
            q_gap = max(q_gap, float((q - reference_q).abs().max() / reference_q.abs().mean()))
    return {"max_action_difference": action_gap, "max_relative_q_difference": q_gap}


def time_sequential(original, dataset: TransitionDataset, shadows: int, steps: int, executor: str) -> float:
    started = time.perf_counter()
    train_shadows(original, dataset, AuditConfig(num_shadows=shadows, shadow_steps=steps, executor=executor))
    return time.perf_counter() - started


def time_stacked(original, dataset: TransitionDataset, shadows: int, steps: int) -> float:
    started = time.perf_counter()
    stacked = StackedTD3BC(original, shadows)
    samplers = [dataset.sampler(seed=index) for index in range(shadows)]
    for _ in range(steps):
        stacked.update([sampler.sample(original.config.batch_size) for sampler in samplers])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--presets", default="quick,paper", help="TD3+BC presets (network and batch sizes)")
    parser.add_argument("--shadows", type=int, default=5)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pool", action="store_true", help="also time the local process pool")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(1)
    dataset = TransitionDataset.load(args.dataset)
    for preset in args.presets.split(","):
        measure_preset(preset, dataset, args)


def measure_preset(preset: str, dataset: TransitionDataset, args: argparse.Namespace) -> None:
    agent_class = AGENTS.get("td3_bc")
    original = new_agent(agent_class, dataset.spec, load_preset(agent_class.config_class, "offline/td3_bc", preset),
                         device=args.device, seed=0)
    original.prepare(dataset)
    print(json.dumps({"preset": preset, **check_against_sequential(original, dataset)}), flush=True)
    paths = {"sequential": lambda: time_sequential(original, dataset, args.shadows, args.steps, "in-process"),
             "stacked": lambda: time_stacked(original, dataset, args.shadows, args.steps)}
    if args.pool:
        paths["pool"] = lambda: time_sequential(original, dataset, args.shadows, args.steps, "local")
    seconds: dict[str, list[float]] = {name: [] for name in paths}
    for round_index in range(args.rounds):  # interleaved, so load changes hit every path alike
        for name, measure in paths.items():
            seconds[name].append(measure())
            print(json.dumps({"preset": preset, "path": name, "round": round_index,
                              "seconds": round(seconds[name][-1], 3)}), flush=True)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    print(json.dumps({"preset": preset, "shadows": args.shadows, "steps": args.steps, "device": args.device,
                      "median_seconds": {k: round(v, 3) for k, v in medians.items()},
                      "stacked_vs_sequential": round(medians["stacked"] / medians["sequential"], 3),
                      **({"pool_vs_sequential": round(medians["pool"] / medians["sequential"], 3)}
                         if "pool" in medians else {})}), flush=True)


if __name__ == "__main__":
    main()
