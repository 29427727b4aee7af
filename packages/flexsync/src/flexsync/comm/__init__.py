"""Collectives with accounting, and helpers that make every rank agree on a decision."""

from flexsync.comm.collectives import CommRecord, Communicator

__all__ = ["Communicator", "CommRecord"]
