"""Learning to a threshold at the quick preset (slow: minutes on one core; run with -m slow)."""

import json

import pytest

from trajlab.commands.safe import SafeTrainConfig, SafeUnlearnConfig, train, unlearn

pytestmark = pytest.mark.slow


def test_unsafe_expert_learns_and_concept_unlearning_lowers_its_cost(tmp_path):
    unsafe = train(SafeTrainConfig(role="unsafe", updates=60, out=str(tmp_path / "unsafe")), progress=False)
    early = sum(row["rollout_reward_per_step"] for row in unsafe["curve"][:10]) / 10
    late = sum(row["rollout_reward_per_step"] for row in unsafe["curve"][-10:]) / 10
    assert late > early + 0.003  # ~3 more reward per 1,000-step episode: it moves towards goals
    concept = unlearn(SafeUnlearnConfig(agent=str(tmp_path / "unsafe"), method="concept", updates=30,
                                        out=str(tmp_path / "concept")), progress=False)
    before = sum(row["rollout_cost_rate"] for row in unsafe["curve"][-10:]) / 10
    after = sum(row["rollout_cost_rate"] for row in concept["curve"][-10:]) / 10
    assert after < before
    assert json.loads((tmp_path / "concept" / "result.json").read_text())["method"] == "concept"
