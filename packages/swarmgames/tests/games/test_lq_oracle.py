"""§4.6 test 1: decentralised virtual-mean-neighbour solution equals the linear-system solve."""

import numpy as np
import pytest

from swarmgames.games.lq import LQGame
from swarmgames.games.random_games import random_connected_graph


def _game(seed: int, n: int = 12, general_sum: bool = True) -> LQGame:
    rng = np.random.default_rng(seed)
    w = (lambda lo, hi: rng.uniform(lo, hi, n)) if general_sum else (lambda lo, hi: np.full(n, lo))
    nbr = random_connected_graph(n, 0.25, rng)
    if general_sum:  # asymmetric neighbourhoods: drop some directions
        nbr = nbr & (rng.random((n, n)) < 0.8)
    return LQGame(p=rng.normal(0, 30, (n, 2)), v=rng.normal(0, 2, (n, 2)),
                  goal=rng.normal(0, 50, (n, 2)), nbr=nbr, tau=0.5, w_g=w(0.5, 1.5),
                  w_u=w(0.1, 0.3), w_c=w(0.05, 0.2), w_v=w(0.1, 0.5))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("general_sum", [False, True])
def test_mean_neighbour_equals_linear_solve(seed, general_sum):
    g = _game(seed, general_sum=general_sum)
    a_dec, res = g.solve_mean_neighbour(k_max=2000, tol=1e-12)
    a_lin = g.solve_centralised()
    np.testing.assert_allclose(a_dec, a_lin, atol=1e-8, rtol=0)


@pytest.mark.parametrize("seed", range(3))
def test_solution_is_nash(seed):
    """No unilateral deviation improves: the FOC solution is the stage NE (concave payoffs)."""
    g = _game(seed)
    a = g.solve_centralised()
    base = g.payoffs(a)
    rng = np.random.default_rng(100 + seed)
    for _ in range(50):
        i = rng.integers(len(a))
        b = a.copy()
        b[i] += rng.normal(0, 0.5, 2)
        assert g.payoffs(b)[i] <= base[i] + 1e-9


@pytest.mark.parametrize("seed", range(3))
def test_jacobi_residual_shrinks_geometrically(seed):
    g = _game(seed)
    m, _ = g.linear_system()
    d = np.diag(m)
    jac = np.eye(len(d)) - m / d[:, None]
    rho = float(np.abs(jac).sum(axis=1).max())  # ∞-norm bound from diagonal dominance
    assert rho < 1
    _, res = g.solve_mean_neighbour(k_max=60, tol=0)
    res = np.array(res)
    res = res[res > 1e-9]  # above round-off
    assert len(res) > 5
    assert np.all(res[1:] <= rho * res[:-1] * (1 + 1e-6))
    assert (res[1:] / res[:-1]).max() < 1
