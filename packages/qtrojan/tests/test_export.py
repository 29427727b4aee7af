"""Export of a victim's clean and trojaned circuits (module ``qtrojan.export``)."""

from __future__ import annotations

import pytest

from qtrojan.attacks.qtrojan import build_config, select_target_state
from qtrojan.export import export_circuits, exported_circuits
from qtrojan.qnn import QNN


def test_trojaned_export_is_compiled_on_even_from_a_dormant_config(tmp_path) -> None:
    model = QNN(3, 1, 2, seed=0)
    dormant = build_config(model, select_target_state(model, 0), enabled=False,
                           omit_when_disabled=True)
    circuits = exported_circuits(model, dormant)
    assert circuits["clean"] == model.circuit
    assert circuits["trojaned"].gate_count() == model.circuit.gate_count() + 6
    paths = export_circuits(model, dormant, tmp_path, "qasm")
    assert [p.name for p in paths] == ["clean.qasm", "trojaned.qasm"]
    with pytest.raises(ValueError, match="format must be one of"):
        export_circuits(model, dormant, tmp_path, "qiskit")


def test_model_file_round_trip_and_errors(tmp_path) -> None:
    model = QNN(3, 2, 2, ansatz="u3cu3", seed=1)
    model.save(tmp_path / "m.json")
    back = QNN.load(tmp_path / "m.json")
    assert back.to_dict() == model.to_dict() and back.circuit == model.circuit
    (tmp_path / "bad.json").write_text('{"n_qubits": 3}')
    with pytest.raises(ValueError, match="lacks field"):
        QNN.load(tmp_path / "bad.json")
    data = model.to_dict()
    data["weights"] = data["weights"][:-1]
    with pytest.raises(ValueError, match="weights"):
        QNN.from_dict(data)
