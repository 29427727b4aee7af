"""``flexsync bench scaling``: the table has the command on top, a row per preset and per
world size, a row per size measured on local workers with its peak memory, the plots are
written, and the priced communication behaves as the α-β model says
(top-k's bytes shrink with the ratio; dense ring time grows with the model)."""

from flexsync.bench import _comm_s, scaling


def test_scaling_writes_its_table_and_plot(tmp_path):
    text = scaling(tmp_path, presets=("xs",), worlds=(2, 8), bandwidth="100mbit", batch=1,
                   local_worlds=(2,), local_steps=2,
                   command="flexsync bench scaling --bandwidth 100mbit")
    assert "Command: `flexsync bench scaling --bandwidth 100mbit`" in text
    assert (tmp_path / "scaling.png").stat().st_size > 0
    assert (tmp_path / "scaling-local.png").stat().st_size > 0
    rows = [line.split("|") for line in text.splitlines() if line.startswith("| xs |")]
    assert len(rows) == 2                          # the priced row and the local 2-worker row
    assert rows[1][3].strip() == "2" and float(rows[1][-3]) > 0     # workers, tensors MB
    assert [line.split("|")[1].strip() for line in text.splitlines()
            if line.startswith("| 2 |") or line.startswith("| 8 |")] == ["2", "8"]


def test_priced_top_k_is_cheaper_than_dense_on_a_slow_link_and_grows_with_the_model():
    beta = 1 / 12.5e6                                       # 100 Mbit/s
    small, large = _comm_s(1_000_000, 0.01, 8, 1e-4, beta), _comm_s(25_000_000, 0.01, 8, 1e-4,
                                                                    beta)
    assert small["topk"] < small["dense"] and large["topk"] < large["dense"]
    assert large["dense"] > 20 * small["dense"]
