"""Types, protocols, seeding, configs, run directories and checkpoint I/O shared by every part of trajlab.

`Agent`, `Batch` and `LossOutput` load on first use (they need torch), so that importing a light module such as
`trajlab.core.config` or `trajlab.core.errors` stays fast.
"""

from typing import Any

from trajlab.core.errors import TrajlabError

__all__ = ["Agent", "Batch", "LossOutput", "TrajlabError"]


def __getattr__(name: str) -> Any:
    if name in ("Agent", "Batch", "LossOutput"):
        from trajlab.core import protocols

        return getattr(protocols, name)
    raise AttributeError(f"module 'trajlab.core' has no attribute {name!r}")
