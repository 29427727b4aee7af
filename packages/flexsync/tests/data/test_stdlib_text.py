import json
import math
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from flexsync.data import load_dataset
from flexsync.data.stdlib_text import (
    bits_per_byte,
    is_validation,
    nats_from_bits_per_byte,
    perplexity,
    read_corpus,
    stdlib_text,
)

_BUILD = """
import hashlib, json
from flexsync.data.stdlib_text import stdlib_text
d = stdlib_text(seq_len=128)
h = hashlib.sha256()
for t in (d.train_x, d.train_y, d.test_x, d.test_y):
    h.update(str(tuple(t.shape)).encode()); h.update(t.numpy().tobytes())
print(json.dumps({"tensors": h.hexdigest(), **d.info}))
"""


def _build_in_subprocess() -> dict:
    out = subprocess.run([sys.executable, "-c", _BUILD], capture_output=True, text=True,
                         check=True, timeout=120,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_two_builds_in_separate_processes_are_byte_identical():
    a, b = _build_in_subprocess(), _build_in_subprocess()
    assert a == b
    assert len(a["content_sha256"]) == 64 and len(a["files_sha256"]) == 64
    here = stdlib_text()
    assert here.info["content_sha256"] == a["content_sha256"]
    assert a["files"] > 200 and a["bytes"] > 1_000_000


def test_shape_and_contract_match_synthetic_text():
    d = load_dataset("stdlib-text", 0, max_train_bytes=20_000, max_val_bytes=5_000, seq_len=64)
    assert d.task == "language" and d.num_classes == 256
    assert d.train_x.shape == (312, 64) and d.test_x.shape == (78, 64)
    assert d.train_x.dtype == torch.long and int(d.train_x.max()) < 256
    assert torch.equal(d.train_x[:, 1:], d.train_y[:, :-1])
    assert torch.equal(d.train_x[1:, 0], d.train_y[:-1, -1])      # windows are contiguous
    assert d.info["train_bytes"] == 20_000 and d.info["val_bytes"] == 5_000


def test_corpus_does_not_depend_on_seed_and_caps_take_a_prefix():
    full = stdlib_text(seed=0)
    other = stdlib_text(seed=5)
    assert torch.equal(full.train_x, other.train_x)
    capped = stdlib_text(seed=0, max_train_bytes=128 * 50 + 1)
    assert torch.equal(capped.train_x, full.train_x[:50])


def _write(root, rel, data: bytes):
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)


def test_file_rule_and_split_by_file(tmp_path):
    keep = {f"pkg{i}/mod{i}.py": f"# file {i}\n".encode() * (5 + i) for i in range(40)}
    keep["top.py"] = "x = 'é'\n".encode()
    for rel, data in keep.items():
        _write(tmp_path, rel, data)
    for rel, data in {"site-packages/a.py": b"a", "test/b.py": b"b", "pkg1/tests/c.py": b"c",
                      "idlelib/idle_test/d.py": b"d", "pkg2/test_e.py": b"e",
                      "latin.py": "é".encode("latin-1"), "bom.py": b"\xef\xbb\xbfx=1\n",
                      "nul.py": b"x\x00y", "notes.txt": b"text"}.items():
        _write(tmp_path, rel, data)
    corpus = read_corpus(str(tmp_path))
    assert list(corpus.paths) == sorted(keep)
    d = stdlib_text(seq_len=1, val_fraction=0.3, root=str(tmp_path))   # drops no byte
    streams = {}
    for split, x, y in (("train", d.train_x, d.train_y), ("val", d.test_x, d.test_y)):
        tokens = torch.cat([x.flatten(), y[-1:, -1]])
        streams[split] = bytes(tokens.tolist())
    in_val = {rel for rel in keep if is_validation(rel, 0.3)}
    assert 0 < len(in_val) < len(keep)
    for rel, data in keep.items():
        body = data + b"\x00"
        home, away = ("val", "train") if rel in in_val else ("train", "val")
        assert body in streams[home]
        assert data not in streams[away]
    assert d.info["val_files"] == len(in_val)


def test_bits_per_byte_and_perplexity_by_hand():
    assert bits_per_byte(math.log(256)) == pytest.approx(8.0)
    assert bits_per_byte(1.0) == pytest.approx(1.4426950408889634)
    assert bits_per_byte(2.0794415416798357) == pytest.approx(3.0)      # ln 8 → 3 bits
    assert perplexity(math.log(256)) == pytest.approx(256.0)
    assert nats_from_bits_per_byte(bits_per_byte(0.7)) == pytest.approx(0.7)
    # uniform logits over 256 bytes: cross-entropy ln 256 nats per token = 8 bits per byte
    logits = torch.zeros(10, 256)
    nats = F.cross_entropy(logits, torch.randint(256, (10,))).item()
    assert bits_per_byte(nats) == pytest.approx(8.0, rel=1e-6)


def test_rejects_bad_options():
    with pytest.raises(ValueError):
        stdlib_text(seq_len=128, max_train_bytes=100)
    with pytest.raises(ValueError):
        stdlib_text(val_fraction=0.0)


def test_val_offset_takes_a_held_out_split_disjoint_from_the_default_test_bytes():
    test = stdlib_text(seq_len=32, max_val_bytes=2048)
    val = stdlib_text(seq_len=32, max_val_bytes=2048, val_offset_bytes=2048)
    both = stdlib_text(seq_len=32, max_val_bytes=4097)
    assert torch.equal(both.test_x[:63], test.test_x)
    assert torch.equal(both.test_x[64:127], val.test_x)
    assert torch.equal(val.train_x, test.train_x)         # the training stream is unchanged
    assert val.info["val_offset_bytes"] == 2048
