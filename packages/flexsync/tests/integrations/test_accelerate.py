"""The Accelerate adapter: single-process runs need no hook; anything but the prepared DDP
module is refused with a message saying what to pass. (The multi-process path runs for real in
tests/test_examples.py: examples/accelerate_hook.py under torchrun.)"""

from types import SimpleNamespace

import pytest
import torch.nn as nn

from flexsync.integrations.accelerate import register_accelerate_hook


def test_one_process_needs_no_hook():
    acc = SimpleNamespace(num_processes=1, distributed_type="NO")
    assert register_accelerate_hook(acc, nn.Linear(2, 2)) is None


def test_an_unprepared_model_is_refused_with_a_message():
    acc = SimpleNamespace(num_processes=2, distributed_type="MULTI_CPU")
    with pytest.raises(TypeError, match="accelerator.prepare.*Linear.*MULTI_CPU"):
        register_accelerate_hook(acc, nn.Linear(2, 2))
