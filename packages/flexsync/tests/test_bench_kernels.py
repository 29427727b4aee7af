"""``flexsync bench kernels`` writes its table with the command on top, and the default
selector's recall and energy against exact top-k (a property, not a timing: exact top-k
through the reused threshold gives 1.0 on tie-free vectors)."""

import torch

from flexsync.bench import kernels


def test_kernel_table_reports_exact_recall_and_energy(tmp_path):
    text = kernels(tmp_path, sizes=(20_000,), ratios=(0.01, 0.1), threads=(1,),
                   command="flexsync bench kernels --sizes 20000")
    assert (tmp_path / "kernels.md").read_text().strip() == text.strip()
    assert "Command: `flexsync bench kernels --sizes 20000`" in text
    rows = [r for r in text.splitlines() if r.startswith("| cpu |")]
    if torch.cuda.is_available():
        assert any(r.startswith("| cuda |") for r in text.splitlines())
    assert len(rows) == 2
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[9] == "1.0000" and cells[10] == "1.0000"      # recall, energy
