"""Slow: each offline algorithm, quick preset, learns well above random return on a generated Pendulum dataset.

The dataset is medium-expert data of a small SAC behaviour policy (`trajlab.commands.generate`, about a minute);
each agent then trains for 3,000 updates (10-60 s on 2 CPU cores) and is evaluated on 5 episodes.
Run with `pytest -m slow tests/smoke/test_offline_learning.py`.
"""

from __future__ import annotations

import pytest

from trajlab.commands.generate import GenerateConfig
from trajlab.commands.generate import run as generate
from trajlab.training.offline import TrainConfig, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pendulum_medium_expert(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pendulum")
    config = GenerateConfig(
        env_id="Pendulum-v1", quality="medium-expert", out=str(folder / "medium-expert.hdf5"), sac_steps=6000,
        snapshot_every=1000, learning_starts=1000, dataset_size=10_000, eval_episodes=3, reference_episodes=5,
        sac_overrides={"hidden": [64, 64]},
    )
    summary = generate(config, progress=False)
    assert summary["expert_return"] > summary["random_return"] + 300  # the behaviour policy did learn
    return summary


@pytest.mark.parametrize("algo", ["bc", "td3_bc", "iql", "awac", "cql"])
def test_learns_above_random_return(tmp_path, pendulum_medium_expert, algo):
    result = run(TrainConfig(algo=algo, dataset=pendulum_medium_expert["out"], steps=3000, eval_every=3000,
                             eval_episodes=5, out=str(tmp_path / algo), progress=False, threads=1))
    # score vs the behaviour policies: 0 = the random policy's return, 100 = the best behaviour snapshot's;
    # D4RL has no Pendulum reference, so the D4RL normalised score does not apply
    assert result["eval_behaviour_normalized_score"] > 20.0, result
    assert result["eval_normalized_score"] is None, result
    assert result["eval_mean_return"] > pendulum_medium_expert["random_return"] + 150, result
