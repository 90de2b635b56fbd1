"""check_agent over every configuration of every registered agent (tiny networks), its capabilities included.

The cases come from the registry (`AGENT_SETTINGS` in conftest.py); a registered agent without settings fails here.
"""

from __future__ import annotations

import pytest

from trajlab.algos import AGENTS
from trajlab.algos.offline.base import OfflineAgent
from trajlab.core.protocols import Agent, Counted, LossScalable, OnDevice, Preparable, Rebuildable
from trajlab.testing import check_agent

BUILTIN_CAPABILITIES = {Agent, LossScalable, Rebuildable, Counted, OnDevice}
"""What AgentBase gives every built-in agent (offline agents are also Preparable)."""


def test_every_registered_agent_has_settings(agent_settings):
    missing = sorted(set(AGENTS.names()) - set(agent_settings))
    assert not missing, f"registered agents without contract-test settings in tests/contract/conftest.py: {missing}"
    assert not set(agent_settings) - set(AGENTS.names()), "settings for agents that are not registered"


def _run_check_agent(case, tiny_dataset, tiny_discrete_dataset, **extra):
    dataset = tiny_discrete_dataset if case.discrete else tiny_dataset
    return check_agent(case.factory(dataset.spec, **extra), dataset)


def test_check_agent(agent_case, tiny_dataset, tiny_discrete_dataset):
    capabilities = _run_check_agent(agent_case, tiny_dataset, tiny_discrete_dataset)
    offline = issubclass(AGENTS.get(agent_case.algo), OfflineAgent)
    assert set(capabilities) >= BUILTIN_CAPABILITIES | ({Preparable} if offline else set())


@pytest.mark.slow  # torch.compile takes 10-60 s per algorithm on a 2-core CPU
def test_check_agent_compiled(offline_algo, tiny_dataset, tiny_discrete_dataset):
    _run_check_agent(offline_algo, tiny_dataset, tiny_discrete_dataset, compile=True)
