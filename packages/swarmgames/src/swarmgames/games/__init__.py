"""Graphical stage-game engine shared by the flocking and CoCo systems (design note §6)."""
