"""HetGAT Enc-Dec policy structure (design note §3.7 item 3)."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from swarmgames.fleet.config import AamConfig, DemandConfig, NetworkConfig
from swarmgames.fleet.hetgraph import build_graph, ego_subgraph, vertiport_types
from swarmgames.fleet.policy import ENCODERS, FleetPolicy, PolicyConfig
from swarmgames.fleet.sim import AamSim

CFG = AamConfig(steps=30, network=NetworkConfig(n_vertiports=5, side_km=10.0, n_depots=2),
                fleets=((1, 1, 1), (1, 1, 0)), max_requests=4, demand=DemandConfig(rate=3.0))


def busy_sim(cfg=CFG, seed=0, steps=4):
    sim = AamSim(cfg, seed)
    for _ in range(steps):  # let queues build up
        sim.step(np.full(sim.n, sim.wait_action))
    return sim


def policy(enc="hetgat", vp=("vertiport",), **kw):
    torch.manual_seed(0)
    return FleetPolicy(PolicyConfig(encoder=enc, d=16, heads=2, **kw), vp).eval()


@pytest.mark.parametrize("enc", ENCODERS)
def test_masked_actions_have_exactly_zero_probability(enc):
    sim = busy_sim()
    g = build_graph(sim)
    with torch.no_grad():
        p = torch.softmax(policy(enc).logits(g), -1)
    mask = g["vehicle"].mask
    assert (p[~mask] == 0).all()
    assert torch.allclose(p.sum(-1), torch.ones(sim.n))
    assert mask.sum() > sim.n  # some real choices exist


def _permute_requests(g, sigma_slots, perm_nodes):
    """Reorder request nodes by ``perm_nodes`` and every vehicle's serve slots by σ."""
    h = g.clone()
    inv = torch.empty_like(perm_nodes)
    inv[perm_nodes] = torch.arange(len(perm_nodes))
    h["request"].x = g["request"].x[perm_nodes]
    for (s, r, d), ei in g.edge_index_dict.items():
        ei = ei.clone()
        if s == "request":
            ei[0] = inv[ei[0]]
        if d == "request":
            ei[1] = inv[ei[1]]
        h[s, r, d].edge_index = ei
    M = g["vehicle"].cand_req.shape[1]
    cr = g["vehicle"].cand_req[:, sigma_slots]
    h["vehicle"].cand_req = torch.where(cr >= 0, inv[cr.clamp(min=0)], cr)
    cols = torch.cat([sigma_slots, torch.arange(M, g["vehicle"].mask.shape[1])])
    h["vehicle"].mask = g["vehicle"].mask[:, cols]
    h["vehicle"].cand_rel = g["vehicle"].cand_rel[:, cols]
    return h, cols


@pytest.mark.parametrize("enc", ["hetgat", "hgt", "rgcn"])
def test_permuting_requests_permutes_logits(enc):
    sim = busy_sim()
    g = build_graph(sim)
    M = sim.M
    assert (g["vehicle"].cand_req >= 0).sum(1).max() >= 2
    gen = torch.Generator().manual_seed(1)
    perm_nodes = torch.randperm(g["request"].num_nodes, generator=gen)
    sigma = torch.randperm(M, generator=gen)
    h, cols = _permute_requests(g, sigma, perm_nodes)
    pol = policy(enc)
    with torch.no_grad():
        a, b = pol.logits(g), pol.logits(h)
    fin = torch.isfinite(a[:, cols])
    assert torch.equal(fin, torch.isfinite(b))
    assert torch.allclose(a[:, cols][fin], b[fin], atol=1e-5)


@pytest.mark.parametrize("vp_types", ["single", "depot_client"])
@pytest.mark.parametrize("enc", ["hetgat", "gcn", "gatv2", "rgcn", "hgt", "mlp"])
def test_global_graph_and_ego_graph_give_identical_logits(enc, vp_types):
    cfg = replace(CFG, vertiport_types=vp_types, topology="comm_1hop")
    sim = busy_sim(cfg, seed=2)
    g = build_graph(sim)
    pol = policy(enc, vertiport_types(sim))
    with torch.no_grad():
        full = pol.logits(g)
        for i in range(sim.n):
            sub, e = ego_subgraph(g, i, pol.cfg.layers + 2)
            assert sub["vehicle"].num_nodes <= sim.n
            ego = pol.logits(sub, torch.tensor([e]))[0]
            fin = torch.isfinite(full[i])
            assert torch.equal(torch.isfinite(ego), fin)
            assert torch.allclose(ego[fin], full[i][fin], atol=1e-5)


def test_ego_graph_is_local_under_local_topology():
    sim = busy_sim(replace(CFG, topology="local"))
    g = build_graph(sim)
    sub, _ = ego_subgraph(g, 0, 4)
    assert sub["vehicle"].num_nodes == 1  # no comm edges: nobody else can influence vehicle 0
    assert g["rival", "comm", "vehicle"].edge_index.shape[1] == 0


def test_same_weights_run_on_unseen_sizes():
    pol = policy("hetgat")
    bigger = replace(CFG, network=replace(CFG.network, n_vertiports=9, side_km=14.0),
                     fleets=((3, 2, 2), (2, 3, 2)), max_requests=7)
    for cfg in (bigger, replace(CFG, fleets=((0, 0, 2),), max_requests=2)):
        sim = busy_sim(cfg, seed=4)
        g = build_graph(sim)
        with torch.no_grad():
            p = torch.softmax(pol.logits(g), -1)
        assert p.shape == (sim.n, cfg.n_actions)
        assert torch.allclose(p.sum(-1), torch.ones(sim.n))
        assert (p[~g["vehicle"].mask] == 0).all()


def test_rival_nodes_are_carried_forward():
    pol = policy("hetgat")
    g = build_graph(busy_sim())
    with torch.no_grad():
        h = pol.embed(g)
        h0 = pol.encoder.inp["rival"](g["rival"].x)
    assert torch.allclose(h["rival"], h0)  # never a destination: unchanged, present
