"""Stage-game solvers: virtual-mean-neighbour best response, exact asynchronous best response,
mean-field VI / logit response, and exhaustive enumeration (design note §4.3, §5.3)."""

from swarmgames.games.solvers.result import SolveResult

__all__ = ["SolveResult"]
