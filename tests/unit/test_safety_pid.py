"""PID-Lagrangian controller against hand-computed values, and its checkpoint round trip."""

import pytest

from trajlab.algos.online.ppo_lagrangian import PIDLagrangian, PPOLagrangianConfig
from trajlab.core.errors import TrajlabError


def config(**changes):
    values = dict(kp=1.0, ki=0.5, kd=2.0, target_cost=0.1, pid_ema=0.5, pid_delay=2, lambda_max=10.0,
                  integral_max=0.3, pid_cost_scale=1.0)
    return PPOLagrangianConfig(**{**values, **changes})


def test_pid_steps_match_hand_computation():
    pid = PIDLagrangian(config())
    # step 1: J=0.5, delta=0.4; I=0.2; P=0.5*0+0.5*0.4=0.2; EMA(J)=0.25; D=max(0, 0.25-0)=0.25
    # lambda = 1*0.2 + 0.2 + 2*0.25 = 0.9
    assert pid.step(0.5) == pytest.approx(0.9)
    # step 2: J=0.5, delta=0.4; I=min(0.4, 0.3)=0.3; P=0.3; EMA(J)=0.375; D=0.375-history[0] (0.0)=0.375
    # lambda = 0.3 + 0.3 + 0.75 = 1.35
    assert pid.step(0.5) == pytest.approx(1.35)
    # step 3: J=0, delta=-0.1; I=0.25; P=0.1; EMA(J)=0.1875; D=max(0, 0.1875-0.25)=0; lambda=0.35
    assert pid.step(0.0) == pytest.approx(0.35)
    assert pid.integral == pytest.approx(0.25)


def test_pid_lambda_is_clipped_to_zero_and_lambda_max():
    low = PIDLagrangian(config())
    assert low.step(0.0) == 0.0  # negative P and zero I and D: lambda clipped at 0
    assert low.integral == 0.0
    high = PIDLagrangian(config(kp=1000.0, lambda_max=3.0))
    assert high.step(1.0) == 3.0


def test_pid_state_round_trip_continues_identically():
    first, second = PIDLagrangian(config()), PIDLagrangian(config())
    for rate in (0.5, 0.2, 0.7):
        first.step(rate)
    second.load(first.state())
    assert second.step(0.3) == pytest.approx(first.step(0.3))


def test_cost_scale_turns_cost_rates_into_episode_costs():
    pid = PIDLagrangian(config(pid_cost_scale=1000.0, integral_max=100.0, lambda_max=100.0))
    # J = 0.05 * 1000 = 50, d = 100: delta = -50 -> I = 0, P = -25, D = max(0, 25 - 0) = 25: lambda = -25 + 50 = 25
    assert pid.step(0.05) == pytest.approx(25.0)


def test_negative_target_cost_is_rejected():
    with pytest.raises(TrajlabError, match="target_cost"):
        PPOLagrangianConfig(target_cost=-0.1)
