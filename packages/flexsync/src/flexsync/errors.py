"""The one error type a user sees for bad input, at every layer (config files, the optimizer
wrapper, the DDP hook, strategy constructors)."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration problem, with a message fit to show the user: it names the key or
    option and what it allows."""
