"""Multi-agent RL for the AAM fleet game: configs, rollouts, PPO/REINFORCE, evaluation,
encoder benchmark (design note §3.4-§3.6)."""
