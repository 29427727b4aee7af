"""Write a victim's clean and trojaned circuits as OpenQASM 3 or PennyLane scripts.

Why: ``qtrojan attack`` leaves a model file and the compiler config the attacker plants; this
module turns the pair into circuits other tools read (:mod:`qtrojan.qasm`). The trojaned file is
the victim compiled with the config switched *on* (whatever the file's ``enabled`` says), so a
user can inspect or run the attack without editing the config; the clean file is the victim's
own circuit.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from qtrojan.attacks.qtrojan import deploy
from qtrojan.circuit import Circuit
from qtrojan.compiler import WrapConfig
from qtrojan.qasm import to_pennylane_script, to_qasm3
from qtrojan.qnn import QNN

FORMATS = {"qasm": ".qasm", "pennylane": ".py"}


def exported_circuits(model: QNN, config: WrapConfig) -> dict[str, Circuit]:
    """``{"clean": circuit, "trojaned": circuit}`` (the latter compiled with the config on)."""
    on, _ = deploy(model, dataclasses.replace(config, enabled=True))
    return {"clean": model.circuit, "trojaned": on}


def export_circuits(model: QNN, config: WrapConfig, out_dir: str | Path, fmt: str
                    ) -> list[Path]:
    """Write ``clean`` and ``trojaned`` files in ``fmt`` (``qasm`` or ``pennylane``)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {sorted(FORMATS)}, got {fmt!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    weights = [float(w) for w in model.weights.detach()]
    paths = []
    for name, circuit in exported_circuits(model, config).items():
        note = (f"qtrojan {name} circuit: {model.n_qubits} qubits, {model.n_layers} layers, "
                f"readout <Z_0..Z_{model.n_classes - 1}>, logits = {model.tau:g} * <Z>")
        if fmt == "qasm":
            text = to_qasm3(circuit, weights, note)
        else:
            text = to_pennylane_script(circuit, weights, model.n_classes, note)
        path = out / f"{name}{FORMATS[fmt]}"
        path.write_text(text)
        paths.append(path)
    return paths
