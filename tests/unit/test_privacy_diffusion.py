"""The transition diffusion model: EDM preconditioning by hand, the sampler, the loss, standardisation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trajlab.core.errors import TrajlabError
from trajlab.privacy.diffusion import (
    Denoiser,
    DiffusionConfig,
    Standardiser,
    check_diffusion_config,
    heun_sample,
    loss_weight,
    per_sample_loss,
    preconditioning,
    sampler_sigmas,
    transition_matrix,
)
from trajlab.testing import synthetic_dataset

TINY = DiffusionConfig(width=32, depth=2, projection=16, time_features=16, sample_steps=6)


def test_preconditioning_matches_hand_computed_values():
    c_skip, c_out, c_in, c_noise = preconditioning(torch.tensor([1.0, 2.0, math.exp(4.0)]), sigma_data=1.0)
    # sigma = 1: 1/2, 1/sqrt2, 1/sqrt2, ln(1)/4 = 0;  sigma = 2: 1/5, 2/sqrt5, 1/sqrt5, ln(2)/4
    assert c_skip[:2].tolist() == pytest.approx([0.5, 0.2])
    assert c_out[:2].tolist() == pytest.approx([1 / math.sqrt(2), 2 / math.sqrt(5)])
    assert c_in[:2].tolist() == pytest.approx([1 / math.sqrt(2), 1 / math.sqrt(5)])
    assert c_noise.tolist() == pytest.approx([0.0, math.log(2) / 4, 1.0])
    assert loss_weight(torch.tensor([1.0, 2.0]), 1.0).tolist() == pytest.approx([2.0, 1.25])
    # sigma_data 0.5, sigma 0.5: c_skip 1/2, c_out 0.25/sqrt(0.5), weight 0.5 / 0.0625 = 8
    c_skip, c_out, _, _ = preconditioning(torch.tensor([0.5]), sigma_data=0.5)
    assert (c_skip.item(), c_out.item()) == pytest.approx((0.5, 0.25 / math.sqrt(0.5)))
    assert loss_weight(torch.tensor([0.5]), 0.5).item() == pytest.approx(8.0)


def test_sampler_noise_levels_follow_the_edm_schedule():
    sigmas = sampler_sigmas(DiffusionConfig(sample_steps=128))
    assert len(sigmas) == 129 and sigmas[-1] == 0
    assert sigmas[0].item() == pytest.approx(80.0) and sigmas[-2].item() == pytest.approx(0.002)
    assert bool((sigmas[1:] < sigmas[:-1]).all())
    # EDM eq. 5 at the midpoint of 3 steps: ((80^(1/7) + 0.002^(1/7)) / 2)^7
    middle = sampler_sigmas(DiffusionConfig(sample_steps=3))[1].item()
    assert middle == pytest.approx(((80 ** (1 / 7) + 0.002 ** (1 / 7)) / 2) ** 7, rel=1e-5)


def test_sampler_shape_and_determinism_with_a_seed():
    torch.manual_seed(0)
    model = Denoiser(5, TINY)

    def draw(seed: int) -> torch.Tensor:
        return heun_sample(model, 7, 5, TINY, torch.Generator().manual_seed(seed))

    first = draw(3)
    assert first.shape == (7, 5) and torch.isfinite(first).all()
    assert torch.equal(first, draw(3))
    assert not torch.equal(first, draw(4))


def test_per_sample_loss_has_one_value_per_row_and_each_depends_only_on_its_row():
    torch.manual_seed(0)
    model = Denoiser(3, TINY)
    x, noise, sigma = torch.randn(4, 3), torch.randn(4, 3), torch.tensor([0.1, 0.5, 1.0, 5.0])
    losses = per_sample_loss(model, x, sigma, noise, 1.0)
    assert losses.shape == (4,)
    changed = x.clone()
    changed[2] += 10.0
    others = per_sample_loss(model, changed, sigma, noise, 1.0)
    assert torch.allclose(others[[0, 1, 3]], losses[[0, 1, 3]]) and others[2] != losses[2]


def test_loss_decreases_on_a_toy_gaussian():
    from trajlab.privacy.diffusion import edm_loss

    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    # narrow and off-centre: a unit-variance Gaussian at sigma_data 1 is already near what c_skip alone achieves
    mix = torch.tensor([[0.1, 0.0], [0.08, 0.06]])
    data = torch.randn(2000, 2, generator=generator) @ mix + torch.tensor([0.5, -0.3])
    model = Denoiser(2, DiffusionConfig(width=64, depth=2, projection=32))
    sigma = torch.tensor([0.05, 0.2, 0.5, 1.0, 2.0]).repeat(100)
    probe, noise = data[:500], torch.randn(500, 2, generator=generator)

    def held_loss() -> float:
        with torch.no_grad():
            return per_sample_loss(model, probe, sigma, noise, 1.0).mean().item()

    before = held_loss()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(300):
        loss = edm_loss(model, data[torch.randint(2000, (128,), generator=generator)], TINY, generator).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert held_loss() < 0.6 * before


def test_fourier_features_are_frozen_and_no_batchnorm_anywhere():
    model = Denoiser(4, TINY)
    names = {name for name, _ in model.named_parameters()}
    assert not any("weights" in name for name in names)
    assert any(name.endswith("time_mlp.0.weights") for name in model.state_dict())
    assert not any(isinstance(module, torch.nn.modules.batchnorm._BatchNorm) for module in model.modules())


def test_standardisation_round_trips_and_leaves_done_alone():
    dataset = synthetic_dataset(num_episodes=4, episode_length=10)
    rows = transition_matrix(dataset)
    assert rows.shape == (40, 4 + 2 + 1 + 4 + 1)
    scaler = Standardiser.fit(rows * 3 + 1)
    standard = scaler.forward(rows * 3 + 1)
    assert np.allclose(standard[:, :-1].mean(axis=0), 0, atol=1e-5)
    assert np.allclose(standard[:, :-1].std(axis=0), 1, atol=1e-4)
    assert np.array_equal(standard[:, -1], rows[:, -1] * 3 + 1)
    back = scaler.inverse(scaler.forward(rows))
    assert np.allclose(back[:, :-1], rows[:, :-1], atol=1e-5)
    assert np.array_equal(back[:, -1], rows[:, -1])
    assert set(np.unique(scaler.inverse(np.full((3, 12), 0.6, dtype=np.float32))[:, -1])) == {1.0}


def test_constant_column_does_not_divide_by_zero():
    rows = np.array([[1.0, 2.0, 0.0], [1.0, 4.0, 1.0]], dtype=np.float32)
    scaler = Standardiser.fit(rows)
    assert scaler.std[0] == 1.0 and np.isfinite(scaler.forward(rows)).all()


def test_discrete_actions_and_bad_configs_are_user_errors():
    with pytest.raises(TrajlabError, match="discrete"):
        transition_matrix(synthetic_dataset(discrete=True, action_dim=3))
    with pytest.raises(TrajlabError, match="time_features"):
        check_diffusion_config(DiffusionConfig(time_features=5))
    with pytest.raises(TrajlabError, match="sigma_min"):
        check_diffusion_config(DiffusionConfig(sigma_min=1.0, sigma_max=0.5))
