"""QTrojan: a circuit backdoor against quantum neural networks, and its data-poisoning baseline.

Reproduces Chu, Jiang, Swany, Chen, "QTrojan: A Circuit Backdoor Against Quantum Neural
Networks", ICASSP 2023 (arXiv 2302.08090). Layering (imports point left):
``sim`` <- ``circuit`` <- ``executor``, ``compiler`` <- ``qnn`` <- ``attacks`` <- ``experiments``
/ ``cli``,
with ``data``, ``training`` and ``metrics`` beside them.
"""

__version__ = "0.1.0"
