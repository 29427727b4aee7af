"""Baseline controllers on plain arrays: Reynolds/Olfati-Saber flocking, independent/greedy
response, Lloyd/CVT coverage (design note §4.4, §5.4)."""
