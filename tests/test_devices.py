"""The same model gives the same answers on an accelerator as on the CPU: the GPT, the VAE, GPT-2, the samplers.

Every test runs once per accelerator that this machine has (CUDA, Apple's MPS) and is skipped, with the
reason, where it has none; ``make test`` on a GPU machine runs them (``tests/test_gan.py`` has the GAN's).

Tolerances. The weights and the noise are the same (noise is drawn on the CPU), so only float32 rounding
differs: the order of the terms in each sum. TF32 (10-bit mantissas in matrix products and convolutions on
recent NVIDIA GPUs) is switched off for these tests and restored after. The longest sum here has about 800
terms (a 4x4 transposed convolution over 16 channels, or a 256-wide MLP layer); its worst-case rounding is
n x 2^-24 ~ 5e-5 of the terms' magnitudes, and a few layers of roughly unit-scale activations compound that
to ~1e-4 at most, so logits and log-probabilities of size ~1 are compared to 1e-3 and per-image or
per-token averages (which average the roundings away) to a relative 1e-5 (1e-4 nats absolute for the VAE's
KL of ~0.02, whose terms cancel). Tokens are compared exactly. A greedy or beam choice flips only if two
candidates lie within rounding (~1e-6) of each other: with the prompts and seeds here the closest calls on the
CPU are 5e-4 (the GPT's beams), 9e-4 (its greedy path) and 1e-2 (GPT-2's) apart. A sampled token differs only
if a uniform draw falls within ~1e-6 of a boundary of the cumulative distribution: odds of about 1 in 1,000
over the few hundred draws here, for seeds that are fixed.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
import torch
from torch import nn

from course_utils import decoding, gpt, hf, text, vae

pytestmark = pytest.mark.usefixtures("one_thread")


def _available(kind: str) -> bool:
    if kind == "cuda":
        return torch.cuda.is_available()
    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


@pytest.fixture(params=["cuda", "mps"])
def accelerator(request: pytest.FixtureRequest) -> Iterator[torch.device]:
    """Each accelerator present, with TF32 off (restored after); a test is skipped for each one absent."""
    if not _available(request.param):
        pytest.skip(f"needs a {request.param.upper()} device; the CPU-only run skips the CPU/accelerator agreement")
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield torch.device(request.param)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def on(model: nn.Module, device: torch.device) -> nn.Module:
    """A copy of ``model`` on ``device``, in eval mode (the original stays on the CPU)."""
    return copy.deepcopy(model).to(device).eval()


# --- the character GPT (notebook 05) ------------------------------------------------------------------------


def tiny_gpt() -> gpt.GPT:
    torch.manual_seed(0)
    return gpt.GPT(vocab_size=40, block_size=32, n_layer=2, n_head=4, n_embd=64).eval()


def test_gpt_logits_and_loss_agree(accelerator):
    model = tiny_gpt()
    ids = torch.randint(40, (4, 32), generator=torch.Generator().manual_seed(1))
    targets = torch.roll(ids, -1, dims=1)
    with torch.no_grad():
        logits, loss = model(ids, targets)
        far_logits, far_loss = on(model, accelerator)(ids.to(accelerator), targets.to(accelerator))
    assert far_logits.device.type == accelerator.type
    assert torch.allclose(far_logits.cpu(), logits, atol=1e-3)
    assert far_loss.item() == pytest.approx(loss.item(), rel=1e-5)


def test_gpt_samples_the_same_text_from_a_cpu_generator(accelerator):
    model = tiny_gpt()
    prompt = torch.zeros(2, 1, dtype=torch.long)
    seeded = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    here = gpt.generate(model, prompt, 60, temperature=0.9, top_k=20, generator=seeded())
    there = gpt.generate(on(model, accelerator), prompt.to(accelerator), 60, temperature=0.9, top_k=20,
                         generator=seeded())
    assert torch.equal(there.cpu(), here)


def test_decoding_strategies_agree(accelerator):
    model, prompt = tiny_gpt(), torch.tensor([5, 6])
    far = on(model, accelerator)
    assert torch.equal(decoding.greedy(far, prompt, 40), decoding.greedy(model, prompt, 40))
    assert torch.equal(decoding.beam_search(far, prompt, 12, num_beams=3),
                       decoding.beam_search(model, prompt, 12, num_beams=3))
    settings = dict(temperature=0.8, top_p=0.9, repetition_penalty=1.3)
    assert torch.equal(decoding.sample(far, prompt, 40, generator=torch.Generator().manual_seed(5), **settings),
                       decoding.sample(model, prompt, 40, generator=torch.Generator().manual_seed(5), **settings))
    ids = torch.randint(40, (70,), generator=torch.Generator().manual_seed(2))  # longer than the block: windows
    here, there = decoding.continuation_log_probs(model, ids, 1), decoding.continuation_log_probs(far, ids, 1)
    assert there.device.type == "cpu" and torch.allclose(there, here, atol=1e-3)


# --- the samplers (notebooks 01, 05, 06) ------------------------------------------------------------------------


def test_sampling_filters_and_draws_agree(accelerator):
    g = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(500, 64, generator=g)
    far = logits.to(accelerator)
    for top_k, top_p in ((None, None), (10, None), (None, 0.8), (20, 0.5)):
        kept = text.filter_logits(logits, top_k, top_p).isfinite()
        assert torch.equal(text.filter_logits(far, top_k, top_p).isfinite().cpu(), kept)
        probs = text.logits_to_probs(logits, 0.7, top_k, top_p)
        assert torch.allclose(text.logits_to_probs(far, 0.7, top_k, top_p).cpu(), probs, atol=1e-6)
        draws = text.sample_logits(logits, 0.7, top_k, top_p, torch.Generator().manual_seed(1))
        far_draws = text.sample_logits(far, 0.7, top_k, top_p, torch.Generator().manual_seed(1))
        assert far_draws.device.type == accelerator.type and torch.equal(far_draws.cpu(), draws)


# --- the VAE (notebook 03) ------------------------------------------------------------------------------------


def test_vae_elbo_and_samples_agree(accelerator):
    torch.manual_seed(0)
    model = vae.ConvVAE(latent_dim=8, channels=(8, 16)).eval()
    images = (torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(1)) > 0.7).float()
    far = on(model, accelerator)
    here, there = vae.evaluate(model, images), vae.evaluate(far, images)
    assert there == pytest.approx(here, rel=1e-5, abs=1e-4)  # the ELBO's noise is drawn on the CPU from one seed
    samples = vae.sample(model, 16, generator=torch.Generator().manual_seed(2))
    far_samples = vae.sample(far, 16, generator=torch.Generator().manual_seed(2))
    assert far_samples.device.type == "cpu" and torch.allclose(far_samples, samples, atol=1e-4)  # pixels in [0, 1]
    assert torch.allclose(vae.encode_means(far, images), vae.encode_means(model, images), atol=1e-3)


# --- GPT-2 through transformers (notebook 06) -------------------------------------------------------------------


def tiny_gpt2() -> nn.Module:
    from transformers import GPT2Config

    config = GPT2Config(vocab_size=80, n_positions=32, n_embd=64, n_layer=2, n_head=4, bos_token_id=0,
                        eos_token_id=0, pad_token_id=0)
    return hf.make_gpt2(config, seed=0).eval()


def test_gpt2_loss_and_greedy_text_agree(accelerator):
    model = tiny_gpt2()
    far = on(model, accelerator)
    ids = torch.randint(1, 80, (100,), generator=torch.Generator().manual_seed(1))
    here, there = hf.token_nll(model, ids), hf.token_nll(far, ids)
    assert torch.allclose(there, here, atol=1e-3) and there.mean().item() == pytest.approx(here.mean().item(),
                                                                                          rel=1e-5)
    prompt = ids[None, :5]
    settings = dict(max_new_tokens=20, min_new_tokens=20, do_sample=False, pad_token_id=0)
    with torch.no_grad():
        greedy = model.generate(prompt, attention_mask=torch.ones_like(prompt), **settings)
        far_greedy = far.generate(prompt.to(accelerator), attention_mask=torch.ones_like(prompt).to(accelerator),
                                  **settings)
    assert torch.equal(far_greedy.cpu(), greedy)
