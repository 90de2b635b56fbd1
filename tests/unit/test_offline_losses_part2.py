"""Hand-computed values for the distinctive pieces of BCQ, BEAR, PLAS-P, discrete BCQ and discrete CQL."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trajlab.algos import AGENTS
from trajlab.algos.base import new_agent
from trajlab.algos.offline.bcq import BCQ, BCQConfig
from trajlab.algos.offline.bear import BEAR, BEARConfig, gaussian_kernel, laplacian_kernel, mmd
from trajlab.algos.offline.discrete_bcq import allowed_actions, filtered_greedy, imitation_loss
from trajlab.algos.offline.discrete_cql import DiscreteCQL, DiscreteCQLConfig, conservative_penalty
from trajlab.algos.offline.plas import PLAS, LatentPerturbationActor, PLASConfig, squash_latent
from trajlab.core.config import load_preset
from trajlab.core.errors import TrajlabError
from trajlab.core.spec import SpaceSpec
from trajlab.nn.qlearning import (
    action_values,
    best_of_candidates,
    epsilon_greedy,
    soft_clipped_double_q,
    state_chunks,
)
from trajlab.nn.vae import ConditionalVAE, PerturbationActor, perturb, vae_loss

T = torch.tensor


def _set_linear(layer: torch.nn.Linear, weight: list, bias: list) -> None:
    with torch.no_grad():
        layer.weight.copy_(T(weight))
        layer.bias.copy_(T(bias))


# --- BCQ: VAE loss and perturbation -----------------------------------------------------------------------
def test_vae_loss_is_reconstruction_plus_half_kl():
    reconstruction = T([[0.5, -0.5], [0.2, 0.3]])
    actions = T([[0.0, 0.0], [0.2, 0.3]])
    mean = T([[1.0, 0.0], [0.0, 0.0]])
    log_std = T([[0.0, math.log(2.0)], [0.0, 0.0]])
    # sample 1: reconstruction (0.25 + 0.25) / 2 = 0.25; KL per latent dim 0.5 and 1.5 - ln 2, averaged
    # sample 2: perfect reconstruction and a posterior equal to the prior: 0
    expected = T([0.25 + 0.5 * (2.0 - math.log(2.0)) / 2.0, 0.0])
    assert torch.allclose(vae_loss(reconstruction, actions, mean, log_std, kl_weight=0.5), expected)


def test_vae_encoder_log_std_is_clamped_to_bcq_bounds():
    vae = ConditionalVAE(observation_dim=1, action_dim=1, hidden=())
    _set_linear(vae.encoder[0], [[0.0, 0.0]] * 4, [0.0, 0.0, 100.0, -100.0])
    _, log_std = vae.encode(T([[0.0]]), T([[0.0]]))
    assert torch.equal(log_std, T([[15.0, -4.0]]))


def test_perturbation_is_bounded_by_phi_and_clipped_to_the_box():
    actions = T([0.0, 0.99, -0.99, 0.5])
    raw = T([0.0, 100.0, -100.0, math.atanh(0.5)])
    assert torch.allclose(perturb(actions, raw, phi=0.05), T([0.0, 1.0, -1.0, 0.525]))


def test_perturbation_actor_never_moves_an_action_by_more_than_phi():
    actor = PerturbationActor(observation_dim=3, action_dim=2, hidden=(8,), phi=0.05)
    with torch.no_grad():
        for parameter in actor.parameters():
            parameter.mul_(50.0)  # saturate the tanh
    actions = torch.rand(64, 2) * 1.8 - 0.9
    moved = actor(torch.randn(64, 3), actions)
    assert ((moved - actions).abs() <= 0.05 + 1e-6).all()
    assert (moved - actions).abs().max() > 0.04


def test_soft_clipped_double_q_mixes_min_and_max():
    q_values = T([[1.0, 4.0], [3.0, 2.0]])  # [critics, batch]
    assert torch.allclose(soft_clipped_double_q(q_values, lam=0.75), T([0.75 * 1 + 0.25 * 3, 0.75 * 2 + 0.25 * 4]))


def test_best_of_candidates_picks_the_highest_value_per_state():
    candidates = T([[0.1], [0.2], [0.3], [0.4], [0.5], [0.6]])  # 2 states x 3 candidates
    values = T([1.0, 5.0, 2.0, 9.0, 0.0, 3.0])
    assert torch.equal(best_of_candidates(candidates, values, 3), T([[0.2], [0.4]]))


def test_bcq_deterministic_action_is_the_best_scored_candidate_and_inside_the_box():
    spec = SpaceSpec(3, 2, action_low=(-1.0, -1.0), action_high=(1.0, 1.0))
    agent = new_agent(BCQ, spec, BCQConfig(actor_hidden=(8,), critic_hidden=(8,), vae_hidden=(8,)), seed=0)
    observations = torch.randn(5, 3)
    action = agent.actor_action(observations, deterministic=True)
    assert torch.equal(action, agent.actor_action(observations, deterministic=True))
    assert (action.abs() <= 1.0).all()


# --- BEAR: maximum mean discrepancy ----------------------------------------------------------------------
def test_gaussian_kernel_and_mmd_by_hand():
    x = T([[[0.0], [1.0]]])  # one state, two 1-d samples
    y = T([[[0.0]]])
    e = math.exp(-0.5)  # exp(-1^2 / (2 * sigma)) with sigma = 1
    assert torch.allclose(gaussian_kernel(x, x, sigma=1.0), T([[[1.0, e], [e, 1.0]]]))
    assert torch.allclose(gaussian_kernel(x, y, sigma=1.0), T([[[1.0], [e]]]))
    # E k(x,x') = (1 + e) / 2, E k(y,y') = 1, E k(x,y) = (1 + e) / 2
    expected = math.sqrt((1 + e) / 2 + 1 - (1 + e) + 1e-6)
    assert torch.allclose(mmd(x, y, "gaussian", sigma=1.0), T([expected]))


def test_laplacian_kernel_and_mmd_by_hand():
    x = T([[[0.0, 0.0], [1.0, 1.0]]])
    y = T([[[0.0, 1.0]]])
    # exp(-L1 distance / (2 * sigma)) with sigma = 0.5: distances 2 within x, 1 from either x to y
    assert torch.allclose(laplacian_kernel(x, x, sigma=0.5), T([[[1.0, math.exp(-2)], [math.exp(-2), 1.0]]]))
    assert torch.allclose(laplacian_kernel(x, y, sigma=0.5), T([[[math.exp(-1)], [math.exp(-1)]]]))
    expected = math.sqrt((1 + math.exp(-2)) / 2 + 1 - 2 * math.exp(-1) + 1e-6)
    assert torch.allclose(mmd(x, y, "laplacian", sigma=0.5), T([expected]))


def test_mmd_is_per_state_and_near_zero_for_identical_sets():
    same = T([[[0.3, -0.2], [0.1, 0.4], [-0.5, 0.0]]])
    far = same + 10.0
    both = mmd(torch.cat([same, same]), torch.cat([same, far]), "laplacian", sigma=20.0)
    assert both.shape == (2,)
    assert torch.allclose(both[0], T(1e-3))  # sqrt(0 + 1e-6)
    assert both[1] > 0.5


def test_bear_actor_loss_is_only_the_mmd_term_during_warmup(tiny_dataset):
    config = BEARConfig(actor_hidden=(8,), critic_hidden=(8,), vae_hidden=(8,), warmup_steps=1)
    agent = new_agent(BEAR, tiny_dataset.spec, config, seed=0)
    agent.prepare(tiny_dataset)
    batch = tiny_dataset.sample(16, np.random.default_rng(0))
    warming = agent.compute_losses(batch)
    # during warmup: actor = alpha (MMD - eps) and the alpha loss is its negative
    assert torch.allclose(warming.actor, -warming.alpha)
    agent.update(batch)
    trained = agent.compute_losses(batch)
    assert not torch.allclose(trained.actor, -trained.alpha)


def test_bear_rejects_an_unknown_kernel():
    with pytest.raises(TrajlabError, match="mmd_kernel"):
        BEARConfig(mmd_kernel="cosine")


# --- PLAS: latent policy -----------------------------------------------------------------------------------
def test_latent_actions_are_squashed_to_the_max_latent_action():
    raw = T([0.0, 100.0, -100.0, math.atanh(0.5)])
    assert torch.allclose(squash_latent(raw, 2.0), T([0.0, 2.0, -2.0, 1.0]))


def _hand_set_plas_actor(vae: ConditionalVAE, actor: LatentPerturbationActor) -> None:
    _set_linear(actor.latent_policy[0], [[0.0], [0.0]], [math.atanh(0.5), -math.atanh(0.25)])  # z = (1.0, -0.5)
    _set_linear(vae.decoder[0], [[0.5, 1.0, -1.0]], [-2.0])  # tanh(0.5 s + z1 - z2 - 2)
    _set_linear(actor.perturbation.body[0], [[0.0, 0.0]], [math.atanh(0.4)])  # + 0.05 * 0.4


def test_plas_actor_decodes_the_latent_action_then_perturbs_it():
    vae = ConditionalVAE(observation_dim=1, action_dim=1, hidden=())
    actor = LatentPerturbationActor(1, 1, vae.latent_dim, hidden=(), max_latent_action=2.0, phi=0.05)
    _hand_set_plas_actor(vae, actor)
    observations = T([[2.0]])
    assert torch.allclose(actor.latent_action(observations), T([[1.0, -0.5]]))
    assert torch.allclose(vae.decode(observations, T([[1.0, -0.5]])), T([[math.tanh(0.5)]]))
    assert torch.allclose(actor(observations, vae), T([[math.tanh(0.5) + 0.02]]))


def test_plas_agent_acts_with_its_latent_policy_in_the_env_action_box():
    spec = SpaceSpec(1, 1, action_low=(0.0,), action_high=(4.0,))
    agent = new_agent(PLAS, spec, PLASConfig(actor_hidden=(), critic_hidden=(8,), vae_hidden=()), seed=0)
    _hand_set_plas_actor(agent.vae, agent.actor)
    # [-1, 1] -> [0, 4]: centre 2, half-range 2
    assert np.allclose(agent.act(np.array([2.0]), deterministic=True), [2.0 + 2.0 * (math.tanh(0.5) + 0.02)])


def test_plas_trains_only_the_vae_while_pretraining_and_freezes_it_after(tiny_dataset):
    config = PLASConfig(actor_hidden=(8,), critic_hidden=(8,), vae_hidden=(8,), vae_pretrain_steps=2)
    agent = new_agent(PLAS, tiny_dataset.spec, config, seed=0)
    agent.prepare(tiny_dataset)

    def snapshot():
        return {name: torch.cat([p.detach().flatten().clone() for p in agent.networks[name].parameters()])
                for name in ("vae", "actor", "critic")}

    batches = [tiny_dataset.sample(16, np.random.default_rng(i)) for i in range(4)]
    start = snapshot()
    assert set(agent.update(batches[0])) == {"vae_loss"}
    agent.update(batches[1])
    pretrained = snapshot()
    assert not torch.equal(start["vae"], pretrained["vae"])
    assert torch.equal(start["actor"], pretrained["actor"]) and torch.equal(start["critic"], pretrained["critic"])
    assert set(agent.compute_losses(batches[2]).terms()) == {"critic", "actor"}
    agent.update(batches[2])
    agent.update(batches[3])
    trained = snapshot()
    assert torch.equal(pretrained["vae"], trained["vae"])
    assert not torch.equal(pretrained["actor"], trained["actor"])
    assert not torch.equal(pretrained["critic"], trained["critic"])


# --- discrete BCQ: action filtering ---------------------------------------------------------------------
def test_discrete_bcq_allows_actions_above_threshold_times_the_most_likely():
    log_probs = T([[0.5, 0.3, 0.2], [0.7, 0.2, 0.1]]).log()
    # ratios to the row maximum: (1, 0.6, 0.4) and (1, 0.286, 0.143)
    assert torch.equal(allowed_actions(log_probs, 0.3), T([[True, True, True], [True, False, False]]))
    assert allowed_actions(log_probs, 0.0).all()
    q_values = T([[1.0, 5.0, 3.0], [1.0, 5.0, 3.0]])
    assert torch.equal(filtered_greedy(q_values, log_probs, 0.3), T([1, 0]))
    assert torch.equal(filtered_greedy(q_values, log_probs, 0.0), T([1, 1]))
    assert torch.equal(filtered_greedy(q_values, log_probs, 0.99), T([0, 0]))  # only the most likely is left


def test_discrete_bcq_imitation_loss_by_hand():
    logits = T([[0.0, 0.0], [1.0, -1.0]])
    actions = T([0, 1])
    # -log 1/2; -log(e^-1 / (e^1 + e^-1)) = log(1 + e^2), plus 0.01 * mean(1, 1)
    expected = T([math.log(2.0), math.log(1 + math.exp(2.0)) + 0.01])
    assert torch.allclose(imitation_loss(logits, actions, logit_penalty=0.01), expected)


# --- discrete CQL: logsumexp - Q(a) ------------------------------------------------------------------------
def test_discrete_cql_penalty_by_hand():
    q_values = T([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    actions = T([0, 2, 1])
    lse = 3.0 + math.log(1.0 + math.exp(-1.0) + math.exp(-2.0))
    assert torch.allclose(conservative_penalty(q_values, actions), T([lse - 1.0, lse - 3.0, math.log(3.0)]))


def test_discrete_cql_conservative_term_is_alpha_times_the_penalty(tiny_discrete_dataset):
    config = DiscreteCQLConfig(hidden=(8,), alpha=2.5)
    agent = new_agent(DiscreteCQL, tiny_discrete_dataset.spec, config, seed=0)
    batch = tiny_discrete_dataset.sample(16, np.random.default_rng(0))
    losses = agent.compute_losses(batch)
    expected = 2.5 * conservative_penalty(agent.q_network(batch.observations), batch.actions)
    assert torch.allclose(losses.conservative, expected)


# --- discrete helpers --------------------------------------------------------------------------------------
def test_action_values_gathers_taken_actions_for_every_ensemble_member():
    q_values = T([[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]])  # [2 members, 2 states, 2 actions]
    assert torch.equal(action_values(q_values, T([1, 0])), T([[2.0, 3.0], [6.0, 7.0]]))
    assert torch.equal(action_values(q_values[0], T([1, 0])), T([2.0, 3.0]))


def test_epsilon_greedy_keeps_greedy_actions_at_zero_and_randomises_at_one():
    greedy = torch.zeros(2000, dtype=torch.int64)
    assert torch.equal(epsilon_greedy(greedy, 4, 0.0), greedy)
    torch.manual_seed(0)
    random = epsilon_greedy(greedy, 4, 1.0)
    assert set(random.tolist()) == {0, 1, 2, 3}


# --- presets ----------------------------------------------------------------------------------------------
PART2 = ["bcq", "bear", "plas", "discrete_bc", "discrete_bcq", "discrete_cql", "discrete_iql"]


@pytest.mark.parametrize("algo", PART2)
def test_paper_preset_is_the_published_default_and_quick_is_small(algo):
    config_class = AGENTS.get(algo).config_class
    assert load_preset(config_class, f"offline/{algo}", "paper") == config_class()
    quick = load_preset(config_class, f"offline/{algo}", "quick")
    widths = [w for name in ("hidden", "actor_hidden", "critic_hidden", "vae_hidden") for w in getattr(quick, name, ())]
    assert widths and max(widths) <= 64 and quick.batch_size <= 64


@pytest.mark.parametrize("algo", ["bcq", "bear", "plas"])
def test_continuous_paper_presets_have_trajdeleters_rates_and_batch(algo):
    config = load_preset(AGENTS.get(algo).config_class, f"offline/{algo}", "paper")
    assert (config.actor_lr, config.critic_lr, config.batch_size, config.gamma, config.tau) == (
        1e-4, 3e-4, 256, 0.99, 0.005)


def test_state_chunks_keep_about_a_thousand_candidate_rows_per_chunk():
    states = torch.arange(256.0).unsqueeze(1)
    chunks = state_chunks(states, samples_per_state=10)
    assert [len(chunk) for chunk in chunks] == [102, 102, 52]
    assert torch.equal(torch.cat(chunks), states)
    assert len(state_chunks(states, samples_per_state=2000)) == 256  # at least one state per chunk
