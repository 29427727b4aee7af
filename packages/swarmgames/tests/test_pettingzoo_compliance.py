"""PettingZoo 1.27's official test suite against every environment of the package (issue 22:
api, parallel_api, seed, parallel_seed, max_cycles, render, state).  ``max_cycles_test`` runs
on the versioned modules exactly as shipped (default configs); the others use small configs
so the suite stays fast.  Render tests run under whatever matplotlib backend the machine has
(Agg on CI: ``human`` then keeps the frame instead of opening a window)."""

from functools import partial
from types import SimpleNamespace

import pytest
from pettingzoo.test import (
    api_test,
    max_cycles_test,
    parallel_api_test,
    parallel_seed_test,
    render_test,
    seed_test,
)
from pettingzoo.test.state_test import state_test

from swarmgames.core.config import from_dict
from swarmgames.fleet import aam_v1
from swarmgames.fleet.config import AamConfig, NetworkConfig
from swarmgames.games import coco_v1, flock_v1
from swarmgames.games.config import CocoConfig, FlockConfig

SMALL = {
    "flock": (flock_v1, FlockConfig(n_agents=4, steps=12)),
    "coco": (coco_v1, from_dict(CocoConfig, {"n_uavs": 3, "n_ues": 3, "steps": 6,
                                         "roi": {"grid": 10}})),
    "aam": (aam_v1, AamConfig(steps=12, network=NetworkConfig(n_vertiports=4, side_km=8.0,
                                                              n_depots=1),
                              fleets=((1, 1, 0), (0, 1, 1)), max_requests=3)),
}
NAMES = sorted(SMALL)


def small(name: str) -> SimpleNamespace:
    """The module's factories bound to its small config."""
    mod, cfg = SMALL[name]
    return SimpleNamespace(env=partial(mod.env, cfg=cfg), parallel_env=partial(
        mod.parallel_env, cfg=cfg))


@pytest.mark.parametrize("name", NAMES)
def test_api(name):
    api_test(small(name).env(), num_cycles=10)


@pytest.mark.parametrize("name", NAMES)
def test_parallel_api(name):
    parallel_api_test(small(name).parallel_env(), num_cycles=10)


@pytest.mark.parametrize("name", NAMES)
def test_seed(name):
    seed_test(small(name).env, num_cycles=8)


@pytest.mark.parametrize("name", NAMES)
def test_parallel_seed(name):
    parallel_seed_test(small(name).parallel_env, num_cycles=8)


@pytest.mark.parametrize("mod", [flock_v1, coco_v1, aam_v1], ids=["flock", "coco", "aam"])
def test_max_cycles_on_the_shipped_modules(mod):
    max_cycles_test(mod)


@pytest.mark.parametrize("name", NAMES)
def test_render(name):
    render_test(small(name).env)


@pytest.mark.parametrize("name", NAMES)
def test_state(name):
    f = small(name)
    state_test(f.env(), f.parallel_env(), num_cycles=5)


@pytest.mark.parametrize("mod", [flock_v1, coco_v1, aam_v1], ids=["flock", "coco", "aam"])
def test_versioned_names(mod):
    """The metadata name is the module's name with the package prefix."""
    name = mod.__name__.rsplit(".", 1)[1]
    assert mod.raw_env.metadata["name"] == f"swarmgames_{name}"
    assert mod.parallel_env().metadata["name"] == mod.env().metadata["name"]
