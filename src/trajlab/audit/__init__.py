"""Auditing: evidence of what an agent was trained on (TrajAuditor for offline RL trajectories, and a
likelihood-ratio membership test with calibrated error rates)."""

from trajlab.audit.canaries import canary_ids, plant_canaries
from trajlab.audit.lira import LiraAuditor, LiraConfig, LiraResult
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
    "LiraAuditor",
    "LiraConfig",
    "LiraResult",
    "TrajAuditor",
    "TrajectoryVerdict",
    "efficacy_evaluation",
    "grubbs_critical_value",
    "canary_ids",
    "membership_metrics",
    "plant_canaries",
]
