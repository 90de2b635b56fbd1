"""trajlab: attribution, unlearning, auditing, privacy and explanation for the data behind RL agents."""

__version__ = "0.1.0"

__all__ = ["__version__"]
