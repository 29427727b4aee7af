"""The α-β communication cost model (docs/methods.md §0.3; AR-Topk paper Table I).

Every function takes the per-worker message size ``x`` in bytes, the number of workers ``n``
and the network's latency ``alpha`` (s) and inverse bandwidth ``beta`` (s/byte), and returns
seconds. Logs are base 2, as in the paper. One worker communicates for free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

INDEX_BYTES = 4   # the model assumes 4-byte indices (int32)
VALUE_BYTES = 4   # fp32 values

COMPRESSED_COLLECTIVES = ("allgather", "art_ring", "art_tree")


def _log2(n: int) -> float:
    return math.log2(n) if n > 1 else 0.0


def _ring(n: int) -> tuple[float, float]:
    return 2.0 * (n - 1), 2 * (n - 1) / n


def _tree(n: int) -> tuple[float, float]:
    lg = _log2(n)
    return 2 * lg, 2 * lg


def _ps(n: int) -> tuple[float, float]:
    return 2.0, 2.0 * (n - 1)


def _log(n: int) -> tuple[float, float]:
    lg = _log2(n)
    return lg, lg


def _gather(n: int) -> tuple[float, float]:
    return _log2(n), float(n - 1)


def _flat(n: int) -> tuple[float, float]:
    return 1.0, float(n - 1)


# The one table of (a, b) in t = a·α + b·X·β for each (collective kind, algorithm): pricing,
# the latency terms of emulated delay and the live α-β estimator all read it.
COEFFICIENTS = {
    ("allreduce", "ring"): _ring,
    ("allreduce", None): _ring,
    ("allreduce", "tree"): _tree,
    ("allreduce", "ps"): _ps,
    ("allgather", None): _gather,
    ("broadcast", None): _log,
    ("broadcast", "flat"): _flat,
    ("barrier", None): _log,
}


def coefficients(kind: str, algo: str | None, n: int) -> tuple[float, float]:
    """(a, b) of t = a·α + b·X·β for one collective of ``kind`` by ``algo`` among ``n``
    workers; (0, 0) for one worker."""
    key = (kind, algo) if (kind, algo) in COEFFICIENTS else (kind, None)
    if key not in COEFFICIENTS:
        raise ValueError(f"unknown collective {kind!r} (algo {algo!r})")
    return (0.0, 0.0) if n <= 1 else COEFFICIENTS[key](n)


def _cost(kind: str, algo: str | None, x: float, n: int, alpha: float, beta: float) -> float:
    a, b = coefficients(kind, algo, n)
    return a * alpha + b * x * beta


def parameter_server(x: float, n: int, alpha: float, beta: float) -> float:
    """Star topology: push to and pull from one server, 2α + 2(N−1)·X·β."""
    return _cost("allreduce", "ps", x, n, alpha, beta)


def ring_allreduce(x: float, n: int, alpha: float, beta: float) -> float:
    """Ring allreduce, 2(N−1)α + 2(N−1)/N·X·β."""
    return _cost("allreduce", "ring", x, n, alpha, beta)


def tree_allreduce(x: float, n: int, alpha: float, beta: float) -> float:
    """Tree (reduce then broadcast) allreduce, 2αL + 2L·X·β."""
    return _cost("allreduce", "tree", x, n, alpha, beta)


def broadcast(x: float, n: int, alpha: float, beta: float) -> float:
    """Binomial-tree broadcast, αL + L·X·β."""
    return _cost("broadcast", None, x, n, alpha, beta)


def flat_broadcast(x: float, n: int, alpha: float, beta: float) -> float:
    """The root sends X to each peer in turn, α + (N−1)·X·β: what gloo's CPU broadcast does
    on links limited per host (measured by ``flexsync bench fidelity``)."""
    return _cost("broadcast", "flat", x, n, alpha, beta)


def allgather(x: float, n: int, alpha: float, beta: float) -> float:
    """Allgather where each worker contributes X bytes, αL + (N−1)·X·β."""
    return _cost("allgather", None, x, n, alpha, beta)


def latency_terms(kind: str, algo: str | None, n: int) -> float:
    """How many α one collective pays: 2(N−1) for a ring allreduce, 2L for a tree, L for
    broadcast and allgather."""
    return coefficients(kind, algo, n)[0]


def topk_count(n_params: int, ratio: float) -> int:
    """k = max(1, ⌊c·n⌋), the rule every reference implementation uses (§0.1)."""
    return max(1, int(math.floor(ratio * n_params)))


def ag_topk(n_params: int, ratio: float, n: int, alpha: float, beta: float) -> float:
    """AG-Topk: allgather of k values and k indices, αL + 2·M·c·β·(N−1)."""
    k = topk_count(n_params, ratio)
    return allgather(k * (VALUE_BYTES + INDEX_BYTES), n, alpha, beta)


def art_ring(n_params: int, ratio: float, n: int, alpha: float, beta: float) -> float:
    """ART-Ring: broadcast one index set, then ring-allreduce the k values."""
    k = topk_count(n_params, ratio)
    return broadcast(k * INDEX_BYTES, n, alpha, beta) + ring_allreduce(
        k * VALUE_BYTES, n, alpha, beta
    )


def art_tree(n_params: int, ratio: float, n: int, alpha: float, beta: float) -> float:
    """ART-Tree: broadcast one index set, then tree-allreduce the k values (3αL + 3·M·c·β·L)."""
    k = topk_count(n_params, ratio)
    return broadcast(k * INDEX_BYTES, n, alpha, beta) + tree_allreduce(
        k * VALUE_BYTES, n, alpha, beta
    )


def dense_ring(n_params: int, n: int, alpha: float, beta: float) -> float:
    """DenseSGD with a ring allreduce of all M = 4n bytes."""
    return ring_allreduce(n_params * VALUE_BYTES, n, alpha, beta)


_COMPRESSED = {"allgather": ag_topk, "art_ring": art_ring, "art_tree": art_tree}


def compressed_cost(
    collective: str, n_params: int, ratio: float, n: int, alpha: float, beta: float
) -> float:
    """Cost of one compressed aggregation by ``collective`` ∈ COMPRESSED_COLLECTIVES."""
    try:
        fn = _COMPRESSED[collective]
    except KeyError:
        raise ValueError(
            f"unknown collective {collective!r}; expected one of {COMPRESSED_COLLECTIVES}"
        ) from None
    return fn(n_params, ratio, n, alpha, beta)


@dataclass(frozen=True)
class Choice:
    """The cheapest compressed collective and the cost of each candidate (seconds)."""

    collective: str
    costs: dict[str, float]


def best_collective(
    n_params: int,
    ratio: float,
    n: int,
    alpha: float,
    beta: float,
    candidates: tuple[str, ...] = COMPRESSED_COLLECTIVES,
) -> Choice:
    """Argmin of the compressed-aggregation costs (§1.2). Ties resolve to the earlier candidate,
    so the answer is a pure function of its arguments and identical on every rank."""
    costs = {c: compressed_cost(c, n_params, ratio, n, alpha, beta) for c in candidates}
    winner = min(candidates, key=lambda c: costs[c])
    return Choice(winner, costs)


def price(kind: str, algo: str | None, nbytes: float, n: int, alpha: float, beta: float) -> float:
    """Price one accounted collective (see ``flexsync.comm.collectives.CommRecord``)."""
    if kind not in ("allreduce", "allgather", "broadcast", "barrier"):
        raise ValueError(f"cannot price collective kind {kind!r}")
    return _cost(kind, algo, 0 if kind == "barrier" else nbytes, n, alpha, beta)
