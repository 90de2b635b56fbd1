"""Evaluation: rollouts, returns, normalised scores, frame capture."""

from trajlab.eval.rollouts import EvalResult, capture_frames, evaluate, policy_rollout
from trajlab.eval.scores import normalized_score, reference_returns

__all__ = ["EvalResult", "capture_frames", "evaluate", "normalized_score", "policy_rollout", "reference_returns"]
