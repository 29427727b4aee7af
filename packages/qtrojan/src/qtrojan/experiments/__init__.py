"""Experiment runner, configuration and reporting behind the ``qtrojan run`` CLI."""
