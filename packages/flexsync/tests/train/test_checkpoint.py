"""Checkpoint and resume: a resumed run continues the uninterrupted one exactly."""

import json

import pytest
import torch

from flexsync import build_config, train
from flexsync.train import checkpoint
from flexsync.train.metrics import read_metrics

BASE = {"workers": 2, "progress": False, "eval": {"every": 10}, "batch_size": 16,
        "clock": {"compute": "model"},          # modeled compute: the clock is reproducible
        "data": {"classes": 10, "train_size": 1200, "test_size": 200}}

STRATEGIES = {
    "dense": {"strategy": {"name": "dense"}},
    "topk": {"strategy": {"name": "artopk", "ratio": 0.05, "index": "var"}},
    "selsync": {"strategy": {"name": "selsync"}},
    # the anchor and error-feedback residual of int8 syncs (docs/methods.md §2.2a)
    "selsync-int8": {"strategy": {"name": "selsync", "sync_values": "int8",
                                  "max_local_steps": 3}},
    "scadles": {"strategy": {"name": "scadles", "ratio": 0.2, "delta": 0.5},
                "stream": {"rates": [20, 35], "policy": "persistence"}},
}


#: Every other registered strategy and setting (slow: three runs each). ddp with the PowerSGD
#: hook is refused instead (tests/faults/test_checkpoints.py).
MORE = {
    "ddp": {"strategy": {"name": "ddp"}},
    "ddp-fp16": {"strategy": {"name": "ddp", "hook": "fp16"}},
    "topk-ag": {"strategy": {"name": "topk", "ratio": 0.05}},
    "artopk-star": {"strategy": {"name": "artopk", "ratio": 0.05}},
    "flexible": {"strategy": {"name": "flexible", "ratio": 0.05}},
    "flexible-moo": {"strategy": {"name": "flexible", "ratio": "moo",
                                  "moo": {"warmup_steps": 4}}},
    "fedavg": {"strategy": {"name": "fedavg", "period_steps": 4}},
    "localsgd": {"strategy": {"name": "localsgd", "average_every": 5}},
    "gravac": {"strategy": {"name": "gravac", "window": 5, "epsilon": 0.3}},
    "accordion": {"strategy": {"name": "accordion", "window": 5}},
    "diloco": {"strategy": {"name": "diloco", "h": 4}},
    # issue #19: outer momentum, error-fed top-k residuals and int8 scales in the state
    "diloco-star-int8": {"strategy": {"name": "diloco", "h": 4,
                                      "compress": {"ratio": 0.1, "values": "int8"}}},
    "postlocalsgd": {"strategy": {"name": "postlocalsgd"}},
    # issue #18, on a priced network (the collective and the dense switch are live); a fixed
    # selection cost, since measured CPU times differ between the two runs
    "auto": {"strategy": {"name": "auto", "window": 3, "selection_s": 0.0,
                          "moo": {"warmup_steps": 4}},
             "network": {"kind": "modeled", "alpha": "1ms", "bandwidth": "100mbit"}},
    "auto-gravac": {"strategy": {"name": "auto", "window": 3, "selection_s": 0.0,
                                 "ratio": "gravac", "gravac": {"window": 5, "epsilon": 0.3}},
                    "network": {"kind": "modeled", "alpha": "1ms", "bandwidth": "100mbit"}},
}
CASES = [pytest.param(n, STRATEGIES[n]) for n in STRATEGIES] + [
    pytest.param(n, MORE[n], marks=pytest.mark.slow) for n in MORE]


def test_the_resume_cases_cover_every_registered_strategy():
    from flexsync.strategies import STRATEGIES as REGISTERED

    covered = {c.values[1]["strategy"]["name"] for c in CASES}
    assert covered == set(REGISTERED)


@pytest.mark.parametrize("name,keys", CASES)
def test_resume_reproduces_the_uninterrupted_loss_trajectory(name, keys, tmp_path):
    tree = {**BASE, **keys}
    full = tmp_path / "full"
    train(build_config({**tree, "steps": 24, "out": str(full)}))
    part = tmp_path / "part"
    train(build_config({**tree, "steps": 12, "out": str(part), "checkpoint": {"every": 6}}))
    ckpt = checkpoint.latest(part)
    assert ckpt is not None and ckpt.name == "step-00000012"
    resumed = train(build_config({**tree, "steps": 24, "out": str(part),
                                  "checkpoint": {"every": 6}}), resume=part)
    a = read_metrics(full / "metrics.jsonl")
    b = read_metrics(part / "metrics.jsonl")
    assert [r["step"] for r in b] == list(range(1, 25))
    for ra, rb in zip(a, b, strict=True):
        assert rb["loss"] == pytest.approx(ra["loss"], rel=1e-5, abs=1e-6), ra["step"]
        assert rb["bytes_sent"] == ra["bytes_sent"]
        assert rb["modeled_time"] == pytest.approx(ra["modeled_time"], rel=1e-9)
    whole = json.loads((full / "summary.json").read_text())
    assert resumed["final_accuracy"] == pytest.approx(whole["final_accuracy"])


def _tree(tmp_path, steps=6):
    return {**BASE, "steps": steps, "out": str(tmp_path / "r"), "checkpoint": {"every": 3}}


def test_mismatched_or_corrupt_checkpoints_are_refused(tmp_path):
    train(build_config(_tree(tmp_path)))
    run = tmp_path / "r"
    other = {**_tree(tmp_path, 9), "strategy": {"name": "topk", "ratio": 0.1}}
    with pytest.raises(Exception, match="does not match this run: strategy"):
        train(build_config(other), resume=run)
    with pytest.raises(Exception, match="written by 2 workers; this run has 3"):
        train(build_config({**_tree(tmp_path, 9), "workers": 3}), resume=run)
    with pytest.raises(Exception, match="does not match this run: fingerprint"):
        train(build_config({**_tree(tmp_path, 9), "optimizer": {"lr": 0.5}}), resume=run)
    latest = checkpoint.latest(run)
    (latest / "rank1.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(Exception, match="rank1.pt: not a readable checkpoint file"):
        train(build_config(_tree(tmp_path, 9)), resume=run)


def test_only_plain_state_can_be_checkpointed():
    checkpoint.check_plain({"a": [1, 2.0, None, torch.zeros(2)], "b": {"c": (True, "x")}})
    with pytest.raises(checkpoint.CheckpointError, match=r"state.b\[0\]: cannot checkpoint"):
        checkpoint.check_plain({"b": [object()]})


def test_cli_resume_continues_a_run_to_more_steps(tmp_path, capsys):
    from flexsync.cli import main

    train(build_config(_tree(tmp_path)))
    assert main(["run", "--resume", str(tmp_path / "r"), "--set", "steps=9"]) == 0
    rows = read_metrics(tmp_path / "r" / "metrics.jsonl")
    assert [r["step"] for r in rows] == list(range(1, 10))
    assert main(["run", "--resume", str(tmp_path / "nothing")]) == 2
    assert "not a run directory" in capsys.readouterr().err
