"""trajlab: the data behind RL agents. Datasets with stable ids, offline and online agents, forgetting chosen
trajectories and auditing that they are gone; docs/architecture.md shows how the parts fit."""

__version__ = "0.1.0"

__all__ = ["__version__"]
