"""Stage-game engine: potential property, certificates, decomposition exactness, enumeration
(design note §4.6 tests 2–4)."""

import numpy as np
import pytest

from swarmgames.games import equilibrium as eq
from swarmgames.games.payoffs_flocking import FlockPayoffConfig
from swarmgames.games.random_games import random_connected_graph, random_flock_game
from swarmgames.games.solvers import best_response, mean_neighbor
from swarmgames.games.solvers.exhaustive import enumerate_game
from swarmgames.games.stage_game import StageGame


def test_payoffs_match_direct_formula():
    """local_payoffs on a pure profile equals u_i computed term by term."""
    rng = np.random.default_rng(0)
    g = random_flock_game(6, rng, spread=4.0, heterogeneity=0.3)
    a = np.array([rng.choice(np.flatnonzero(g.mask[i])) for i in range(g.n)])
    f = g.features[np.arange(g.n), a]
    for i in range(g.n):
        nb = np.flatnonzero(g.nbr[i])
        u = g.unary[i, a[i]]
        if len(nb):
            m = f[nb].mean(axis=0)
            u -= len(nb) * np.sum(g.agg_weight[i] * (f[i] - m) ** 2)
            u += sum(g.kernel(f[i], f[j]) for j in nb)
        assert g.payoffs(a)[i] == pytest.approx(u, abs=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_exact_potential_property_symmetric_case(seed):
    rng = np.random.default_rng(seed)
    g = random_flock_game(7, rng, spread=5.0, heterogeneity=0.0)
    assert g.is_symmetric()
    assert len(g.pair_src) > 0  # separation terms active
    assert eq.potential_check(g, rng, trials=60) < 1e-9


def test_general_sum_is_not_potential():
    rng = np.random.default_rng(1)
    g = random_flock_game(7, rng, spread=5.0, heterogeneity=0.5)
    assert not g.is_symmetric()
    assert eq.potential_check(g, rng, trials=60) > 1e-6


@pytest.mark.parametrize("seed", range(4))
def test_async_best_response_reaches_pure_ne_in_potential_game(seed):
    rng = np.random.default_rng(seed)
    g = random_flock_game(8, rng, levels=5, spread=5.0)
    init = np.argmax(g.masked(g.unary), axis=1)
    res = best_response.solve(g, init, k_max=100)
    assert res.converged
    assert eq.epsilon(g, res.profile) == 0.0
    assert g.potential(res.profile) >= g.potential(init) - 1e-9


def test_certificates_consistent():
    rng = np.random.default_rng(3)
    g = random_flock_game(6, rng, spread=5.0, heterogeneity=0.3)
    a = np.array([rng.choice(np.flatnonzero(g.mask[i])) for i in range(g.n)])
    r = eq.regrets(g, a)
    assert np.all(r >= 0)
    assert eq.epsilon(g, a) == pytest.approx(r.max())
    assert eq.nash_conv(g, a) == pytest.approx(r.sum())
    # brute-force regret of agent 0
    vals = []
    for b in np.flatnonzero(g.mask[0]):
        a2 = a.copy()
        a2[0] = b
        vals.append(g.payoffs(a2)[0])
    assert r[0] == pytest.approx(max(vals) - g.payoffs(a)[0], abs=1e-9)


def _aggregative(g: StageGame) -> StageGame:
    return StageGame(mask=g.mask, unary=g.unary, nbr=g.nbr, features=g.features,
                     agg_weight=g.agg_weight)


@pytest.mark.parametrize("seed", range(4))
def test_decomposition_exact_for_aggregative_payoffs(seed):
    rng = np.random.default_rng(seed)
    g = _aggregative(random_flock_game(10, rng, levels=5, heterogeneity=0.3))
    init = np.argmax(g.masked(g.unary), axis=1)
    res = mean_neighbor.solve(g, init, rng=rng, inertia=0.3, k_max=200, pairwise="virtual")
    assert res.converged
    assert eq.epsilon(g, res.profile) <= 1e-12


@pytest.mark.parametrize("seed", range(4))
def test_decomposition_exact_with_single_neighbour(seed):
    """|N_i| = 1: the virtual mean neighbour is the neighbour, χ included."""
    rng = np.random.default_rng(seed)
    n = 8
    nbr = np.zeros((n, n), dtype=bool)
    for k in range(0, n, 2):
        nbr[k, k + 1] = nbr[k + 1, k] = True
    g = random_flock_game(n, rng, levels=5, spread=3.0, nbr=nbr, heterogeneity=0.3)
    assert len(g.pair_src) > 0
    init = np.argmax(g.masked(g.unary), axis=1)
    res = mean_neighbor.solve(g, init, rng=rng, inertia=0.3, k_max=200, pairwise="virtual")
    assert res.converged
    assert eq.epsilon(g, res.profile) <= 1e-12


# §4.6 test 3 with χ on: the round cap K_max = 10 of the flocking config may stop before a fixed
# point; ε of the capped profile must stay within 2% of the payoff range (the design note's
# example tolerance).  Observed on these seeds: see README "Calibration".
EPS_TOL_FRACTION = 0.02


@pytest.mark.parametrize("seed", range(6))
def test_capped_solver_epsilon_bounded_with_separation(seed):
    rng = np.random.default_rng(seed)
    g = random_flock_game(12, rng, levels=5, spread=4.0, heterogeneity=0.2)
    init = np.argmax(g.masked(g.unary), axis=1)
    res = mean_neighbor.solve(g, init, rng=rng, inertia=0.3, k_max=10)
    local = g.masked(g.local_payoffs(g.onehot(res.profile)))
    fin = local[np.isfinite(local)]
    assert eq.epsilon(g, res.profile) <= EPS_TOL_FRACTION * float(fin.max() - fin.min())


@pytest.mark.parametrize("seed", range(5))
def test_exact_mode_fixed_point_is_true_nash(seed):
    rng = np.random.default_rng(seed)
    g = random_flock_game(10, rng, levels=5, spread=5.0, heterogeneity=0.3)
    init = np.argmax(g.masked(g.unary), axis=1)
    res = mean_neighbor.solve(g, init, rng=rng, inertia=0.3, k_max=100)
    assert res.converged
    assert eq.epsilon(g, res.profile) == 0.0


@pytest.mark.parametrize("seed", range(8))
def test_small_n_solver_profile_is_an_enumerated_pure_ne(seed):
    """§4.6 test 4: N = 3, 9 labels, general-sum, tight spacing (χ active)."""
    rng = np.random.default_rng(seed)
    g = random_flock_game(3, rng, levels=3, spread=3.0, heterogeneity=0.4,
                          nbr=~np.eye(3, dtype=bool))
    en = enumerate_game(g, objective="welfare")
    assert en.n_profiles == int(np.prod(g.mask.sum(axis=1)))
    init = np.argmax(g.masked(g.unary), axis=1)
    res = mean_neighbor.solve(g, init, rng=np.random.default_rng(seed), inertia=0.3, k_max=100)
    if en.pure_ne:
        assert res.converged
        assert tuple(int(x) for x in res.profile) in set(en.pure_ne)
    for prof in en.pure_ne:
        assert eq.epsilon(g, np.array(prof)) == 0.0


def test_potential_maximiser_is_pure_ne():
    rng = np.random.default_rng(5)
    g = random_flock_game(3, rng, levels=3, spread=3.0, nbr=~np.eye(3, dtype=bool),
                          payoff=FlockPayoffConfig(heterogeneity=0.0,
                                                    aggregate_scaling="degree"))
    en = enumerate_game(g, objective="potential")
    assert en.best_profile in set(en.pure_ne)


def test_graph_with_no_edges_gives_unary_argmax():
    rng = np.random.default_rng(0)
    n = 6
    g = random_flock_game(n, rng, nbr=np.zeros((n, n), dtype=bool), heterogeneity=0.3)
    res = mean_neighbor.solve(g, np.zeros(n, dtype=int), k_max=10)
    np.testing.assert_array_equal(res.profile, np.argmax(g.masked(g.unary), axis=1))


def test_random_connected_graph_is_connected():
    from swarmgames.core.metrics import components
    rng = np.random.default_rng(0)
    for n in (2, 5, 20):
        a = random_connected_graph(n, 0.1, rng)
        assert components(a)[0] == 1


def _dense_twin(g: StageGame) -> StageGame:
    """The same game with the factored term materialised as E·L·L tables on every
    neighbourhood edge (what CoCo built before issue 22)."""
    src, dst = np.nonzero(g.nbr)
    pair = np.einsum("m,elm,ebm->elb", g.factor_weight, g.factor[src], g.factor[dst])
    for e, (i, j) in enumerate(zip(src, dst, strict=True)):
        hit = np.flatnonzero((g.pair_src == i) & (g.pair_dst == j))
        if len(hit):
            pair[e] += g.pair[hit[0]]
    return StageGame(mask=g.mask, unary=g.unary, nbr=g.nbr, pair_src=src, pair_dst=dst,
                     pair=pair)


def _factored_game(seed: int) -> StageGame:
    rng = np.random.default_rng(seed)
    n, n_labels, m = 7, 5, 11
    nbr = random_connected_graph(n, 0.5, rng)
    src, dst = np.nonzero(nbr & (rng.random((n, n)) < 0.4))
    sym = {(int(i), int(j)) for i, j in zip(src, dst, strict=True)}
    sym |= {(j, i) for i, j in sym}
    src = np.array([i for i, _ in sorted(sym)], dtype=int)
    dst = np.array([j for _, j in sorted(sym)], dtype=int)
    tab = {e: rng.normal(size=(n_labels, n_labels)) for e in sorted(sym) if e[0] < e[1]}
    pair = np.array([tab[(i, j)] if i < j else tab[(j, i)].T for i, j in sorted(sym)])
    mask = (rng.random((n, n_labels)) < 0.8) | (np.eye(n, n_labels) > 0)
    return StageGame(mask=mask,
                     unary=rng.normal(size=(n, n_labels)), nbr=nbr, pair_src=src,
                     pair_dst=dst, pair=pair.reshape(-1, n_labels, n_labels),
                     factor=rng.random((n, n_labels, m)), factor_weight=-rng.random(m))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_factored_term_equals_materialised_tables(seed):
    """Sparse CoCo tables (issue 22): the factored overlap gives the same payoffs (all rows and
    row subsets), potential, regrets and VI as the dense E·L·L tables."""
    g = _factored_game(seed)
    d = _dense_twin(g)
    rng = np.random.default_rng(seed + 10)
    q = rng.dirichlet(np.ones(g.n_labels), size=g.n)
    np.testing.assert_allclose(g.local_payoffs(q), d.local_payoffs(q), atol=1e-10)
    rows = np.array([4, 1, 6])
    np.testing.assert_allclose(g.local_payoffs(q, rows), d.local_payoffs(q)[rows], atol=1e-10)
    np.testing.assert_allclose(g.local_payoffs(q, rows, g.factor_messages(q)),
                               d.local_payoffs(q)[rows], atol=1e-10)
    assert g.expected_potential(q) == pytest.approx(d.expected_potential(q), abs=1e-9)
    a = np.argmax(g.masked(g.unary), axis=1)
    np.testing.assert_allclose(eq.regrets(g, a), eq.regrets(d, a), atol=1e-10)
    assert g.is_symmetric() and eq.potential_check(g, rng, trials=20) < 1e-9
    from swarmgames.games.solvers import mean_field_vi

    r1 = mean_field_vi.solve(g, 3.0, schedule="colour")
    r2 = mean_field_vi.solve(d, 3.0, schedule="colour")
    np.testing.assert_allclose(r1.q, r2.q, atol=1e-9)


def test_coco_stage_game_keeps_tables_sparse():
    """A spread-out swarm with a complete neighbourhood graph gets pair tables only on the
    link-keeping forest and near pairs, not on all N(N−1) edges."""
    from swarmgames.core.channel import Channel, ChannelConfig
    from swarmgames.core.kinematics import waypoint_ring
    from swarmgames.games.payoffs_coverage import (
        CoverageWeights,
        RoiConfig,
        coverage_stage_game,
        fit_roi,
        link_keeping_pairs,
    )

    rng = np.random.default_rng(3)
    n = 40
    pos = rng.uniform(0, 1000, size=(n, 2))
    ch = Channel(ChannelConfig(altitude_m=30.0))
    adj, rx = ch.links(pos)
    nbr = ~np.eye(n, dtype=bool)
    cand = pos[:, None] + waypoint_ring(8, (0.5, 1.0), 10.0)[None]
    roi = fit_roi(RoiConfig(grid=10), rng.uniform(100, 900, size=(5, 2)), 1000.0)
    g = coverage_stage_game(CoverageWeights(), ch, cand, pos, roi, nbr,
                            link_keeping_pairs("tree", nbr, rx))
    assert g.pair.shape[0] < 0.2 * n * (n - 1) and g.factor.shape == (n, 17, len(roi.points))


def test_pure_profile_payoffs_without_tables_equal_the_table_path():
    """Flocking games build their L×L tables lazily; payoffs of a pure profile taken straight
    from the kernel equal those through the tables."""
    rng = np.random.default_rng(4)
    g = random_flock_game(9, rng, spread=3.0, heterogeneity=0.3)
    a = np.array([rng.choice(np.flatnonzero(g.mask[i])) for i in range(g.n)])
    if g.pair is None:
        fast = g.payoffs(a)
        assert g.pair is None and len(g.pair_src) > 0
    else:
        pytest.skip("random_flock_game built its tables eagerly")
    g.tables()
    np.testing.assert_allclose(fast, g.payoffs(a), atol=1e-10)


@pytest.mark.parametrize("seed", range(3))
def test_virtual_surrogate_equals_the_exact_local_payoffs_on_pure_profiles(seed):
    """The virtual solver's round payoffs (mean neighbour from the announced features, the
    separation hinge summed per player over its sorted edge segment) equal the exact mode's
    table path for pure profiles, also for players without pair edges."""
    rng = np.random.default_rng(seed)
    g = random_flock_game(14, rng, spread=20.0, heterogeneity=0.3)
    edges = np.bincount(g.pair_src, minlength=g.n)
    assert (edges == 0).any() and (edges >= 2).any()
    for _ in range(3):
        a = np.array([rng.choice(np.flatnonzero(g.mask[i])) for i in range(g.n)])
        virt = mean_neighbor.surrogate_payoffs(g, a, "virtual")
        exact = mean_neighbor.surrogate_payoffs(g, a, "exact")
        np.testing.assert_allclose(virt, exact, rtol=1e-12, atol=1e-9)
        assert not np.allclose(g.kernel_pair_term(a), 0.0)
