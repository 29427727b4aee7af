"""Damaged checkpoints are refused before any worker starts, with exit code 2 and one line
naming the file, and the run directory is left exactly as it was."""

import os
import shutil

import pytest

from flexsync.cli import main
from tests.faults.harness import snapshot, write_config

BASE = {"workers": 2, "steps": 6, "progress": False, "batch_size": 16, "eval": {"every": 3},
        "clock": {"compute": "model"}, "checkpoint": {"every": 3},
        "data": {"classes": 10, "train_size": 600, "test_size": 100}}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two finished runs of the same config, each with checkpoints at steps 3 and 6."""
    root = tmp_path_factory.mktemp("ckpt")
    cfg = write_config(root / "c.yaml", BASE)
    for name in ("a", "b"):
        assert main(["run", str(cfg), "--set", f"out={root / name}"]) == 0
    return root


@pytest.fixture
def run(runs, tmp_path):
    d = tmp_path / "r"
    shutil.copytree(runs / "a", d)
    return d


def _swap(ck, runs):
    a, b = ck / "rank0.pt", ck / "rank1.pt"
    tmp = ck / "x"
    os.replace(a, tmp)
    os.replace(b, a)
    os.replace(tmp, b)


def _copy(ck, runs):
    shutil.copy(ck / "rank0.pt", ck / "rank1.pt")


def _foreign(ck, runs):
    shutil.copy(runs / "b" / "checkpoints" / ck.name / "rank1.pt", ck / "rank1.pt")


def _truncate(ck, runs):
    data = (ck / "rank1.pt").read_bytes()
    (ck / "rank1.pt").write_bytes(data[: len(data) // 2])


def _random(ck, runs):
    (ck / "rank0.pt").write_bytes(os.urandom(4096))


def _flip_one_byte(ck, runs):
    data = bytearray((ck / "rank1.pt").read_bytes())
    data[-100] ^= 0xFF                       # inside the payload: still a loadable zip
    (ck / "rank1.pt").write_bytes(bytes(data))


def _meta_gone_everywhere(ck, runs):
    for d in ck.parent.glob("step-*"):
        (d / "meta.json").unlink()


@pytest.mark.parametrize("damage, message", [
    (_swap, r"step-00000006/rank0\.pt: holds rank 1 of 2, expected rank 0 of 2 "
            r"\(files swapped or copied\)"),
    (_copy, r"step-00000006/rank1\.pt: holds rank 0 of 2, expected rank 1"),
    (_foreign, r"step-00000006/rank1\.pt: belongs to run '[^']+', this checkpoint to run"),
    (_truncate, r"step-00000006/rank1\.pt: not a readable checkpoint file \(truncated"),
    (_random, r"step-00000006/rank0\.pt: not a readable checkpoint file"),
    (_flip_one_byte, r"step-00000006/rank1\.pt: (checksum does not match|not a readable)"),
    (_meta_gone_everywhere, r"no complete checkpoint under .*r \(.*step-00000006 has no "
                            r"meta\.json"),
])
def test_a_damaged_checkpoint_is_refused_naming_the_file(run, runs, damage, message, capsys):
    damage(run / "checkpoints" / "step-00000006", runs)
    before = snapshot(run)
    assert main(["run", "--resume", str(run), "--set", "steps=9"]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("flexsync: "), err
    import re

    assert re.search(message, err[0]), err[0]
    assert snapshot(run) == before


def test_a_missing_meta_json_in_the_newest_checkpoint_resumes_from_the_one_before(run, capsys):
    """An interrupted commit: the newest checkpoint has no meta.json; the one before is
    complete and verified, so the run continues from it and says so."""
    (run / "checkpoints" / "step-00000006" / "meta.json").unlink()
    assert main(["run", "--resume", str(run), "--set", "steps=8"]) == 0
    err = capsys.readouterr().err
    assert "passing over the incomplete checkpoint" in err and "resuming from step-00000003" \
        in err
    rows = (run / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 8


def test_ddp_powersgd_resume_is_refused_as_approximate(tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", {**BASE, "steps": 3, "strategy": {
        "name": "ddp", "hook": "powersgd", "powersgd_start_iter": 2}})
    assert main(["run", str(cfg), "--set", f"out={tmp_path / 'p'}"]) == 0
    before = snapshot(tmp_path / "p")
    assert main(["run", "--resume", str(tmp_path / "p"), "--set", "steps=6"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("flexsync: strategy ddp with hook powersgd cannot resume "
                              "exactly"), err
    assert snapshot(tmp_path / "p") == before
