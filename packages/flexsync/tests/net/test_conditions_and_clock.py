from dataclasses import dataclass

import pytest

from flexsync.net import cost_model as cm
from flexsync.net.clock import VirtualClock
from flexsync.net.conditions import (
    FixedConditions,
    NetworkConditions,
    Phase,
    ScheduleConditions,
    preset,
)


@dataclass
class Rec:
    kind: str
    nbytes: int
    algo: str | None = None
    scalable: bool = True


def test_schedule_is_piecewise_constant():
    a, b = NetworkConditions(1e-3, 1e9), NetworkConditions(5e-2, 1e8)
    s = ScheduleConditions([Phase(0, a), Phase(10, b)], unit="step")
    assert s.at(0, 0, 0.0) == a and s.at(9, 0, 0.0) == a
    assert s.at(10, 0, 0.0) == b and s.at(10_000, 0, 0.0) == b


def test_schedule_rejects_unsorted_or_late_start():
    c = NetworkConditions(1e-3, 1e9)
    with pytest.raises(ValueError):
        ScheduleConditions([Phase(1, c)])
    with pytest.raises(ValueError):
        ScheduleConditions([Phase(0, c), Phase(5, c), Phase(5, c)])


def test_c1_preset_follows_the_paper_and_stretches():
    c1 = preset("C1")
    assert c1.at(0, 11, 0) == NetworkConditions(1e-3, 25 * 1.25e8)
    assert c1.at(0, 12, 0) == NetworkConditions(1e-3, 1 * 1.25e8)
    assert c1.at(0, 30, 0) == NetworkConditions(50e-3, 1 * 1.25e8)
    assert c1.at(0, 40, 0) == NetworkConditions(50e-3, 25 * 1.25e8)
    quarter = preset("C1", stretch=0.25)
    assert quarter.at(0, 3, 0).bandwidth == 1.25e8         # epoch 12 * 0.25 = 3
    with pytest.raises(ValueError, match="unknown network preset"):
        preset("C9")


def test_clock_prices_records_with_the_cost_model():
    cond = NetworkConditions(1e-3, 1.25e8)
    clock = VirtualClock(4, FixedConditions(cond))
    recs = [Rec("allreduce", 4000, "ring"), Rec("broadcast", 400), Rec("allgather", 800),
            Rec("allreduce", 4000, "tree")]
    t = clock.advance(0, 0, compute_s=0.02, records=recs)
    expected = (cm.ring_allreduce(4000, 4, 1e-3, 8e-9) + cm.broadcast(400, 4, 1e-3, 8e-9)
                + cm.allgather(800, 4, 1e-3, 8e-9) + cm.tree_allreduce(4000, 4, 1e-3, 8e-9))
    assert t.comm == pytest.approx(expected)
    assert clock.now == pytest.approx(0.02 + expected)


def test_model_params_scale_only_gradient_sized_messages():
    cond = NetworkConditions(0.0, 1e6)
    clock = VirtualClock(2, FixedConditions(cond), param_scale=100.0)
    grad = clock.price([Rec("allreduce", 1000)], cond)
    ctrl = clock.price([Rec("allreduce", 1000, scalable=False)], cond)
    assert grad == pytest.approx(100 * ctrl)


def test_loopback_clock_charges_measured_time():
    clock = VirtualClock(4, None)
    t = clock.advance(0, 0, compute_s=0.01, records=[Rec("allreduce", 10**9)],
                      measured_comm_s=0.5)
    assert t.comm == 0.5 and t.conditions is None
