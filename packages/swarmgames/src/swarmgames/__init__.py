"""swarmgames: UAV swarms as graphical games over time-varying communication networks, and
the advanced-air-mobility fleet game.

Three systems share one core (see ``shared/design/swarm-systems.md`` and the README's
ARCHITECTURE section):

* ``games.flock`` -- graphical-game flocking (paper B, §4 of the design note);
* ``games.coco``  -- communication-aware coverage, CoCo games (paper C, §5);
* ``fleet.sim``   -- the AAM fleet game with HetGAT policies trained by MARL (paper A, §3).

Layers (imports point down only): ``core`` <- {``games``, ``fleet``} (siblings that never
import each other) <- ``runner`` / ``compare`` / ``cli``.  ``tests/test_layers.py`` checks it.
"""

__version__ = "0.1.0"
