"""Shared world core: seeds, config validation, kinematics, channel, comm graph, mobility,
metrics and rendering (design note §2)."""
