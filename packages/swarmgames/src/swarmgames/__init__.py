"""swarmgames: UAV swarms as graphical games over time-varying communication networks.

Two systems share one core (see ``shared/design/swarm-systems.md``):

* ``envs.flock`` -- graphical-game flocking (paper B, §4 of the design note);
* ``envs.coco``  -- communication-aware coverage, CoCo games (paper C, §5).

Layers (imports point down only): ``core`` <- ``games`` <- ``policies`` <- ``envs`` <- ``cli``.
"""

__version__ = "0.1.0"
