"""``stdlib-text``: a byte-level language-modelling corpus built from the Python standard
library of the running interpreter (issue #23, "Workloads": real text that ships with every
Python, offline, a fixed documented file list with a content hash).

**File rule.** Every ``*.py`` file under ``sysconfig.get_paths()["stdlib"]``, walked
recursively, except

* any path with a directory component in :data:`EXCLUDED_DIRS` (``site-packages``,
  ``dist-packages``, ``__pycache__``, and test suites: ``test``, ``tests``, ``idle_test``, which
  covers ``test/``, ``lib2to3/tests``, ``idlelib/idle_test``, ``unittest/test``,
  ``ctypes/test``, ``tkinter/test``, ``distutils/tests`` …), and any file whose name starts
  with ``test_``;
* any file that is not plain UTF-8 text: it must decode with strict UTF-8, carry no byte-order
  mark and contain no NUL byte (NUL is the corpus's end-of-file marker, below).

Files are sorted by their relative POSIX path (byte order of the UTF-8 path), so two machines
with the same standard library build the same corpus. The same *minor* version normally means
the same files, but patch releases do edit the standard library: ``info["content_sha256"]``
and ``info["files_sha256"]`` identify the corpus exactly, and a run records them.

**Tokens.** Byte-level, vocabulary 256: a token is one byte of the UTF-8 source. No tokenizer
to train or download, the loss is directly in nats per byte, and bits per byte
(:func:`bits_per_byte`) is comparable across tokenizers. Each file contributes its bytes
followed by one NUL byte (0x00), so the model sees document boundaries.

**Split by file.** A file goes to validation when the first 8 bytes of
SHA-256(relative path), read as a big-endian integer, fall below ``val_fraction · 2⁶⁴``
(default 7.5 %). The split depends on the path only - not on the seed, the file order or the
caps - so no file is ever in both splits and adding a file moves no other file.

**Windows.** The train and validation streams are cut into non-overlapping windows of
``seq_len`` tokens, ``x`` a window and ``y`` the same window shifted by one token, exactly
like ``synthetic_text``. ``max_train_bytes`` / ``max_val_bytes`` keep a prefix of each stream
(in file order) for short budgets. The corpus never depends on ``seed``; it is accepted because
every dataset builder takes one.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
import sysconfig
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from flexsync.data.dataset import Dataset

EXCLUDED_DIRS = frozenset({"site-packages", "dist-packages", "__pycache__",
                           "test", "tests", "idle_test"})
EOF_BYTE = 0
VOCAB = 256


@dataclass(frozen=True)
class Corpus:
    """The raw corpus: the sorted relative paths and each file's bytes (without the EOF)."""

    root: str
    paths: tuple[str, ...]
    contents: tuple[bytes, ...]


def _is_plain_utf8(data: bytes) -> bool:
    if b"\x00" in data or data.startswith(b"\xef\xbb\xbf"):
        return False
    try:
        data.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        return False
    return True


def stdlib_files(root: str | None = None) -> list[str]:
    """Relative POSIX paths of the candidate ``*.py`` files (before the UTF-8 check), sorted."""
    base = Path(root or sysconfig.get_paths()["stdlib"])
    out = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = [d for d in dirnames if d not in EXCLUDED_DIRS]
        rel_dir = Path(dirpath).relative_to(base)
        for name in filenames:
            if name.endswith(".py") and not name.startswith("test_"):
                out.append((rel_dir / name).as_posix())
    return sorted(out, key=lambda p: p.encode("utf-8"))


@lru_cache(maxsize=4)
def read_corpus(root: str | None = None) -> Corpus:
    """Read every file once (cached per process); drops files that are not plain UTF-8."""
    base = root or sysconfig.get_paths()["stdlib"]
    paths, contents = [], []
    for rel in stdlib_files(base):
        data = (Path(base) / rel).read_bytes()
        if _is_plain_utf8(data):
            paths.append(rel)
            contents.append(data)
    return Corpus(base, tuple(paths), tuple(contents))


def is_validation(rel_path: str, val_fraction: float) -> bool:
    """The split rule: a hash of the relative path against ``val_fraction`` (module doc)."""
    h = int.from_bytes(hashlib.sha256(rel_path.encode("utf-8")).digest()[:8], "big")
    return h < val_fraction * 2.0 ** 64


def _windows(stream: bytes, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    n = (len(stream) - 1) // seq_len
    if n < 1:
        raise ValueError(f"stream of {len(stream)} bytes is shorter than one window of {seq_len}")
    s = torch.frombuffer(bytearray(stream[: n * seq_len + 1]), dtype=torch.uint8).long()
    return s[:-1].view(n, seq_len).clone(), s[1:].view(n, seq_len).clone()


def _stream(corpus: Corpus, val: bool, val_fraction: float, cap: int | None,
            offset: int = 0) -> bytes:
    pairs = zip(corpus.paths, corpus.contents, strict=True)
    parts = [c + bytes([EOF_BYTE]) for p, c in pairs if is_validation(p, val_fraction) == val]
    data = b"".join(parts)[offset:]
    return data if cap is None else data[:cap]


def corpus_hashes(corpus: Corpus) -> tuple[str, str]:
    """(SHA-256 of the full corpus stream in file order, SHA-256 of the newline-joined list)."""
    content = hashlib.sha256()
    for c in corpus.contents:
        content.update(c)
        content.update(bytes([EOF_BYTE]))
    files = hashlib.sha256("\n".join(corpus.paths).encode("utf-8")).hexdigest()
    return content.hexdigest(), files


@lru_cache(maxsize=8)
def _build(seq_len: int, max_train_bytes: int | None, max_val_bytes: int | None,
           val_fraction: float, root: str | None, val_offset_bytes: int = 0) -> Dataset:
    corpus = read_corpus(root)
    train = _stream(corpus, False, val_fraction, max_train_bytes)
    val = _stream(corpus, True, val_fraction, max_val_bytes, val_offset_bytes)
    train_x, train_y = _windows(train, seq_len)
    test_x, test_y = _windows(val, seq_len)
    content_sha, files_sha = corpus_hashes(corpus)
    n_val = sum(is_validation(p, val_fraction) for p in corpus.paths)
    info = {
        "python_version": ".".join(map(str, sys.version_info[:3])),
        "python_minor": f"{sys.version_info[0]}.{sys.version_info[1]}",
        "files": len(corpus.paths), "train_files": len(corpus.paths) - n_val,
        "val_files": n_val,
        "bytes": sum(len(c) + 1 for c in corpus.contents),
        "train_bytes": len(train), "val_bytes": len(val), "val_offset_bytes": val_offset_bytes,
        "content_sha256": content_sha, "files_sha256": files_sha,
        "tokenizer": "bytes", "val_fraction": val_fraction,
        "uniform_bits_per_byte": 8.0,
    }
    return Dataset("stdlib-text", train_x, train_y, test_x, test_y, VOCAB, task="language",
                   info=info)


def stdlib_text(
    seed: int = 0,
    seq_len: int = 128,
    max_train_bytes: int | None = None,
    max_val_bytes: int | None = None,
    val_fraction: float = 0.075,
    root: str | None = None,
    val_offset_bytes: int = 0,
) -> Dataset:
    """Build the corpus (cached per process by the options; module doc for the rules).

    ``seed`` does not change the corpus. ``root`` overrides the standard-library directory
    (tests only). The returned tensors are shared by every caller with the same options:
    treat them as read-only. ``val_offset_bytes`` skips that many bytes of the held-out
    stream before ``max_val_bytes`` is applied: with an offset at least the default cap, a
    second held-out split disjoint from the default test bytes (for choosing settings without
    looking at the test set).
    """
    del seed
    if seq_len < 1:
        raise ValueError("seq_len must be >= 1")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError("val_fraction must be in (0, 1)")
    for cap in (max_train_bytes, max_val_bytes):
        if cap is not None and cap < seq_len + 1:
            raise ValueError(f"byte caps must be at least seq_len + 1 = {seq_len + 1}")
    if val_offset_bytes < 0:
        raise ValueError("val_offset_bytes must be >= 0")
    return _build(seq_len, max_train_bytes, max_val_bytes, val_fraction, root, val_offset_bytes)


def bits_per_byte(mean_nats_per_token: float) -> float:
    """Bits per byte from the mean cross-entropy in nats per token. Tokens are bytes here, so
    it is nats / ln 2; uniform over 256 symbols is exactly 8."""
    return mean_nats_per_token / math.log(2)


def perplexity(mean_nats_per_token: float) -> float:
    """Per-token (here per-byte) perplexity, exp(mean cross-entropy in nats)."""
    return math.exp(mean_nats_per_token)


def nats_from_bits_per_byte(bpb: float) -> float:
    """Inverse of :func:`bits_per_byte`."""
    return bpb * math.log(2)
