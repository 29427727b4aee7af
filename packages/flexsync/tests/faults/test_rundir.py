"""A run directory holds one run: a second run into it is refused (exit 2, one line) and
leaves it untouched; ``--overwrite`` moves it aside whole; ``--resume`` continues it."""

import json
import shutil

import pytest

from flexsync.cli import main
from flexsync.train.metrics import read_metrics
from tests.faults.harness import snapshot, write_config

BASE = {"workers": 2, "steps": 4, "progress": False, "batch_size": 16, "eval": {"every": 2},
        "clock": {"compute": "model"}, "checkpoint": {"every": 2},
        "data": {"classes": 10, "train_size": 600, "test_size": 100}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One finished run (trained once for the module)."""
    root = tmp_path_factory.mktemp("rundir")
    cfg = write_config(root / "c.yaml", BASE)
    assert main(["run", str(cfg), "--set", f"out={root / 'r'}"]) == 0
    return cfg, root / "r"


@pytest.fixture
def first(trained, tmp_path):
    """A copy of that run for one test to reuse, overwrite or resume."""
    cfg, src = trained
    shutil.copytree(src, tmp_path / "r")
    return cfg, tmp_path / "r"


def _run_id(out):
    return json.loads((out / "summary.json").read_text())["run_id"]


def test_a_second_run_into_a_used_directory_is_refused_and_changes_nothing(first, capsys):
    cfg, out = first
    before = snapshot(out)
    capsys.readouterr()
    assert main(["run", str(cfg), "--set", f"out={out}", "--set", "steps=2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already holds files (run " in err[0] and "--resume" in err[0]
    assert snapshot(out) == before


def test_overwrite_moves_the_old_run_aside_whole(first):
    cfg, out = first
    before, old_id = snapshot(out), _run_id(out)
    assert main(["run", str(cfg), "--set", f"out={out}", "--overwrite"]) == 0
    aside = out.with_name("r.old-1")
    assert snapshot(aside) == before
    assert _run_id(out) != old_id


def test_every_file_of_a_run_names_its_run_id(first):
    _, out = first
    rid = _run_id(out)
    assert (out / "config.yaml").read_text().startswith(f"# flexsync run {rid}\n")
    assert {r["run_id"] for r in read_metrics(out / "metrics.jsonl")} == {rid}
    for log in (out / "logs").glob("rank*.log"):
        assert log.read_text().startswith(f"flexsync run {rid}, rank ")
    for ck in (out / "checkpoints").glob("step-*"):
        assert json.loads((ck / "meta.json").read_text())["run_id"] == rid
    from PIL import Image

    assert Image.open(out / "curves.png").text["Description"] == f"flexsync run {rid}"


def test_resume_keeps_the_run_id_and_continues_the_same_rows(first):
    _, out = first
    rid = _run_id(out)
    assert main(["run", "--resume", str(out), "--set", "steps=6"]) == 0
    rows = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in rows] == list(range(1, 7)) and {r["run_id"] for r in rows} == {rid}
    assert _run_id(out) == rid


@pytest.mark.parametrize("out, why", [("/dev/null", "exists and is not a directory"),
                                      ("..", "the current directory or one of its parents"),
                                      (".", "the current directory")])
def test_out_must_be_a_directory_of_its_own(tmp_path, monkeypatch, capsys, out, why):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--set", f"out={out}", "--set", "steps=1"]) == 2
    assert why in capsys.readouterr().err


def test_overwrite_refuses_a_directory_that_is_not_a_run(tmp_path, capsys):
    d = tmp_path / "photos"
    d.mkdir()
    (d / "cat.jpg").write_bytes(b"x")
    assert main(["run", "--set", f"out={d}", "--overwrite", "--set", "steps=1"]) == 2
    assert "is not a flexsync run directory" in capsys.readouterr().err
    assert (d / "cat.jpg").exists()
