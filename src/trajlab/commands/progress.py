"""Progress bars that count the updates `trajlab.training.steps.train_steps` makes (methods, shadow agents)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from trajlab.audit.trajauditor import AuditConfig
from trajlab.core.progress import tally, update_bar
from trajlab.training.steps import counting_updates


@contextlib.contextmanager
def counted_updates_bar(description: str, total: int | None, *, enabled: bool = True) -> Iterator[None]:
    """A bar of `total` updates, advanced by every update made inside the block (none when total is unknown)."""
    with update_bar(description, total or 0, enabled=enabled) as show, counting_updates(tally(show)):
        yield


def in_process_shadow_updates(auditor: AuditConfig) -> int:
    """Updates TrajAuditor's shadows make in this process (those trained by an executor elsewhere count none)."""
    return auditor.num_shadows * (auditor.shadow_steps or 0) if auditor.executor == "in-process" else 0
