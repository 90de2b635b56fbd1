"""Online RL agents (SAC with DroQ and reset options; PPO-Lagrangian later)."""
