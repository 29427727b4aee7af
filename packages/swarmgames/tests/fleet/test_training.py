"""Training machinery (design note §3.4, §3.7 item 5 smoke part) and the AAM CLI."""

from pathlib import Path

import numpy as np
import pytest
import torch

from swarmgames.cli import main
from swarmgames.fleet.train.config import load_aam_config
from swarmgames.fleet.train.ppo import Trainer, semi_mdp_gae
from swarmgames.fleet.train.rollout import run_episodes

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_semi_mdp_gae_matches_hand_computation():
    # decisions at t = 0 and 3 over a horizon of 5, γ = 0.9, λ = 0.5
    r = np.array([1.0, 0.0, 2.0, 1.0, 1.0])
    v = np.array([0.5, 0.25])
    adv, ret = semi_mdp_gae(np.array([0, 3]), r, v, 5, 0.9, 0.5)
    a1 = (1.0 + 0.9 * 1.0) - 0.25
    d0 = (1.0 + 0.81 * 2.0) + 0.9**3 * 0.25 - 0.5
    assert np.isclose(adv[1], a1)
    assert np.isclose(adv[0], d0 + (0.45**3) * a1)
    assert np.allclose(ret, adv + v)


def _params(pol):
    return torch.cat([p.detach().flatten() for p in pol.parameters()])


def test_tiny_ppo_is_deterministic_and_updates():
    cfg, _ = load_aam_config(CONFIGS / "aam_tiny.yaml", ["train.iterations=1"])
    a = Trainer(cfg)
    p0 = _params(a.policy).clone()
    ra = a.train()
    b = Trainer(cfg).train()
    assert torch.equal(_params(ra.policy), _params(b.policy))
    assert not torch.equal(p0, _params(ra.policy))
    assert ra.curve[0]["entropy"] > 0


def test_serve_bonus_shapes_the_training_reward_and_nothing_else():
    """The bonus adds exactly ``serve_bonus`` per credited pick-up to the recorded rewards; the
    episode (actions, metrics, fleet reward) is unchanged."""
    cfg, _ = load_aam_config(CONFIGS / "aam_small.yaml", ["env.steps=20"])
    from swarmgames.fleet.hetgraph import vertiport_types
    from swarmgames.fleet.policy import FleetPolicy
    from swarmgames.fleet.sim import AamSim

    torch.manual_seed(0)
    pol = FleetPolicy(cfg.policy, vertiport_types(AamSim(cfg.env, 0)), len(cfg.env.fleets))
    seeds = [3, 4]
    plain = run_episodes(cfg.env, seeds, pol, greedy=True)
    shaped = run_episodes(cfg.env, seeds, pol, greedy=True, serve_bonus=5.0)
    picked_total = 0
    for p, s in zip(plain, shaped, strict=True):
        assert p.metrics == s.metrics
        extra = np.asarray(s.rewards) - np.asarray(p.rewards)          # (T, N)
        assert np.allclose(extra / 5.0, np.round(extra / 5.0))
        # fleet sharing: every vehicle of a fleet is credited its fleet's pick-ups
        per_fleet = extra[:, s.fleet == 0][:, 0] + extra[:, s.fleet == 1][:, 0]
        picked = s.metrics["onboard"] + s.metrics["delivered"]
        assert per_fleet.sum() / 5.0 == picked
        picked_total += picked
    assert picked_total > 0


def test_imitation_warm_start_learns_the_teachers_choices():
    """Behaviour cloning of greedy-nearest: cross-entropy falls, and afterwards the policy's
    argmax agrees with the teacher on the large majority of decisions of fresh episodes."""
    cfg, _ = load_aam_config(CONFIGS / "aam_tiny.yaml", [
        "train.imitate=greedy_nearest", "train.imitate_episodes=6", "train.imitate_epochs=8"])
    tr = Trainer(cfg)
    st = tr.imitate()
    assert st["imitation_ce"] < 0.5 * st["imitation_ce_first"]
    fresh = run_episodes(cfg.env, [777, 778], tr.policy, teacher="greedy_nearest")
    agree = total = 0
    with torch.no_grad():
        for ep in fresh:
            for g, dec, act in zip(ep.graphs, ep.deciders, ep.actions, strict=True):
                if len(dec):
                    pred = tr.policy.logits(g, torch.as_tensor(dec)).argmax(-1).numpy()
                    agree += int((pred == act).sum())
                    total += len(dec)
    assert total > 0 and agree / total >= 0.8


def test_eval_modes_are_validated():
    with pytest.raises(ValueError, match="modes"):
        load_aam_config(CONFIGS / "aam_tiny.yaml", ["eval.modes=[argmax]"])


def test_reinforce_and_ippo_options_run():
    for sets in (["train.algo=reinforce", "train.baseline=rollout"],
                 ["policy.critic=ippo", "policy.encoder=gcn"]):
        cfg, _ = load_aam_config(CONFIGS / "aam_tiny.yaml",
                                 ["train.iterations=1", "train.episodes_per_iter=1", *sets])
        res = Trainer(cfg).train()
        assert torch.isfinite(_params(res.policy)).all()


def test_cli_train_then_eval_with_matrix(tmp_path):
    out = tmp_path / "tr"
    rc = main(["train", str(CONFIGS / "aam_tiny.yaml"), "--set", "train.iterations=1",
               "--set", "eval.n_seeds=2", "--out", str(out)])
    assert rc == 0
    for f in ("checkpoint.pt", "learning_curve.csv", "learning_curve.png", "network.png",
              "eval.md", "run.json"):
        assert (out / f).stat().st_size > 0
    ev = tmp_path / "ev"
    rc = main(["eval", str(CONFIGS / "aam_tiny.yaml"), "--checkpoint", str(out / "checkpoint.pt"),
               "--set", "eval.n_seeds=2", "--heuristics", "random", "greedy_profit",
               "--matrix", str(CONFIGS / "aam_tiny.yaml"), "--paired", "random",
               "--out", str(ev)])
    assert rc == 0
    table = (ev / "eval.md").read_text()
    assert "greedy_profit" in table and "aam_tiny:hetgat:s0 (sampled)" in table
    assert "aam_tiny:hetgat:s0 (greedy)" in table
    assert (ev / "generalisation.md").exists() and (ev / "network_final.png").exists()
    assert "Δ fleet_reward vs random" in (ev / "paired.md").read_text()


def test_paired_table_is_the_seed_by_seed_difference():
    from swarmgames.fleet.train.evaluate import paired_table

    ref = [{"fleet_reward": 10.0, "fulfilment_ratio": 0.5},
           {"fleet_reward": 20.0, "fulfilment_ratio": 0.7}]
    pol = [{"fleet_reward": 13.0, "fulfilment_ratio": 0.4},
           {"fleet_reward": 25.0, "fulfilment_ratio": 0.7}]
    row = paired_table({"ref": ref, "pol": pol}, "ref").splitlines()[2]
    cells = [c.strip() for c in row.strip("|").split("|")]
    # reward: differences 3 and 5 → mean 4, both ahead; FR: −0.1 and 0 → −0.05, none ahead
    assert cells[0] == "pol" and cells[1].startswith("+4 ±") and cells[2] == "2/2"
    assert cells[3].startswith("-0.05 ±") and cells[4] == "0/2"


def test_cli_config_error_names_key(tmp_path, capsys):
    rc = main(["train", str(CONFIGS / "aam_tiny.yaml"), "--set", "policy.encoder=transformer",
               "--out", str(tmp_path)])
    assert rc == 2
    assert "policy.encoder" in capsys.readouterr().err


def test_generalisation_matrix_across_vertiport_typings_and_fleet_counts():
    """The README's `eval configs/aam_small.yaml ... --matrix configs/aam_tiny.yaml` crashed
    with KeyError: 'depot' (issue 22): a depot/client policy (2 fleets, aam_small) must
    evaluate on the single-typed 1-fleet tiny config, and a single-typed one on a depot/client
    config."""
    from dataclasses import replace

    from swarmgames.fleet.hetgraph import vertiport_types
    from swarmgames.fleet.policy import FleetPolicy
    from swarmgames.fleet.sim import AamSim
    from swarmgames.fleet.train.evaluate import generalisation_matrix

    small, _ = load_aam_config(CONFIGS / "aam_small.yaml")
    tiny, _ = load_aam_config(CONFIGS / "aam_tiny.yaml")
    assert small.env.vertiport_types == "depot_client" and tiny.env.vertiport_types == "single"
    pols = {}
    for name, cfg in (("small", small), ("tiny", tiny)):
        torch.manual_seed(0)
        pols[name] = FleetPolicy(replace(tiny.policy, d=8), vertiport_types(AamSim(cfg.env, 0)),
                                 len(cfg.env.fleets))
    short = {"tiny": replace(tiny.env, steps=5),
             "small": replace(small.env, steps=5)}
    table = generalisation_matrix(pols, short, [100000, 100001])
    rows = [r for r in table.splitlines() if r.startswith("| small") or r.startswith("| tiny")]
    assert len(rows) == 2 and all(r.count("±") == 2 for r in rows)


def test_time_budget_stops_training_for_equal_compute():
    """train.time_budget_s (bench --time-budget): training stops after the first iteration
    that reaches the CPU-time budget; iterations are only a cap."""
    cfg, _ = load_aam_config(CONFIGS / "aam_tiny.yaml",
                             ["train.iterations=50", "train.time_budget_s=0.001"])
    res = Trainer(cfg).train()
    assert len(res.curve) == 1 and res.curve[0]["cpu_s"] >= 0.001
    with pytest.raises(Exception, match="time_budget_s"):
        load_aam_config(CONFIGS / "aam_tiny.yaml", ["train.time_budget_s=-1"])


def test_bench_table_rows_are_complete_and_deltas_paired(tmp_path):
    """bench.md: every row has the header's cell count; Δ is the paired HetGAT − encoder mean
    over common training seeds with a Student-t interval."""
    from swarmgames.fleet.train.bench import write_table

    cfg, _ = load_aam_config(CONFIGS / "aam_tiny.yaml", ["eval.n_seeds=2", "env.steps=5"])
    rows = [{"encoder": e, "seed": s, "fleet_reward": r, "fulfilment_ratio": f,
             "train_s": 1.0, "iterations": 3}
            for e, s, r, f in [("hetgat", 0, 10.0, 0.5), ("hetgat", 1, 14.0, 0.7),
                               ("mlp", 0, 7.0, 0.6), ("mlp", 1, 9.0, 0.6)]]
    text = write_table(cfg, rows, tmp_path)
    table = [r for r in text.splitlines() if r.startswith("|")]
    assert len({r.count("|") for r in table}) == 1
    mlp = next(r for r in table if r.startswith("| mlp"))
    # Δ reward: (10−7, 14−9) → mean 4, t_{0.975,1}·s/√2 = 12.706·1.414/1.414 = 12.7
    assert "+4.0 ± 12.7" in mlp
