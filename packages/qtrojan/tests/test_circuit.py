"""Circuit IR: validation, builders, counts and depth (design §9.2)."""

from __future__ import annotations

import pytest

from qtrojan.circuit import (
    Circuit,
    Op,
    Param,
    angle_encoder,
    ansatz_weight_count,
    layered_ansatz,
    qnn_circuit,
)


def test_op_validation_names_the_problem() -> None:
    with pytest.raises(ValueError, match="unknown gate"):
        Op("FOO", (0,))
    with pytest.raises(ValueError, match="1 angle"):
        Op("RX", (0,))
    with pytest.raises(ValueError, match="repeated wires"):
        Op("CNOT", (1, 1))
    with pytest.raises(ValueError, match="Param.kind"):
        Param("data")
    with pytest.raises(ValueError, match="outside"):
        Circuit(2, (Op("RX", (2,), (Param("const"),)),))


@pytest.mark.parametrize("kind", ["ryrz", "u3cu3"])
@pytest.mark.parametrize("n", [2, 3, 4])
def test_ansatz_reads_every_weight_once(kind: str, n: int) -> None:
    c = layered_ansatz(n, 3, kind)
    idx = [p.index for op in c.ops for p in op.params if p.kind == "weight"]
    assert sorted(idx) == list(range(ansatz_weight_count(n, 3, kind)))
    assert c.n_weights == ansatz_weight_count(n, 3, kind)
    assert not c.encoding_indices()


def test_encoder_reads_one_feature_per_qubit_and_axis() -> None:
    c = angle_encoder(4, "YZ")
    assert c.n_inputs == 8
    assert [op.name for op in c.ops] == ["RY"] * 4 + ["RZ"] * 4
    assert c.encoding_indices() == list(range(8))
    with pytest.raises(ValueError, match="encoding axes"):
        angle_encoder(4, "W")


def test_counts_and_depth() -> None:
    n, layers = 4, 2
    c = qnn_circuit(n, layers)
    # encoder n, per layer 2n rotations + n CNOTs
    assert c.gate_count() == n + layers * 3 * n
    assert c.count_by_name() == {"RY": n + layers * n, "RZ": layers * n, "CNOT": layers * n}
    # the CNOT ring is a chain of n gates sharing wires, so each layer adds 2 + n
    assert c.depth() == 1 + layers * (2 + n)
