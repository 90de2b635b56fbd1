"""Agents. Importing `trajlab.algos` registers every built-in algorithm in `AGENTS`."""

from trajlab.algos.base import AGENTS, AgentBase, load_agent, save_agent

__all__ = ["AGENTS", "AgentBase", "load_agent", "save_agent"]


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
