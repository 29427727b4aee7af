"""The α-β model against the paper's measured Table VI and the closed-form switching rules."""

import math

import pytest

from flexsync.net import cost_model as cm

GBIT = 1.25e8  # bytes/s per Gbit/s


@pytest.mark.parametrize(
    "params, gbit, expected_ms",
    [
        (11.69e6, 10, {"allgather": 54.0, "art_ring": 35.0, "art_tree": 43.2}),     # ResNet18
        (11.69e6, 1, {"allgather": 526.3, "art_ring": 194.7, "art_tree": 345.6}),
        (25.56e6, 5, {"allgather": 232.0, "art_ring": 94.7, "art_tree": 156.2}),    # ResNet50
    ],
)
def test_matches_paper_table_vi_within_5_percent(params, gbit, expected_ms):
    choice = cm.best_collective(int(params), 0.1, 8, 1e-3, 1 / (gbit * GBIT))
    for name, ms in expected_ms.items():
        assert choice.costs[name] * 1e3 == pytest.approx(ms, rel=0.05)
    assert choice.collective == "art_ring"


def _grid():
    for n in (3, 4, 5, 8, 16, 64):
        for ratio in (0.1, 0.01, 0.001):
            for alpha in (1e-5, 1e-4, 1e-3, 5e-3, 5e-2):
                for gbit in (0.01, 0.1, 1, 10, 25):
                    yield n, ratio, alpha, 1 / (gbit * GBIT)


def test_pairwise_winners_follow_closed_form_thresholds():
    """Ring<AG iff α/β < Mc(1 − 1/N − L/(2(N−1))); Tree<AG iff α/β < Mc((N−1)/L − 3/2);
    Ring<Tree iff α/β < Mc(L − (N−1)/N)/(N−1−L) (for N−1 > L)."""
    params = 5_000_000
    checked = 0
    for n, c, alpha, beta in _grid():
        k = cm.topk_count(params, c)
        mc = 4 * k
        lg = math.log2(n)
        ratio = alpha / beta
        ag = cm.ag_topk(params, c, n, alpha, beta)
        ring = cm.art_ring(params, c, n, alpha, beta)
        tree = cm.art_tree(params, c, n, alpha, beta)
        t_ring_ag = mc * (1 - 1 / n - lg / (2 * (n - 1)))
        t_tree_ag = mc * ((n - 1) / lg - 1.5)
        for cheaper, other, thr in ((ring, ag, t_ring_ag), (tree, ag, t_tree_ag)):
            if not math.isclose(ratio, thr, rel_tol=1e-9):
                assert (cheaper < other) == (ratio < thr)
        if n - 1 > lg:
            t_ring_tree = mc * (lg - (n - 1) / n) / (n - 1 - lg)
            if not math.isclose(ratio, t_ring_tree, rel_tol=1e-9):
                assert (ring < tree) == (ratio < t_ring_tree)
        best = cm.best_collective(params, c, n, alpha, beta)
        assert best.costs[best.collective] == min(ag, ring, tree)
        checked += 1
    assert checked > 300


def test_tree_never_wins_at_four_workers():
    for _, c, alpha, beta in _grid():
        assert cm.best_collective(5_000_000, c, 4, alpha, beta).collective != "art_tree"


@pytest.mark.parametrize(
    "alpha, mbit, ratio, winner",
    [(1e-4, 10, 0.1, "art_ring"), (1e-4, 1000, 0.1, "art_ring"), (1e-3, 1000, 0.1, "allgather"),
     (1e-3, 10, 0.01, "art_ring"), (5e-3, 100, 0.1, "allgather"), (5e-3, 100, 0.001, "allgather")],
)
def test_regime_map_for_the_small_cnn_at_eight_workers(alpha, mbit, ratio, winner):
    """docs/methods.md §1.2 E1: for CNN16 (65.6 K params) the optimum flips across ordinary
    settings."""
    assert cm.best_collective(65_636, ratio, 8, alpha, 1 / (mbit * 1.25e5)).collective == winner


def test_single_worker_communicates_for_free():
    for fn in (cm.ring_allreduce, cm.tree_allreduce, cm.allgather, cm.broadcast,
               cm.parameter_server):
        assert fn(1e6, 1, 1e-3, 1e-9) == 0.0


def test_dense_and_collective_formulas():
    x, n, a, b = 1e6, 8, 1e-3, 1e-9
    assert cm.ring_allreduce(x, n, a, b) == pytest.approx(2 * 7 * a + 2 * 7 / 8 * x * b)
    assert cm.tree_allreduce(x, n, a, b) == pytest.approx(2 * a * 3 + 2 * 3 * x * b)
    assert cm.parameter_server(x, n, a, b) == pytest.approx(2 * a + 2 * 7 * x * b)
    assert cm.art_tree(1000, 0.1, n, a, b) == pytest.approx(3 * a * 3 + 3 * 400 * b * 3)


def test_topk_count_rule():
    assert cm.topk_count(1000, 0.01) == 10
    assert cm.topk_count(1000, 1e-6) == 1
    assert cm.topk_count(999, 0.1) == 99


def test_unknown_collective_is_rejected():
    with pytest.raises(ValueError, match="unknown collective"):
        cm.compressed_cost("butterfly", 10, 0.1, 4, 1e-3, 1e-9)
