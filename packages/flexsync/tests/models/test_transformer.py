import pytest
import torch
import torch.nn.functional as F

from flexsync.models.transformer import PRESETS, TransformerLM, param_count

# Counts at vocab 256, block 128, computed by hand from the formula in the module doc.
EXPECTED = {"xs": 1_040_768, "s": 3_633_024, "m": 9_987_200, "l": 25_416_704}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_parameter_count_matches_closed_form(name):
    model = TransformerLM.from_preset(name, vocab=256, block=128)
    n = sum(p.numel() for p in model.parameters())
    width, depth, _ = PRESETS[name]
    assert n == param_count(256, 128, width, depth) == EXPECTED[name]


def test_closed_form_holds_off_preset():
    model = TransformerLM(vocab=37, block=9, width=24, depth=3, heads=2)
    assert sum(p.numel() for p in model.parameters()) == param_count(37, 9, 24, 3)


def test_causal_future_tokens_never_change_past_logits():
    torch.manual_seed(0)
    model = TransformerLM(vocab=50, block=16, width=32, depth=2, heads=4).eval()
    x = torch.randint(50, (3, 16))
    base = model(x)
    assert base.shape == (3, 16, 50)
    for t in range(15):
        x2 = x.clone()
        x2[:, t + 1:] = (x2[:, t + 1:] + 1 + torch.randint(49, x2[:, t + 1:].shape)) % 50
        out = model(x2)
        assert torch.allclose(out[:, :t + 1], base[:, :t + 1], atol=1e-5)
        assert not torch.allclose(out[:, t + 1], base[:, t + 1], atol=1e-5)


def test_input_and_output_embeddings_are_tied():
    torch.manual_seed(0)
    model = TransformerLM(vocab=20, block=8, width=16, depth=1, heads=2)
    x = torch.randint(20, (2, 8))
    model(x).sum().backward()
    assert model.tok.weight.grad is not None
    with torch.no_grad():
        model.tok.weight[3] += 1.0
    h = model.ln_f(model.blocks[0](model.tok(x) + model.pos(torch.arange(8))))
    assert torch.allclose(model(x), h @ model.tok.weight.t(), atol=1e-6)
    assert not any(p.shape == (20, 16) for n, p in model.named_parameters() if n != "tok.weight")


def test_gpt2_init_scales_residual_projections():
    torch.manual_seed(0)
    model = TransformerLM(vocab=256, block=128, width=256, depth=8, heads=4)
    assert abs(model.blocks[0].fc1.weight.std().item() - 0.02) < 0.001
    assert abs(model.blocks[0].fc2.weight.std().item() - 0.02 / 4) < 0.0005
    assert abs(model.blocks[0].attn.proj.weight.std().item() - 0.02 / 4) < 0.0005


def test_rejects_sequences_longer_than_the_block():
    model = TransformerLM(vocab=10, block=4, width=8, depth=1, heads=2)
    with pytest.raises(ValueError):
        model(torch.zeros(1, 5, dtype=torch.long))


def test_a_few_adam_steps_learn_a_tiny_corpus():
    """A periodic sequence is learnable from context: 60 Adam steps must take the loss from
    about ln 16 = 2.77 nats to below half of that (measured: about 0.1)."""
    torch.manual_seed(0)
    stream = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 15] * 40)
    x = torch.stack([stream[i:i + 16] for i in range(0, 600, 7)])
    y = torch.stack([stream[i + 1:i + 17] for i in range(0, 600, 7)])
    model = TransformerLM(vocab=16, block=16, width=32, depth=2, heads=2)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def loss():
        return F.cross_entropy(model(x).flatten(0, 1), y.flatten())
    first = loss().item()
    for _ in range(60):
        opt.zero_grad()
        loss().backward()
        opt.step()
    assert first > 2.3
    assert loss().item() < 0.5 * first
