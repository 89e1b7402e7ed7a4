"""course_utils.gpt: the char GPT's parts against known answers and PyTorch, its initialisation and sampling;
and the text playground of course_utils.widgets (notebook 05)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from course_utils import decoding, gpt, text
from course_utils.widgets import TextPlayground

TINY = gpt.GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16)


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_model(seed: int = 0, **overrides) -> gpt.GPT:
    torch.manual_seed(seed)
    return gpt.GPT(TINY, **overrides).eval()


# --- the config ------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad, message", [
    (dict(n_embd=30, n_head=4), "multiple of n_head"),
    (dict(n_layer=0), "n_layer"),
    (dict(block_size=2.5), "block_size"),
    (dict(dropout=1.0), "dropout"),
    (dict(activation="relu"), "activation"),
])
def test_config_refuses_bad_sizes(bad, message):
    with pytest.raises(ValueError, match=message):
        gpt.GPTConfig(**bad)


def test_default_size_is_nanogpts_cpu_model_and_counts_exactly():
    model = gpt.GPT()
    c = model.config
    assert (c.n_layer, c.n_head, c.n_embd, c.block_size, c.vocab_size) == (4, 4, 128, 64, 65)
    blocks = c.n_layer * (12 * c.n_embd**2 + 2 * c.n_embd)  # qkv 3C^2, proj C^2, MLP 8C^2; two layer-norm gains
    embeddings = c.vocab_size * c.n_embd + c.block_size * c.n_embd
    expected = blocks + embeddings + c.n_embd + c.vocab_size * c.n_embd  # final norm, output layer
    assert sum(p.numel() for p in model.parameters()) == expected == 812_416


def test_parameter_names_are_nanogpts():
    names = set(gpt.GPT(TINY).state_dict())
    for name in ("transformer.wte.weight", "transformer.wpe.weight", "transformer.h.0.ln_1.weight",
                 "transformer.h.0.attn.c_attn.weight", "transformer.h.1.mlp.c_proj.weight",
                 "transformer.ln_f.weight", "lm_head.weight"):
        assert name in names


def test_tied_weights_share_one_tensor():
    model = gpt.GPT(TINY, tie_weights=True)
    assert model.transformer.wte.weight is model.lm_head.weight


def test_gpt2_switches_biases_and_the_tanh_gelu():
    """What Hugging Face's GPT-2 weights need: biases in every linear layer and layer norm (not the head),
    and GELU's tanh approximation (``gelu_new``); the defaults keep the shipped char GPT's exact GELU."""
    plain, gpt2_like = tiny_model(), tiny_model(bias=True, activation="gelu_new")
    extra = {n for n in gpt2_like.state_dict()} - set(plain.state_dict())
    assert extra and all(n.endswith(".bias") for n in extra) and "lm_head.bias" not in extra
    assert {"transformer.ln_f.bias", "transformer.h.0.ln_1.bias", "transformer.h.1.mlp.c_fc.bias"} <= extra
    x = torch.linspace(-4, 4, 101)
    new_gelu = 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))  # GPT-2's formula
    for activation, expected in (("gelu", F.gelu(x)), ("gelu_new", new_gelu)):
        mlp = gpt.MLP(gpt.GPTConfig(n_embd=4, n_head=1, activation=activation))
        with torch.no_grad():
            mlp.c_fc.weight.copy_(torch.eye(16, 4)), mlp.c_proj.weight.copy_(torch.eye(4, 16))
        assert torch.allclose(mlp(x.reshape(-1, 1).expand(-1, 4))[:, 0], expected, atol=1e-6), activation
    assert (F.gelu(x) - new_gelu).abs().max() > 1e-4  # the two differ: the switch matters


# --- attention -----------------------------------------------------------------------------------------


def test_causal_mask_is_the_lower_triangle():
    assert gpt.causal_mask(3).tolist() == [[True, False, False], [True, True, False], [True, True, True]]


def test_attention_with_equal_scores_is_the_running_mean_of_the_values():
    v = torch.tensor([[1.0, 0.0], [3.0, 2.0], [5.0, 4.0]])
    q = k = torch.zeros(3, 2)  # every score 0: uniform weights over the allowed keys
    y, w = gpt.attention(q, k, v, gpt.causal_mask(3))
    assert torch.allclose(y, torch.tensor([[1.0, 0.0], [2.0, 1.0], [3.0, 2.0]]))
    assert torch.allclose(w[2], torch.full((3,), 1 / 3))


def test_attention_matches_pytorchs_fused_kernel():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 4, generator=g) for _ in range(3))
    y, w = gpt.attention(q, k, v, gpt.causal_mask(5))
    # float32 softmax and two matmuls of length <= 5: rounding differences of a few ulps
    assert torch.allclose(y, F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=1e-6)
    assert torch.allclose(w.sum(-1), torch.ones(2, 3, 5)) and (w.triu(1) == 0).all()


def test_the_scale_keeps_score_variance_near_one():
    g = torch.Generator().manual_seed(0)
    d = 256
    q, k = torch.randn(4000, d, generator=g), torch.randn(4000, d, generator=g)
    raw = (q * k).sum(1)
    # 4,000 samples: the variance estimate has a relative standard error of sqrt(2/4000) = 2.2%
    assert abs(raw.var().item() / d - 1) < 0.1
    assert abs((raw / math.sqrt(d)).var().item() - 1) < 0.1


def test_module_attention_paths_agree_and_the_weights_are_causal():
    model = tiny_model()
    attn = model.transformer.h[0].attn
    x = torch.randn(3, 8, 16, generator=torch.Generator().manual_seed(1))
    fused = attn(x)
    explicit, weights = attn(x, need_weights=True)
    assert torch.allclose(fused, explicit, atol=1e-6)  # float32 rounding, as above
    assert weights.shape == (3, 2, 8, 8) and (weights.triu(1) == 0).all()


def test_the_model_is_causal():
    model = tiny_model()
    a = torch.randint(11, (1, 8), generator=torch.Generator().manual_seed(0))
    b = a.clone()
    b[0, 5:] = (b[0, 5:] + 1) % 11  # change the future only
    la, lb = model(a)[0], model(b)[0]
    assert torch.allclose(la[0, :5], lb[0, :5], atol=1e-6)
    assert not torch.allclose(la[0, 5:], lb[0, 5:], atol=1e-3)


def test_attention_maps_match_the_layer_computed_by_hand():
    model = tiny_model()
    idx = torch.randint(11, (2, 8), generator=torch.Generator().manual_seed(0))
    maps = gpt.attention_maps(model, idx)
    assert maps.shape == (2, 2, 2, 8, 8)
    _, w0 = model.transformer.h[0].attn(model.transformer.h[0].ln_1(model.embed(idx)), need_weights=True)
    assert torch.allclose(maps[:, 0], w0)
    assert torch.allclose(maps.sum(-1), torch.ones(2, 2, 2, 8))


def test_embed_refuses_sequences_longer_than_the_block():
    with pytest.raises(ValueError, match="block_size=8"):
        tiny_model()(torch.zeros(1, 9, dtype=torch.long))


# --- initialisation and loss ------------------------------------------------------------------------------


def test_init_is_gpt2s():
    model = gpt.GPT()
    # 8,320 and 16,384 weights: a std estimate within 2% (its standard error is about 1/sqrt(2n) < 1%)
    assert abs(model.transformer.wte.weight.std().item() / 0.02 - 1) < 0.02
    proj = model.transformer.h[0].mlp.c_proj.weight
    assert abs(proj.std().item() / (0.02 / math.sqrt(8)) - 1) < 0.02


def test_initial_loss_is_close_to_uniform_guessing():
    model = gpt.GPT()
    idx = torch.randint(65, (8, 64), generator=torch.Generator().manual_seed(0))
    _, loss = model(idx[:, :-1], idx[:, 1:])
    # logits start with a standard deviation of about 0.02 * sqrt(128) = 0.23, adding about 0.03 to log 65
    assert abs(loss.item() - math.log(65)) < 0.1


# --- generation -----------------------------------------------------------------------------------------------


def test_generate_is_seeded_crops_to_the_block_and_top_k_1_is_greedy():
    model = tiny_model()
    prompt = torch.tensor([[1, 2, 3]])
    a = gpt.generate(model, prompt, 20, generator=torch.Generator().manual_seed(0))
    b = gpt.generate(model, prompt, 20, generator=torch.Generator().manual_seed(0))
    assert a.shape == (1, 23) and torch.equal(a, b) and torch.equal(a[:, :3], prompt)
    top1 = gpt.generate(model, prompt, 20, top_k=1)
    assert torch.equal(top1[0], decoding.greedy(model, prompt[0], 20))


def test_generate_is_decoding_sample_row_by_row():
    model, g = tiny_model(), lambda: torch.Generator().manual_seed(5)
    prompts = torch.tensor([[1, 2, 3], [4, 5, 6]])
    batch = gpt.generate(model, prompts, 15, temperature=1.3, top_k=5, generator=g())
    assert torch.equal(batch, decoding.sample(model, prompts, 15, 1.3, 5, generator=g()))  # one loop, two doors
    one = decoding.sample(model, prompts[0], 15, 1.3, 5, generator=g())
    assert one.ndim == 1 and torch.equal(one, gpt.generate(model, prompts[:1], 15, 1.3, 5, generator=g())[0])
    assert not torch.equal(batch[0, 3:], batch[1, 3:])  # each row draws its own tokens


def test_generate_refuses_an_empty_prompt():
    with pytest.raises(ValueError, match="at least one token"):
        gpt.generate(tiny_model(), torch.zeros(1, 0, dtype=torch.long), 5)


# --- the text playground (course_utils.widgets) --------------------------------------------------------------


@pytest.fixture(scope="module")
def playground():
    vocab = text.build_vocab("abcdefghijk \n")
    torch.manual_seed(0)
    model = gpt.GPT(vocab_size=len(vocab), block_size=8, n_layer=1, n_head=1, n_embd=8)
    return TextPlayground({"tiny": (model, vocab)}, prompt="abc", length=30)


def test_playground_update_is_seeded_and_follows_its_controls(playground):
    a = playground.update("tiny", "abc", 30, 1.0)
    assert len(a) == 30 and a == playground.update("tiny", "abc", 30, 1.0)
    assert len(playground.update("tiny", "abc", 40, 1.0)) == 40
    greedy_text = text.build_vocab("abcdefghijk \n").decode(
        decoding.greedy(playground.models["tiny"][0], torch.tensor([0, 1, 2]), 30)[3:].tolist())
    assert playground.update("tiny", "abc", 30, 1.0, top_k=1) == greedy_text
    assert playground.update("tiny", "abc", 30, 1.0, top_k=0, top_p=1.0) == a  # 0 and 1: the filters are off


def test_playground_explains_instead_of_failing(playground):
    assert "does not know these characters: 'XZ'" in playground.update("tiny", "aXbZ", 10, 1.0)
    assert "unknown model" in playground.update("big", "abc", 10, 1.0)
    assert "above 0" in playground.update("tiny", "abc", 10, 0.0)
    assert len(playground.update("tiny", "", 10, 1.0)) == 10  # an empty prompt starts from a newline


def test_playground_widget_redraws_when_a_control_changes(playground):
    box = playground.widget()
    first = box.output.value
    assert first == playground.update("tiny", "abc", 30, 0.8)
    box.controls["length"].value = 60
    assert len(box.output.value) == 60 and box.output.value != first
    box.controls["prompt"].value = "a?"
    assert "does not know" in box.output.value
