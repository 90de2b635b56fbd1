"""Environment registry over Gymnasium (MuJoCo, classic control; MiniGrid, Safety-Gymnasium, ALE as extras)."""

from trajlab.envs.registry import ENVIRONMENTS, EnvInfo, env_info, known_env_ids, make, make_many

__all__ = ["ENVIRONMENTS", "EnvInfo", "env_info", "known_env_ids", "make", "make_many"]
