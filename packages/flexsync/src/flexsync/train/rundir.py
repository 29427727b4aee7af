"""The run directory: one run per directory, never overwritten, never spliced.

A new run into a directory that already holds files is refused, unless it resumes that run
(``--resume``) or the caller asks to ``overwrite``: then the old directory is moved aside to
``<out>.old-<N>`` (never deleted) and the new run starts in an empty one. Every file a run
writes names its run id (``config.yaml``'s first line, each ``metrics.jsonl`` row,
``summary.json``, each checkpoint file and ``meta.json``, each rank's log), so files of two
runs cannot be mistaken for one.
"""

from __future__ import annotations

import os
from pathlib import Path

from flexsync.config import check_out
from flexsync.errors import ConfigError

#: Names whose presence makes a directory a flexsync run directory (safe to move aside).
RUN_FILES = ("config.yaml", "metrics.jsonl", "summary.json", "checkpoints", "logs")


def check_out_path(out: str | Path) -> Path:
    """``out`` as a path, refused (naming ``out``) where :func:`flexsync.config.check_out`
    refuses it: an existing non-directory, the current directory or one of its parents."""
    try:
        return Path(check_out(str(out))).expanduser()
    except ValueError as e:
        raise ConfigError(f"out: {e}") from None


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and any((path / n).exists() for n in RUN_FILES)


def prepare(out: str | Path, resume: bool = False, overwrite: bool = False) -> Path | None:
    """Make ``out`` ready for a run. Returns where an earlier run was moved (with
    ``overwrite``), else None. Raises :class:`ConfigError` for a non-empty ``out`` without
    ``resume`` or ``overwrite``, and for ``overwrite`` of a directory that is not a run's."""
    path = check_out_path(out)
    if resume or not path.is_dir() or not any(path.iterdir()):
        return None
    if not overwrite:
        raise ConfigError(
            f"out: {str(out)!r} already holds files{_run_id_note(path)}; continue that run "
            f"with --resume {out}, or pass --overwrite to move it aside (nothing is deleted), "
            "or choose another out")
    if not is_run_dir(path):
        raise ConfigError(f"out: {str(out)!r} is not empty and is not a flexsync run directory "
                          f"(none of {', '.join(RUN_FILES)}); --overwrite only moves run "
                          "directories aside: choose another out")
    n = 1
    while (aside := path.with_name(f"{path.name}.old-{n}")).exists():
        n += 1
    os.replace(path, aside)
    return aside


def _run_id_note(path: Path) -> str:
    try:
        first = (path / "config.yaml").read_text().split("\n", 1)[0]
    except (OSError, UnicodeDecodeError):
        return ""
    return f" (run {first.split()[-1]})" if first.startswith("# flexsync run ") else ""


def log_dir(out: str | Path) -> Path:
    """Where each rank's log (``rank<r>.log``: its tracebacks and native errors) goes."""
    return Path(out) / "logs"
