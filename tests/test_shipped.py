"""The checkpoints the course ships in data/checkpoints: present, verified, and as good as their cards say.

These tests fail (never skip) when a shipped file is missing: the notebooks need them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from course_utils import diffusion_training, gpt_training, reference_stats, vae
from course_utils.checkpoints import SHIPPED_DIR, load_checkpoint, load_tensors, read_metadata
from course_utils.classifier import accuracy
from course_utils.datasets import image_tensors
from course_utils.gan import generate, generator_fid

SHIPPED = {  # name: largest size in bytes
    "fmnist_classifier": 1_000_000,
    "fmnist_fid_reference": 140_000,
    "cgan_generator": 2_400_000,
    "vae_fmnist": 5_000_000,
    "char_gpt": 5_000_000,
    diffusion_training.DDPM_NAME: 20_000_000,
}


@pytest.mark.parametrize("name", list(SHIPPED))
def test_shipped_files_exist_verify_and_are_small(name):
    weights = SHIPPED_DIR / f"{name}.safetensors"
    assert weights.exists(), f"{weights} is missing: the notebooks load it (git checkout data/checkpoints)"
    assert weights.stat().st_size <= SHIPPED[name]
    load_tensors(SHIPPED_DIR / name)  # raises on a checksum mismatch or a card of another format


def test_shipped_classifier_accuracy_matches_its_card_on_all_test_images():
    clf, meta = load_checkpoint(SHIPPED_DIR / "fmnist_classifier")
    x, y = image_tensors("fashion-mnist", train=False)
    assert len(x) == meta["test_images"] == 10_000
    measured = accuracy(clf, x, y)
    assert abs(measured - meta["test_accuracy"]) <= 0.002, f"{measured:.4f} vs card {meta['test_accuracy']}"
    assert measured >= 0.92


def test_shipped_reference_belongs_to_the_shipped_classifier():
    clf, _ = load_checkpoint(SHIPPED_DIR / "fmnist_classifier")
    ref = read_metadata(SHIPPED_DIR / "fmnist_fid_reference")
    assert ref["classifier_fingerprint"] == reference_stats.model_fingerprint(clf)
    assert {k: ref[k] for k in ("source", "images_sha256", "images")} == reference_stats.training_images_key()


def test_shipped_generator_card_and_samples():
    G, meta = load_checkpoint(SHIPPED_DIR / "cgan_generator")
    assert meta["fid_fmnist"]["samples"] >= 5000
    curve = meta["fid_curve"]["fid"]
    assert len(curve) == meta["training"]["epochs"] + 1 and curve[-1] < curve[0] / 50
    images = generate(G, 20, torch.arange(20) % 10, rng=torch.Generator().manual_seed(0))
    assert images.shape == (20, 1, 28, 28)
    clf, _ = load_checkpoint(SHIPPED_DIR / "fmnist_classifier")
    # 2,000 samples: a cheap check that the generator is the card's (the notebook recomputes the card's 10,000)
    fid = generator_fid(G, clf, reference_stats.load_or_compute(clf), 2000)
    assert fid < 2 * meta["fid_fmnist"]["value"]


def test_shipped_vae_reaches_its_card_on_all_test_images():
    model, meta = load_checkpoint(SHIPPED_DIR / vae.VAE_NAME)
    assert isinstance(model, vae.ConvVAE)
    claim = meta["test_neg_elbo"]
    assert claim["images"] == 10_000 and claim["noise_seed"] == vae.ELBO_SEED
    assert len(meta["curve"]["neg_elbo"]) == meta["training"]["epochs"] and meta["curve"]["neg_elbo"][-1] <= 240
    measured = vae.evaluate(model, image_tensors("fashion-mnist", train=False)[0])["neg_elbo"]
    # the same weights, images and noise: only float rounding differs between machines (well under 0.1 nats)
    assert abs(measured - claim["value"]) <= 0.1, f"{measured:.3f} vs card {claim['value']}"
    assert measured <= 240


def test_shipped_ddpm_recomputes_its_fid_check():
    model, meta = load_checkpoint(SHIPPED_DIR / diffusion_training.DDPM_NAME)
    assert meta["weights_bytes"] <= 20_000_000
    claim = meta["fid_fmnist"]  # the card's FID: 5,000 DDIM samples (notebook 04 recomputes it in the gpu profile)
    assert claim["samples"] >= 5000 and claim["noise_seed"] == diffusion_training.FID_SEED, "retrain with --ship"
    check = meta["fid_check"]
    assert (check["samples"], check["steps"]) == (diffusion_training.CHECK_SAMPLES, diffusion_training.CHECK_STEPS)
    clf, _ = load_checkpoint(SHIPPED_DIR / "fmnist_classifier")
    measured = diffusion_training.sample_fid(model, clf, reference_stats.load_or_compute(clf), check["samples"],
                                             check["steps"], check["guidance"], seed=check["noise_seed"])
    # the same weights, noise and classifier: only float rounding differs between machines
    assert abs(measured - check["value"]) <= 0.01 * check["value"], f"{measured:.3f} vs card {check['value']}"


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_shipped_ddpm_samples_better_with_ddpm_than_ddim_at_five_steps(seed):
    """Notebook 04, section 4.3 says so for its noise seed (1234); two more seeds here, 200 samples each."""
    model, _ = load_checkpoint(SHIPPED_DIR / diffusion_training.DDPM_NAME)
    clf, _ = load_checkpoint(SHIPPED_DIR / "fmnist_classifier")
    ref = reference_stats.load_or_compute(clf)
    ddpm, ddim = (diffusion_training.sample_fid(model, clf, ref, 200, 5, seed=seed, method=m) for m in ("ddpm", "ddim"))
    assert ddpm < ddim, f"seed {seed}: DDPM {ddpm:.1f}, DDIM {ddim:.1f}"


def test_shipped_char_gpt_card_and_quick_check():
    model, meta = load_checkpoint(SHIPPED_DIR / gpt_training.CHECKPOINT_NAME)
    data = gpt_training.char_data()
    assert meta["vocab"] == "".join(data.vocab.itos)
    # 30 minutes of a 2-core CPU (no GPU was lent): the bound of a CPU ship, not the course's 1.55 target
    assert meta["val_loss"] <= gpt_training.SHIPPED_MAX_NATS_PER_CHAR
    assert len(meta["curve"]["val"]) == len(meta["curve"]["eval_step"]) >= 10
    # the curve starts at the first evaluation (after the warm-up, near the bigram's 2.5) and falls by over a nat
    assert meta["curve"]["val"][-1] < meta["curve"]["val"][0] - 0.8
    check = meta["val_check"]
    # 200 evenly spaced validation windows (the notebook recomputes all of them): float32 sums in another order
    # differ by about 1e-6; another model differs by more than 0.01
    assert abs(gpt_training.evaluate(model, data.val, max_windows=check["windows"]) - check["value"]) < 1e-3


def test_shipped_hf_gpt_verifies_is_small_and_reaches_its_card():
    from course_utils import hf
    from course_utils.datasets import load_text

    folder = SHIPPED_DIR / hf.HF_GPT_NAME
    assert folder.is_dir(), f"{folder} is missing: notebook 06 loads it (python -m course_utils.train hf-gpt --ship)"
    card = hf.verify_hf(folder)  # raises on a checksum mismatch, a pickled file or a card of another format
    # loadable by transformers 4.x too (Colab): 5.x's own "TokenizersBackend" class does not exist there
    config = json.loads((folder / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast"
    # and no token_type_ids from 4.x's tokenizer: GPT-2 would add a token-type embedding (hf.save_hf writes this)
    assert config["model_input_names"] == list(hf.bpe.MODEL_INPUTS)
    assert sum(p.stat().st_size for p in folder.iterdir()) <= 15_000_000
    model, tokenizer, _ = hf.load_hf(folder)
    _, val_text = hf.split_text(load_text("tinyshakespeare"))
    measured = hf.evaluate_lm(model, tokenizer, val_text)
    assert measured["tokens"] == card["val"]["tokens"]
    curve = card["curve"]  # every 250 steps: the loss on the first 20,000 validation tokens fell from the first point
    assert len(curve["val"]) == len(curve["step"]) >= 3 and curve["val"][-1] < curve["val"][0] - 0.3
    # the same weights and text: only float rounding differs between machines (far below 0.005 nats)
    assert abs(measured["nats_per_char"] - card["val"]["nats_per_char"]) < 0.005
    # the target is a property of the weights, measured once on the training machine and stored in the card
    assert card["val"]["nats_per_char"] <= hf.TARGET_NATS_PER_CHAR, \
        f"{card['val']['nats_per_char']:.4f} nats/char: retrain with --ship"


def test_the_ship_recipes_are_what_the_shipped_checkpoints_ran():
    from course_utils import classifier, gan

    cards = {name: read_metadata(SHIPPED_DIR / name) for name in ("cgan_generator", "fmnist_classifier", vae.VAE_NAME)}
    g, c, v = gan.RECIPES["ship"], classifier.RECIPES["ship"], vae.RECIPES["ship"]
    G, _ = load_checkpoint(SHIPPED_DIR / "cgan_generator")
    assert cards["cgan_generator"]["training"]["steps"] == g.steps and G.config.channels == g.channels
    assert cards["cgan_generator"]["training"]["batch_size"] == g.batch_size and f"lr {g.lr}" in \
        cards["cgan_generator"]["training"]["optimizer"]
    assert cards["fmnist_classifier"]["training"]["epochs"] == c.epochs
    assert cards[vae.VAE_NAME]["training"]["epochs"] == v.epochs and f"lr {v.lr}, {v.schedule}" in \
        cards[vae.VAE_NAME]["training"]["optimizer"]
    model, _ = load_checkpoint(SHIPPED_DIR / vae.VAE_NAME)
    assert model.config.latent_dim == v.latent_dim and tuple(model.config.channels) == v.channels


def test_each_shipped_card_names_the_notebook_that_teaches_it():
    """A card's task ends "(notebook NN)": that notebook exists and teaches the card's topic (after renumbering)."""
    topics = {"cgan_generator": "gan", "fmnist_classifier": "gan", vae.VAE_NAME: "vae", "char_gpt": "from_scratch",
              diffusion_training.DDPM_NAME: "diffusion", "hf_gpt/course_card": "huggingface"}
    notebooks = Path(__file__).resolve().parents[1] / "notebooks"
    for name, topic in topics.items():
        card = json.loads((SHIPPED_DIR / f"{name}.json").read_text())
        number = re.search(r"\(notebook (\d\d)\)$", card["task"]).group(1)
        assert [p.stem for p in notebooks.glob(f"{number}_*{topic}*.ipynb")], f"{name}: notebook {number}"
