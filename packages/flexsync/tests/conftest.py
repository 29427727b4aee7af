import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture
def run_workers():
    """Run ``fn(*args)`` in N forked gloo workers (the library's own launcher); a hang becomes
    a failure after ``deadline_s``."""
    from flexsync.launch import run_local

    def _run(fn, world_size, *args, deadline_s=120):
        return run_local(fn, world_size, args, backend="gloo", timeout_s=60,
                         deadline_s=deadline_s)

    return _run
