"""Which registered agents the offline commands (`train`, `poison`) accept."""

from __future__ import annotations

from trajlab.core.errors import TrajlabError


def offline_algorithms() -> list[str]:
    from trajlab.algos import AGENTS

    return [name for name in AGENTS.names() if not _is_online(name)]


def check_offline_algorithm(name: str) -> None:
    """Reject an online or unknown algorithm, saying which command trains an online one."""
    from trajlab.algos import AGENTS

    if name in AGENTS and _is_online(name):
        raise TrajlabError(f"{name} is an online algorithm (it learns by acting in an environment, not from a "
                           f"dataset); train it with `trajlab train-online --algo {name} --env ENV`")
    offline = offline_algorithms()
    if name not in offline:
        raise TrajlabError(f"unknown algorithm {name!r}; offline algorithms: {', '.join(offline)}")


def _is_online(name: str) -> bool:
    """Offline agents learn from a dataset through `OfflineAgent` (data statistics, batch preprocessing)."""
    from trajlab.algos import AGENTS
    from trajlab.algos.offline.base import OfflineAgent

    return not issubclass(AGENTS.get(name), OfflineAgent)
