"""The scripts in examples/ run as written (small sizes via EXAMPLE_STEPS / arguments).

They start concurrently (each forks its own gloo workers), so the three cost about the
slowest one; each must exit 0 and print its final line.
"""

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_every_example_runs(tmp_path):
    commands = {
        "optimizer_wrapper.py": ["--strategy", "artopk", "--workers", "2"],
        "ddp_hook.py": ["--strategy", "topk", "--workers", "2"],
        "custom_model.py": ["--workers", "2", "--out", str(tmp_path / "run")],
    }
    assert set(commands) == {p.name for p in EXAMPLES.glob("*.py")}, "test every example"
    env = {**os.environ, "EXAMPLE_STEPS": "6", "OMP_NUM_THREADS": "1"}
    procs = {name: subprocess.Popen([sys.executable, str(EXAMPLES / name), *args], env=env,
                                    cwd=tmp_path, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
             for name, args in commands.items()}
    try:
        for name, proc in procs.items():
            out, _ = proc.communicate(timeout=180)
            assert proc.returncode == 0, f"{name} failed:\n{out[-3000:]}"
            assert "final" in out, f"{name} printed no final line:\n{out[-3000:]}"
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
    assert (tmp_path / "run" / "summary.json").is_file()
