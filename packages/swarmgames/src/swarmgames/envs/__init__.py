"""Simulators (flocking, CoCo coverage) and their PettingZoo ParallelEnv wrappers."""
