"""Agents. Importing `trajlab.algos` registers every built-in algorithm in `AGENTS`."""

from trajlab.algos.base import (
    AGENTS,
    AgentBase,
    RuntimeOptions,
    load_agent,
    new_agent,
    save_agent,
    start_from_checkpoint,
)

__all__ = ["AGENTS", "AgentBase", "RuntimeOptions", "load_agent", "new_agent", "save_agent", "start_from_checkpoint"]


def _register_builtin() -> None:
    import importlib
    import pkgutil

    import trajlab.algos as package

    for family in ("online", "offline"):
        try:
            module = importlib.import_module(f"{package.__name__}.{family}")
        except ModuleNotFoundError:
            continue
        for info in pkgutil.iter_modules(module.__path__):
            importlib.import_module(f"{module.__name__}.{info.name}")


_register_builtin()
