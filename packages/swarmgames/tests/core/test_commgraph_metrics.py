"""Comm graph (BFS hops, k-hop, staleness) and connectivity metrics (§2.3)."""

import networkx as nx
import numpy as np
import pytest

from swarmgames.core.commgraph import (
    CommConfig,
    TopologyTracker,
    hop_matrix,
    khop_neighbours,
    knn_neighbours,
)
from swarmgames.core.metrics import (
    algebraic_connectivity,
    connectivity_metrics,
    order_parameter,
    ue_pair_reachability,
)
from swarmgames.games.random_games import random_connected_graph


def test_hops_match_networkx_bfs():
    rng = np.random.default_rng(0)
    a = random_connected_graph(15, 0.1, rng)
    a[0, :] = False  # make it directed somewhere
    h = hop_matrix(a)
    g = nx.DiGraph()
    g.add_nodes_from(range(15))
    g.add_edges_from(zip(*np.nonzero(a), strict=True))
    ref = dict(nx.all_pairs_shortest_path_length(g))
    for i in range(15):
        for j in range(15):
            assert h[i, j] == ref[i].get(j, np.inf)


def test_khop_neighbourhood_grows_with_k():
    a = np.zeros((6, 6), dtype=bool)
    for i in range(5):
        a[i, i + 1] = a[i + 1, i] = True
    h = hop_matrix(a)
    n1, n2 = khop_neighbours(h, 1), khop_neighbours(h, 2)
    assert n1.sum(axis=1).tolist() == [1, 2, 2, 2, 2, 1]
    assert np.all(n2 >= n1) and n2[0].sum() == 2


def test_knn_symmetric_union():
    rng = np.random.default_rng(1)
    nb = knn_neighbours(rng.uniform(0, 100, (10, 2)), 3)
    assert np.array_equal(nb, nb.T) and (nb.sum(axis=1) >= 3).all()


def test_staleness_refresh_period_and_delay():
    cfg = CommConfig(topo_period_s=2.0, routing_delay_s=1.0)
    tr = TopologyTracker(cfg, dt=0.5)
    pos = np.zeros((3, 2))
    graphs = []
    for k in range(9):
        adj = np.zeros((3, 3), dtype=bool)
        if k == 2:  # a link exists only at t = 1 s
            adj[0, 1] = adj[1, 0] = True
        graphs.append(tr.update(k * 0.5, adj, pos).copy())
    assert tr.refreshes == 3  # t = 0, 2, 4
    # between refreshes the view is frozen (the t = 1 link is not seen before t = 2)
    assert all(np.array_equal(graphs[i], graphs[0]) for i in range(4))
    assert not graphs[3][0, 1]
    # at t = 2 the view shows the graph of t = 1 (routing delay), although it is gone now
    assert graphs[4][0, 1] and graphs[7][0, 1]
    assert not graphs[8][0, 1]


def test_lambda2_known_graphs():
    n = 7
    complete = ~np.eye(n, dtype=bool)
    assert algebraic_connectivity(complete) == pytest.approx(n)
    path = np.zeros((n, n), dtype=bool)
    for i in range(n - 1):
        path[i, i + 1] = True
    assert algebraic_connectivity(path) == pytest.approx(2 * (1 - np.cos(np.pi / n)))
    two = np.zeros((4, 4), dtype=bool)
    two[0, 1] = two[2, 3] = True
    m = connectivity_metrics(two)
    assert m["components"] == 2 and m["lambda2"] == pytest.approx(0, abs=1e-12)
    assert m["largest_fraction"] == 0.5 and m["mean_hops"] == 1.0


def test_ue_reachability():
    bb = np.zeros((3, 3), dtype=bool)
    bb[0, 1] = bb[1, 0] = True
    assoc = np.array([0, 2, 1, -1])  # UE0@0, UE1@2, UE2@1, UE3 unserved
    # halves: (0,2) ok, (0,3) no, (1,2) no (different components), (1,3) no
    assert ue_pair_reachability(assoc, bb, "halves") == pytest.approx(0.25)


def test_order_parameter_bounds():
    assert order_parameter(np.tile([1.0, 2.0], (5, 1))) == pytest.approx(1.0)
    assert order_parameter(np.array([[1.0, 0], [-1.0, 0]])) == pytest.approx(0.0)
