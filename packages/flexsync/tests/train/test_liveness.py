"""The liveness monitor names a stalled rank (its heartbeat stops) and a wedged rank (alive,
but stuck behind its waiting peers) after the bound, and nobody while everyone progresses."""

from flexsync.config import Config
from flexsync.train.liveness import Monitor


def _feed(mon, seconds, beats_of, start=0):
    """Advance a fake clock one second at a time; ``beats_of(t)`` gives every rank's beat."""
    for t in range(start, seconds):
        mon.observe(beats_of(t), now=float(t))
    return mon.verdict(now=float(seconds - 1))


def test_ranks_that_beat_and_progress_are_never_named():
    mon = Monitor(3, bound=5, started=0.0)
    assert _feed(mon, 60, lambda t: {r: f"{t} {t // 2}" for r in range(3)}) is None


def test_a_rank_whose_heartbeat_stops_is_named_after_the_bound():
    mon = Monitor(3, bound=5, started=0.0)
    beats = lambda t: {r: f"{t} {t}" if r != 2 or t < 10 else "10 10"  # noqa: E731
                       for r in range(3)}
    assert _feed(mon, 16, beats) is None               # silent 10 .. 15: within the bound
    rank, what = _feed(mon, 17, beats, start=16)
    assert rank == 2 and "stopped responding" in what


def test_a_rank_that_never_beats_is_named():
    mon = Monitor(2, bound=5, started=0.0)
    rank, what = _feed(mon, 7, lambda t: {0: f"{t} 0"})
    assert rank == 1 and "never sent a heartbeat" in what


def test_a_wedged_rank_behind_its_waiting_peers_is_named():
    mon = Monitor(3, bound=5, started=0.0)
    # everyone beats; ranks 0 and 2 wait at step 8, rank 1 is stuck at step 7
    steps = lambda t: {r: f"{t} {min(t, 7 if r == 1 else 8)}" for r in range(3)}  # noqa: E731
    rank, what = _feed(mon, 20, steps)
    assert rank == 1 and "wedged" in what and "step 7" in what


def test_level_ranks_in_a_long_step_are_not_wedged():
    mon = Monitor(2, bound=5, started=0.0)
    assert _feed(mon, 60, lambda t: {r: f"{t} 3" for r in range(2)}) is None


def test_the_default_bound_names_a_stall_within_30_seconds():
    assert 0 < Config().stall_timeout_s <= 28      # plus half a second of polling
