"""Auditing: evidence of what an agent was trained on (TrajAuditor for offline RL trajectories)."""

from trajlab.audit.trajauditor import (
    AuditConfig,
    AuditResult,
    TrajAuditor,
    TrajectoryVerdict,
    efficacy_evaluation,
    grubbs_critical_value,
    membership_metrics,
)

__all__ = [
    "AuditConfig",
    "AuditResult",
    "TrajAuditor",
    "TrajectoryVerdict",
    "efficacy_evaluation",
    "grubbs_critical_value",
    "membership_metrics",
]
