"""Offline RL agents, one readable file each. Importing `trajlab.algos` registers them all."""
