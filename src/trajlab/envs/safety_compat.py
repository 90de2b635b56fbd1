"""Lets safety-gymnasium 1.0.0 (written for gymnasium 0.28 and Python <= 3.10) import on gymnasium 1.0 + 3.11.

`install()` must run before the first `import safety_gymnasium`; `trajlab.envs.safety` calls it. It provides:
(1) the wrapper modules gymnasium 1.0 removed or renamed, (2) a stand-in for `gymnasium_robotics` (only its
multi-agent tasks use it; trajlab never makes them), (3) hashable colour arrays, since Python 3.11 rejects an
unhashable dataclass default (`color: np.array = COLOR[...]`), (4) an `EnvSpec` that accepts the two fields
gymnasium 1.0 dropped (`autoreset`, `apply_api_compatibility`), which its `make` passes.
"""

from __future__ import annotations

import importlib.util
import sys
import types

import numpy as np


class _HashableArray(np.ndarray):
    """A colour array that dataclasses accept as a default (hashed by identity; colours are never mutated)."""

    __hash__ = object.__hash__


def _module(name: str, **attributes: object) -> None:
    if name not in sys.modules:
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        sys.modules[name] = module


def _removed_gymnasium_modules() -> None:
    import gymnasium.wrappers as wrappers
    from gymnasium.wrappers.utils import RunningMeanStd

    _module("gymnasium.wrappers.compatibility", EnvCompatibility=object)  # used only with apply_api_compatibility
    _module("gymnasium.wrappers.autoreset", AutoResetWrapper=wrappers.Autoreset)
    _module("gymnasium.wrappers.time_limit", TimeLimit=wrappers.TimeLimit)
    _module("gymnasium.wrappers.env_checker", PassiveEnvChecker=wrappers.PassiveEnvChecker)
    _module("gymnasium.wrappers.normalize", NormalizeObservation=wrappers.NormalizeObservation,
            NormalizeReward=wrappers.NormalizeReward, RunningMeanStd=RunningMeanStd)
    for name in ("gymnasium_robotics", "gymnasium_robotics.envs", "gymnasium_robotics.envs.multiagent_mujoco"):
        _module(name)
    _module("gymnasium_robotics.envs.multiagent_mujoco.mujoco_multi", MultiAgentMujocoEnv=object)


def _hashable_colours() -> None:
    """Load safety_gymnasium.assets.color alone (its package's __init__ would import everything) and freeze it."""
    name = "safety_gymnasium.assets.color"
    if name in sys.modules:
        return
    package = importlib.util.find_spec("safety_gymnasium")
    if package is None or not package.submodule_search_locations:
        return
    spec = importlib.util.spec_from_file_location(name, f"{package.submodule_search_locations[0]}/assets/color.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    module.COLOR = {key: np.asarray(value).view(_HashableArray) for key, value in module.COLOR.items()}
    sys.modules[name] = module


def _env_spec_with_old_fields() -> None:
    from gymnasium.envs.registration import EnvSpec

    class _SpecType(type):
        def __instancecheck__(cls, instance: object) -> bool:  # its make() asserts isinstance(spec, EnvSpec)
            return isinstance(instance, EnvSpec)

    class OldEnvSpec(metaclass=_SpecType):
        def __new__(cls, *args: object, autoreset: object = None, apply_api_compatibility: object = None,
                    **kwargs: object) -> EnvSpec:  # type: ignore[misc]
            return EnvSpec(*args, **kwargs)  # type: ignore[arg-type]

    import safety_gymnasium.utils.registration as registration

    registration.EnvSpec = OldEnvSpec  # type: ignore[misc,assignment]


def install() -> None:
    """Patch what safety-gymnasium 1.0.0 needs, import it; idempotent."""
    _removed_gymnasium_modules()
    _hashable_colours()
    _env_spec_with_old_fields()
