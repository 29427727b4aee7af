"""The scripts in examples/ run as written (small sizes via EXAMPLE_STEPS / arguments).

They start concurrently (each forks its own gloo workers, runs under torchrun, or lets
Lightning start its processes), so they cost about the slowest one; each must exit 0, print
its final line, and the recipes (AMP, clipping, scheduler, accumulation, Lightning) must end
with identical replicas.
"""

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TORCHRUN = [os.path.join(os.path.dirname(sys.executable), "torchrun"), "--standalone",
            "--nproc_per_node=2"]


def test_every_example_runs(tmp_path):
    commands = {
        "optimizer_wrapper.py": ["--strategy", "artopk", "--workers", "2"],
        "ddp_hook.py": ["--strategy", "topk", "--workers", "2"],
        "custom_model.py": ["--workers", "2", "--out", str(tmp_path / "run")],
        "accelerate_hook.py": ["--strategy", "artopk"],
        "amp.py": ["--overflow-at", "2"],
        "clipping.py": ["--strategy", "topk"],
        "lr_scheduler.py": [],
        "accumulation.py": ["--strategy", "ddp"],
        "lightning_ddp.py": [],                     # Lightning starts its own 2 processes
    }
    launcher = {"accelerate_hook.py": TORCHRUN}
    examples = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    assert set(commands) == examples, "test every example"    # _common.py is their helper
    env = {**os.environ, "EXAMPLE_STEPS": "6", "OMP_NUM_THREADS": "1"}
    procs = {name: subprocess.Popen([*launcher.get(name, [sys.executable]),
                                     str(EXAMPLES / name), *args], env=env,
                                    cwd=tmp_path, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
             for name, args in commands.items()}
    try:
        outputs = {}
        for name, proc in procs.items():
            out, _ = proc.communicate(timeout=180)
            outputs[name] = out
            assert proc.returncode == 0, f"{name} failed:\n{out[-3000:]}"
            assert "final" in out, f"{name} printed no final line:\n{out[-3000:]}"
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
    assert (tmp_path / "run" / "summary.json").is_file()
    for name in ("accelerate_hook.py", "amp.py", "clipping.py", "lr_scheduler.py",
                 "accumulation.py", "lightning_ddp.py"):
        assert "replicas identical: True" in outputs[name], name
    assert "skipped steps: 1 (on every rank)" in outputs["amp.py"]
    assert "identical on every rank: True" in outputs["clipping.py"]
