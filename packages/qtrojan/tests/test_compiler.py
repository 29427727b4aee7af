"""The compiler pass and its configuration file (design §10 item 8)."""

from __future__ import annotations

import math

import pytest

from qtrojan.circuit import angle_encoder, qnn_circuit
from qtrojan.compiler import WRAP_AXIS, WrapConfig, compile_circuit


def _config(n: int, enabled: bool = True, **kw) -> WrapConfig:
    return WrapConfig(enabled=enabled, pre=[math.pi / 2] * n, post=[-math.pi / 2] * n, **kw)


def test_json_round_trip(tmp_path) -> None:
    cfg = WrapConfig(enabled=True, omit_when_disabled=True, pre=[0.1, 0.2], post=[0.3, -0.4],
                     tail=[[1.0, 2.0], [3.0, 4.0]])
    assert WrapConfig.from_json(cfg.to_json()) == cfg
    cfg.save(tmp_path / "c.json")
    assert WrapConfig.load(tmp_path / "c.json") == cfg


@pytest.mark.parametrize("data, field", [
    ({"calibration": {"enabled": "yes"}}, "enabled"),
    ({"calibration": {"pre": [1, "a"], "post": [1, 2]}}, "pre[1]"),
    ({"calibration": {"pre": [1.0], "post": []}}, "'pre' and 'post'"),
    ({"calibration": {"pre": [float("nan")], "post": [0]}}, "pre[0]"),
    ({"calibration": {"tail": [[1.0]]}}, "tail[0]"),
    ({"calibration": {"gain": 1}}, "gain"),
])
def test_invalid_configs_name_the_field(data: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field.replace("[", r"\[").replace("]", r"\]")):
        WrapConfig.from_dict(data)


def test_bad_json_is_reported() -> None:
    with pytest.raises(ValueError, match="not valid JSON"):
        WrapConfig.from_json("{calibration")


@pytest.mark.parametrize("n", [2, 4, 8])
def test_enabled_pass_inserts_exactly_2n_rx_around_each_encoding_gate(n: int) -> None:
    circ = qnn_circuit(n, 2)
    out, report = compile_circuit(circ, _config(n))
    assert report.inserted == 2 * n and report.gate_overhead == 2 * n
    assert out.gate_count() == circ.gate_count() + 2 * n
    assert report.depth_overhead == 2
    for i in out.encoding_indices():
        before, enc, after = out.ops[i - 1], out.ops[i], out.ops[i + 1]
        assert enc.name == "RY"
        for g in (before, after):
            assert g.name == "RX" and g.wires == enc.wires and g.tag == "calibration"
        assert before.params[0].value == math.pi / 2
        assert after.params[0].value == -math.pi / 2
    # the rest of the circuit is untouched and in order
    assert [op for op in out.ops if op.tag != "calibration"] == list(circ.ops)


def test_disabled_pass_inserts_zero_angles_or_nothing() -> None:
    circ = qnn_circuit(4, 1)
    out, report = compile_circuit(circ, _config(4, enabled=False))
    inserted = [op for op in out.ops if op.tag == "calibration"]
    assert len(inserted) == 8 and all(op.params[0].value == 0.0 for op in inserted)
    out, report = compile_circuit(circ, _config(4, enabled=False, omit_when_disabled=True))
    assert out == circ and report.inserted == 0
    # omit mode does not suppress the gates when enabled
    out, report = compile_circuit(circ, _config(4, enabled=True, omit_when_disabled=True))
    assert report.inserted == 8


@pytest.mark.parametrize("axis", ["X", "Y", "Z"])
def test_wrap_axis_matches_encoding_axis(axis: str) -> None:
    circ = angle_encoder(3, axis)
    out, report = compile_circuit(circ, _config(3))
    gates = [op.name for op in out.ops if op.tag == "calibration"]
    assert set(gates) == {f"R{WRAP_AXIS[axis]}"}
    # a Z encoding on |0> is already a phase: it gets only the post gate
    assert report.inserted == (3 if axis == "Z" else 6)


def test_tail_and_length_mismatch() -> None:
    circ = qnn_circuit(3, 1)
    cfg = _config(3, tail=[[0.1, 0.2]] * 3)
    out, report = compile_circuit(circ, cfg)
    assert report.inserted == 2 * 3 + 2 * 3
    last_enc = out.encoding_indices()[-1]
    tail = out.ops[last_enc + 2:last_enc + 2 + 6]
    assert [op.name for op in tail] == ["RY", "RZ"] * 3
    with pytest.raises(ValueError, match="one angle per encoding gate"):
        compile_circuit(circ, _config(2))
    with pytest.raises(ValueError, match="'tail'"):
        compile_circuit(circ, _config(3, tail=[[0.0, 0.0]]))
