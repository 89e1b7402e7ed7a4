"""course_utils.vae: shapes, the ELBO's parts against known answers and torch.distributions, evaluation,
posterior-collapse measures, training and the shipped-VAE command (notebook 03)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

from course_utils import train, vae
from course_utils.checkpoints import load_checkpoint, read_metadata, save_checkpoint
from course_utils.datasets import image_tensors
from course_utils.runtime import seed_everything
from course_utils.vae import MLPVAE, Autoencoder, ConvVAE
from tests.vae_support import bar_images

pytestmark = pytest.mark.usefixtures("one_thread")  # small models: one thread is fastest

# --- models --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [MLPVAE(latent_dim=3, hidden=16), ConvVAE(latent_dim=3, channels=(4, 8)),
                                   ConvVAE(latent_dim=3, channels=(4, 8), hidden=16)], ids=["mlp", "conv", "conv+fc"])
def test_vaes_encode_to_gaussians_and_decode_to_logits(model):
    torch.manual_seed(0)
    x = bar_images(5)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (5, 3)
    assert model.decode(mu).shape == (5, 1, 28, 28)
    logits, mu2, _ = model(x)
    assert logits.shape == x.shape and torch.equal(mu, mu2)
    with pytest.raises(ValueError, match=r"images must be \[N, 1, 28, 28\]"):
        model.encode(x.view(5, 784))
    with pytest.raises(ValueError, match=r"z must be \[N, 3\]"):
        model.decode(torch.zeros(5, 4))


def test_configs_refuse_bad_sizes():
    with pytest.raises(ValueError, match="latent_dim must be an int >= 1"):
        MLPVAE(latent_dim=0)
    with pytest.raises(ValueError, match="channels must be two ints"):
        ConvVAE(channels=(8,))
    with pytest.raises(ValueError, match="hidden must be an int >= 0"):
        ConvVAE(hidden=-1)


def test_models_round_trip_through_a_checkpoint(tmp_path):
    torch.manual_seed(0)
    for model in (MLPVAE(latent_dim=2, hidden=8), ConvVAE(latent_dim=4, channels=(2, 4), hidden=8),
                  Autoencoder(latent_dim=2, hidden=8)):
        save_checkpoint(model, tmp_path / "m")
        rebuilt, _ = load_checkpoint(tmp_path / "m")
        assert type(rebuilt) is type(model) and rebuilt.config == model.config
        for a, b in zip(model.state_dict().values(), rebuilt.state_dict().values(), strict=True):
            assert torch.equal(a, b)


def test_autoencoder_reconstructs_through_its_bottleneck():
    torch.manual_seed(0)
    ae = Autoencoder(latent_dim=2, hidden=8)
    x = bar_images(3)
    assert ae(x).shape == x.shape
    assert ae.encoder(x).shape == (3, 2)


def test_pixel_bias_starts_the_decoder_at_the_mean_image():
    torch.manual_seed(0)
    model = MLPVAE(latent_dim=2, hidden=8)
    x = bar_images(64)
    vae.init_pixel_bias(model, x)
    torch.nn.init.zeros_(model.decoder[-1].weight)  # the decoder's own output is then 0 for every z
    probs = torch.sigmoid(model.decode(torch.randn(4, 2)))
    assert torch.allclose(probs, x.mean(0, keepdim=True).clamp(1e-3, 1 - 1e-3).expand(4, -1, -1, -1), atol=1e-6)


# --- the ELBO's parts ------------------------------------------------------------------------------------------


def test_reparameterize_is_mu_plus_sigma_eps_and_passes_gradients():
    mu = torch.tensor([[0.5, -1.0, 2.0]], requires_grad=True)
    logvar = torch.tensor([[0.0, math.log(4.0), math.log(0.25)]], requires_grad=True)
    z = vae.reparameterize(mu, logvar, torch.Generator().manual_seed(3))
    eps = torch.randn(1, 3, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(z, mu + torch.tensor([[1.0, 2.0, 0.5]]) * eps)
    z.sum().backward()
    assert torch.equal(mu.grad, torch.ones_like(mu))  # dz/dmu = 1
    assert torch.allclose(logvar.grad, 0.5 * (z - mu).detach())  # dz/dlogvar = sigma * eps / 2
    with pytest.raises(ValueError, match="same shape"):
        vae.reparameterize(torch.zeros(2, 3), torch.zeros(2, 4))


def test_gaussian_kl_matches_torch_distributions_and_is_zero_at_the_prior():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(7, 5, generator=g), torch.randn(7, 5, generator=g)
    expected = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0))
    assert torch.allclose(vae.gaussian_kl(mu, logvar), expected, atol=1e-6)
    assert torch.equal(vae.gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3)), torch.zeros(2, 3))


def test_gaussian_kl_agrees_with_a_monte_carlo_estimate():
    mu, logvar = torch.tensor([[1.0, -0.5]]), torch.tensor([[math.log(0.5), math.log(2.0)]])
    q = Normal(mu, (0.5 * logvar).exp())
    z = mu + (0.5 * logvar).exp() * torch.randn(400_000, 2, generator=torch.Generator().manual_seed(0))
    mc = (q.log_prob(z) - Normal(0.0, 1.0).log_prob(z)).mean(0)
    # the per-sample log-ratio has a standard deviation below 1.5 here: 400,000 samples give a standard
    # error under 0.0024, so 0.01 is more than 4 standard errors
    assert torch.allclose(mc, vae.gaussian_kl(mu, logvar)[0], atol=0.01)


def test_bernoulli_nll_sums_binary_cross_entropy_over_pixels():
    x = bar_images(3)
    assert torch.allclose(vae.bernoulli_nll(torch.zeros_like(x), x), torch.full((3,), 784 * math.log(2)))
    logits = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    by_hand = F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="none").flatten(1).sum(1)
    assert torch.allclose(vae.bernoulli_nll(logits, x), by_hand, rtol=1e-5)
    with pytest.raises(ValueError, match="same shape"):
        vae.bernoulli_nll(logits[:2], x)


def test_vae_loss_is_recon_plus_beta_kl_averaged_over_the_batch():
    g = torch.Generator().manual_seed(0)
    x = bar_images(4)
    logits = torch.randn(x.shape, generator=g)
    mu, logvar = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    recon = vae.bernoulli_nll(logits, x).mean()
    kl = vae.gaussian_kl(mu, logvar).sum(1).mean()
    loss, r, k = vae.vae_loss(logits, x, mu, logvar, beta=2.5)
    assert torch.allclose(r, recon) and torch.allclose(k, kl) and torch.allclose(loss, recon + 2.5 * kl)
    # the common mistake: both terms averaged over pixels too = the right loss with beta = 784, divided by 784
    wrong = F.binary_cross_entropy_with_logits(logits, x) + vae.gaussian_kl(mu, logvar).sum(1).mean()
    assert torch.allclose(wrong, vae.vae_loss(logits, x, mu, logvar, beta=784)[0] / 784)
    with pytest.raises(ValueError, match="beta and free_bits"):
        vae.vae_loss(logits, x, mu, logvar, beta=-1)


def test_free_bits_floor_each_dimension_but_report_the_true_kl():
    x = bar_images(2)
    logits = torch.zeros_like(x)
    mu = torch.tensor([[0.1, 3.0], [-0.1, 3.0]], requires_grad=True)  # dim 0: KL 0.005 nats; dim 1: 4.5 nats
    logvar = torch.zeros(2, 2)
    loss, recon, kl = vae.vae_loss(logits, x, mu, logvar, free_bits=0.5)
    assert torch.allclose(kl, torch.tensor(0.005 + 4.5))
    assert torch.allclose(loss - recon, torch.tensor(0.5 + 4.5))  # dim 0 counts as 0.5 nats
    loss.backward()
    assert mu.grad[:, 0].abs().max() == 0 and mu.grad[:, 1].abs().min() > 0  # no pressure below the floor


def test_lr_schedules():
    assert vae.scheduled_lr(90, 100, 0.1, "constant") == 0.1
    # held for the first half (of an odd number of steps too), then a cosine down to 0
    assert [vae.scheduled_lr(s, 100, 0.1, "cosine_tail") for s in (0, 49, 50)] == [0.1, 0.1, 0.1]
    assert [vae.scheduled_lr(s, 25, 0.1, "cosine_tail") for s in (0, 12)] == [0.1, 0.1]
    assert vae.scheduled_lr(13, 25, 0.1, "cosine_tail") == pytest.approx(0.05 * (1 + math.cos(math.pi / 25)))
    assert vae.scheduled_lr(75, 100, 0.1, "cosine_tail") == pytest.approx(0.05)
    assert vae.scheduled_lr(100, 100, 0.1, "cosine_tail") < 1e-12
    with pytest.raises(ValueError, match="unknown learning-rate schedule"):
        vae.scheduled_lr(50, 100, 0.1, "linear")


# --- evaluation ------------------------------------------------------------------------------------------------


def test_evaluate_is_seeded_and_independent_of_the_batch_size():
    torch.manual_seed(0)
    model = MLPVAE(latent_dim=4, hidden=16)
    x = bar_images(50)
    recon, kl = vae.elbo_parts(model, x, seed=5, batch_size=7)
    recon2, kl2 = vae.elbo_parts(model, x, seed=5, batch_size=50)
    # other batch sizes take other float32 matrix-multiply paths: rounding of order 1e-7 relative
    assert torch.allclose(recon, recon2, atol=1e-3) and torch.allclose(kl, kl2, atol=1e-6)
    mu, logvar = model.encode(x)
    eps = torch.randn(50, 4, generator=torch.Generator().manual_seed(5))
    by_hand = vae.bernoulli_nll(model.decode(mu + (0.5 * logvar).exp() * eps), x) + vae.gaussian_kl(mu, logvar).sum(1)
    assert torch.allclose(recon + kl.sum(1), by_hand.detach(), atol=1e-4)
    stats = vae.evaluate(model, x, seed=5)
    assert stats["neg_elbo"] == pytest.approx(stats["recon"] + stats["kl"], rel=1e-6)
    assert vae.kl_per_dim(model, x).sum().item() == pytest.approx(vae.evaluate(model, x)["kl"], rel=1e-5)
    assert model.training  # restored



def _one_dimensional_vae() -> tuple[MLPVAE, torch.Tensor, torch.Tensor]:
    """A VAE with one latent dimension, a few images, and each image's exact log p(x) by quadrature over z."""
    torch.manual_seed(0)
    model = MLPVAE(latent_dim=1, hidden=8)
    with torch.no_grad():
        model.decoder[-1].weight *= 0.2  # a posterior a few tenths wide: quadrature and sampling both resolve it
    x = bar_images(4)
    z = torch.linspace(-8, 8, 4_001)[:, None]  # p(x|z) p(z) is negligible outside
    with torch.no_grad():
        decoded = model.decode(z)
        log_joint = torch.stack([-vae.bernoulli_nll(decoded, xi.expand(len(z), -1, -1, -1)) for xi in x])
    log_joint = log_joint.double() + torch.distributions.Normal(0.0, 1.0).log_prob(z[:, 0]).double()
    return model, x, torch.logsumexp(log_joint, dim=1) + math.log(16 / 4_000)  # [4]: the integral, Riemann sum


def test_importance_weights_are_seeded_and_independent_of_the_batch_size():
    model, x, _ = _one_dimensional_vae()
    lw = vae.log_importance_weights(model, x, 50, seed=3)
    assert lw.shape == (4, 50)
    assert torch.allclose(lw, vae.log_importance_weights(model, x, 50, seed=3, batch_size=1), atol=1e-3)
    assert not torch.allclose(lw, vae.log_importance_weights(model, x, 50, seed=4), atol=1e-3)
    # by hand: log p(x|z) + log N(z; 0, 1) - log N(z; mu, sigma) at z = mu + sigma * eps
    mu, logvar = model.encode(x)
    std = (0.5 * logvar).exp()
    z = mu[:, None] + std[:, None] * torch.randn(4, 50, 1, generator=torch.Generator().manual_seed(3))
    log_px_z = torch.stack([-vae.bernoulli_nll(model.decode(z[i]), x[i].expand(50, -1, -1, -1)) for i in range(4)])
    by_hand = log_px_z + Normal(0.0, 1.0).log_prob(z).sum(-1) - Normal(mu[:, None], std[:, None]).log_prob(z).sum(-1)
    assert torch.allclose(lw, by_hand.detach(), atol=1e-3)
    one = vae.importance_weighted_bound(model, x, 1, seed=3)
    assert torch.allclose(one, vae.log_importance_weights(model, x, 1, seed=3)[:, 0])
    with pytest.raises(ValueError, match="k must be at least 1"):
        vae.log_importance_weights(model, x, 0)
    with pytest.raises(ValueError, match=r"images must be \[N, 1, 28, 28\]"):
        vae.importance_weighted_bound(model, x.view(4, 784), 5)


def test_importance_weighted_bound_climbs_from_the_elbo_to_the_exact_likelihood():
    model, x, log_px = _one_dimensional_vae()
    lw = vae.log_importance_weights(model, x, 5_000, seed=0).double()  # [4, 5000]
    # K = 1: the mean log weight is the ELBO, E_q[log p(x|z)] - KL, here by quadrature and the closed form
    mu, logvar = (t.detach()[:, 0] for t in model.encode(x))
    z = torch.linspace(-8, 8, 4_001)
    q = Normal(mu[:, None], (0.5 * logvar).exp()[:, None]).log_prob(z).exp() * (16 / 4_000)  # [4, grid]
    with torch.no_grad():
        decoded = model.decode(z[:, None])
        log_px_z = torch.stack([-vae.bernoulli_nll(decoded, xi.expand(len(z), -1, -1, -1)) for xi in x])
    elbo = (q * log_px_z).sum(1) - vae.gaussian_kl(mu, logvar)
    assert ((lw.mean(1) - elbo).abs() < 4 * lw.std(1) / math.sqrt(lw.shape[1])).all()
    # the bound of K codes (averaged over 5000 / K groups) rises with K towards log p(x)
    bounds = [(torch.logsumexp(lw.view(4, -1, k), dim=2) - math.log(k)).mean(1) for k in (1, 10, 100, 5_000)]
    assert all((a < b).all() for a, b in zip(bounds[:-1], bounds[1:], strict=True))
    assert (bounds[0] < log_px - 0.1).all()  # the ELBO is well below the likelihood here
    assert torch.allclose(bounds[-1], log_px, atol=0.05)  # 5,000 codes: the likelihood, up to sampling and rounding
    assert torch.allclose(vae.importance_weighted_bound(model, x, 5_000, seed=0).double(), bounds[-1], atol=1e-4)


def test_active_units_counts_dimensions_whose_mean_moves_with_the_input():
    torch.manual_seed(0)
    model = MLPVAE(latent_dim=5, hidden=16)
    last = model.encoder[-1]
    with torch.no_grad():
        last.weight[[1, 3]] = 0.0  # mu_1 and mu_3 no longer depend on x: collapsed dimensions
        last.bias[[1, 3]] = 0.0
        last.weight[:5] *= 20  # the live dimensions vary well above the 0.01 threshold
    count, variances = vae.active_units(model, bar_images(200))
    assert count == 3 and variances[[1, 3]].abs().max() == 0 and variances[[0, 2, 4]].min() > 0.01


def test_sampling_reconstruction_and_interpolation():
    torch.manual_seed(0)
    model = MLPVAE(latent_dim=3, hidden=16)
    a = vae.sample(model, 4, torch.Generator().manual_seed(1))
    b = vae.sample(model, 4, torch.Generator().manual_seed(1))
    assert a.shape == (4, 1, 28, 28) and torch.equal(a, b) and 0 <= a.min() and a.max() <= 1
    x = bar_images(2)
    path = vae.interpolate(model, x[0], x[1], steps=5)
    rec = vae.reconstruct(model, x)
    assert path.shape == (5, 1, 28, 28)
    assert torch.allclose(path[0], rec[0], atol=1e-6) and torch.allclose(path[-1], rec[1], atol=1e-6)
    with pytest.raises(ValueError, match="steps must be at least 2"):
        vae.interpolate(model, x[0], x[1], steps=1)


# --- training ---------------------------------------------------------------------------------------------------


def test_fit_vae_learns_is_reproducible_and_evaluates_on_schedule():
    x, x_test = bar_images(256), bar_images(64, seed=1)

    def run(epochs=3, **kwargs):
        torch.manual_seed(0)
        model = MLPVAE(latent_dim=2, hidden=32)
        vae.init_pixel_bias(model, x)
        before = vae.evaluate(model, x_test)["neg_elbo"]
        history = vae.fit_vae(model, x, epochs, batch_size=32, lr=3e-3, seed=0, test_images=x_test,
                              evals_per_epoch=2, **kwargs)
        return before, history

    before, h1 = run()
    _, h2 = run()
    assert h1["recon"] == h2["recon"] and h1["eval"]["neg_elbo"] == h2["eval"]["neg_elbo"]
    assert h1["steps"] == 24 and len(h1["recon"]) == 24 and h1["eval"]["epoch"] == [0.5, 1, 1.5, 2, 2.5, 3]
    # a bar at one of 22 heights is easy to learn: 24 steps take the test -ELBO well below the mean-image start
    assert h1["eval"]["neg_elbo"][-1] < before - 20
    _, stopped = run(epochs=1, target=1e6)
    assert stopped["reached"]["epoch"] == 0.5 and stopped["steps"] == 4
    _, warm = run(warmup_steps=10**6)  # the KL weight stays near 0: nothing holds the codes near the prior
    assert warm["eval"]["kl"][-1] > 2 * h1["eval"]["kl"][-1]


def test_fit_vae_refuses_bad_settings():
    model = MLPVAE(latent_dim=2, hidden=8)
    with pytest.raises(ValueError, match="target needs test_images"):
        vae.fit_vae(model, bar_images(8), 1, target=200)
    with pytest.raises(ValueError, match="epochs > 0"):
        vae.fit_vae(model, bar_images(8), 0)


# --- the shipped VAE's command -------------------------------------------------------------------


@pytest.mark.slow  # the training command
def test_train_command_writes_a_card_that_matches_the_weights(tmp_path):
    assert train.main(["vae", "--epochs", "1", "--limit", "256", "--out", str(tmp_path)]) == 0
    card = read_metadata(tmp_path / vae.VAE_NAME)
    for key in ("architecture", "data", "training", "seconds", "hardware", "test_neg_elbo", "curve", "command"):
        assert key in card, key
    assert card["training"]["steps"] == 2 and card["curve"]["epoch"] == [1]
    model, _ = load_checkpoint(tmp_path / vae.VAE_NAME)
    assert isinstance(model, ConvVAE) and model.config.latent_dim == vae.RECIPES["ship"].latent_dim
    x_test = image_tensors("fashion-mnist", train=False)[0][:256]
    assert vae.evaluate(model, x_test)["neg_elbo"] == pytest.approx(card["test_neg_elbo"]["value"], abs=0.01)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1])  # the notebook trains seed 0; seed 2 passed too when this was written
def test_single_run_claims_of_notebook_03_hold_at_other_training_seeds(seed):
    """Notebook 03 at its ci sizes, trained at another seed. Section 1's MLP VAE (2 epochs): the KL climbing from near
    0 and the reconstruction term falling most in the first 100 steps (section 1.5), at least two dimensions
    under 0.01 nats of KL, the importance-weighted bound rising with every tenfold K by less each time, so much less
    that continuing the shrinkage would add under a quarter of the gap seen; its samples closer to real images than
    the autoencoder's (1 epoch) decodes of N(0, I), in FID-FMNIST and the classifier's confidence (2,000 images
    each, as in section 4.1), and its pooled codes' gap to the prior (section 3.1) under a tenth of the
    autoencoder's; both also against an autoencoder trained as long (2 epochs) from the VAE's start, the mean image
    (when this was written: gaps of 27-35 nats against 0.35-0.46 at seeds 0 and 1). Section 3.1's 2-D VAE
    (1 epoch): the nearest-neighbour thresholds, and the decoded grid showing at most points the kind its nearest
    codes vote for; at a tenth of the grid points or more, under a tenth of the test codes within 0.25 that the
    prior would put there.
    Section 4.3 (a), the MLP VAE without trousers (1 epoch, 3,000 normal images): the raw -ELBO ranks the trousers as
    more normal, more often than the shipped VAE ranks MNIST digits (b); subtracting the floor or the PNG bits closes
    most of the gap, both together add (almost) nothing, the two are strongly correlated; at 5% false alarms the
    PNG-corrected score flags more trousers than a coin would, but fewer than half."""
    from sklearn.neighbors import KNeighborsClassifier

    from course_utils import anomaly, evaluation, reference_stats
    from course_utils.checkpoints import SHIPPED_DIR
    from course_utils.datasets import FASHION_CLASSES, tensor_batches

    x_train, y_train = image_tensors("fashion-mnist", train=True)
    x_test, y_test = image_tensors("fashion-mnist", train=False)
    recipe = vae.FAST_RECIPE

    history = {}  # the last run's per-step terms

    def trained(images, epochs, latent_dim=recipe.latent_dim):
        seed_everything(seed)  # as the notebook's course_vae
        model = replace(recipe, latent_dim=latent_dim).make_model(x_train)
        history.update(vae.fit_vae(model, images, epochs, batch_size=recipe.batch_size, lr=recipe.lr, seed=seed,
                                   desc="seed check"))
        return model

    mlp = trained(x_train, 2)
    kl_steps, r = history["kl"], history["recon"]  # section 1.5's dynamics, asserted as the notebook does
    assert kl_steps[0] < 0.5 and sum(kl_steps[90:100]) / 10 > 20 * kl_steps[0]
    early, mid, late = sum(r[:5]) / 5, sum(r[90:100]) / 10, sum(r[-50:]) / 50
    assert early - mid > 2 * (mid - late)
    kl = vae.kl_per_dim(mlp, x_test[:1000]).clamp_min(0)
    assert (kl < 0.01).sum() >= 2 and kl.max() > 1
    lw = vae.log_importance_weights(mlp, x_test[:200], 1000, seed=0)
    bound = {k: (torch.logsumexp(lw.view(len(lw), -1, k), dim=2) - math.log(k)).mean(1) for k in (1, 10, 100, 1000)}
    gains = [bound[b] - bound[a] for a, b in ((1, 10), (10, 100), (100, 1000))]
    assert all(d.mean() > 3 * d.std() / math.sqrt(len(d)) for d in gains)
    assert gains[0].mean() > gains[1].mean() > gains[2].mean()
    ratio = gains[2].mean() / gains[1].mean()
    assert gains[2].mean() * ratio / (1 - ratio) < (bound[1000] - bound[1]).mean() / 4

    def autoencoder(epochs, mean_image=False):  # section 1.1's, trained as there
        seed_everything(seed)
        ae = Autoencoder(latent_dim=20, hidden=256)
        if mean_image:  # the MLP VAEs' start (init_pixel_bias): the output biases at the mean image's log-odds
            with torch.no_grad():
                ae.decoder[-1].bias.copy_(torch.logit(x_train.mean(0).flatten().clamp(1e-3, 1 - 1e-3)))
        opt = torch.optim.Adam(ae.parameters(), lr=5e-3)
        rng = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            for (x,) in tensor_batches(x_train, batch_size=128, generator=rng):
                loss = F.binary_cross_entropy_with_logits(ae(x), x, reduction="none").sum(dim=(1, 2, 3)).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        return ae

    classifier, _ = load_checkpoint(SHIPPED_DIR / "fmnist_classifier")
    reference = reference_stats.load_or_compute(classifier)

    def random_decodes(ae):  # section 4.1's row of the autoencoder: FID-FMNIST and confidence of decoded N(0, I)
        with torch.no_grad():
            z = torch.randn(2000, 20, generator=torch.Generator().manual_seed(seed + 3))
            return evaluation.image_report(torch.sigmoid(ae.decoder(z)).view(-1, 1, 28, 28), classifier, reference)

    def gap_to_prior(codes):  # section 3.1: KL(N(mean, covariance) of the pooled codes || N(0, I)), nats
        m, cov = codes.mean(0), torch.cov(codes.T)
        return 0.5 * (cov.trace() + m @ m - len(m) - torch.logdet(cov)).item()

    vae_row = evaluation.image_report(vae.sample(mlp, 2000, torch.Generator().manual_seed(seed + 3)), classifier,
                                      reference)
    with torch.no_grad():
        vae_gap = gap_to_prior(vae.reparameterize(*mlp.encode(x_test), torch.Generator().manual_seed(seed)))
    # the notebook's autoencoder (1 epoch, ci), then one trained as long as the MLP VAE (2 epochs) from its start
    for ae in (autoencoder(1), autoencoder(2, mean_image=True)):
        ae_row = random_decodes(ae)
        assert vae_row["fid"] < ae_row["fid"] and vae_row["confidence"] > ae_row["confidence"]
        with torch.no_grad():
            assert gap_to_prior(ae.encoder(x_test)) > 10 * vae_gap

    vae2 = trained(x_train, 1, latent_dim=2)
    codes2 = vae.encode_means(vae2, x_test)
    knn = KNeighborsClassifier(n_neighbors=10).fit(codes2[::2], y_test[::2])
    assert knn.score(codes2[1::2], y_test[1::2]) > 0.55
    kinds = [["Trouser"], ["Bag"], ["Sandal", "Sneaker", "Ankle boot"], ["T-shirt/top", "Pullover", "Coat", "Shirt"]]
    kind_of = torch.full((len(FASHION_CLASSES),), -1)
    for i, names in enumerate(kinds):
        kind_of[[FASHION_CLASSES.index(name) for name in names]] = i
    guess, truth = torch.as_tensor(knn.predict(codes2[1::2])), y_test[1::2]
    kind_hit = [(kind_of[guess[kind_of[truth] == i]] == i).double().mean() for i in range(len(kinds))]
    tops = kind_of[truth] == 3
    assert min(kind_hit) > 0.5 and kind_hit[3] > 0.8 and (guess[tops] == truth[tops]).double().mean() < 0.6
    grid = Normal(0.0, 1.0).icdf(torch.linspace(0.03, 0.97, 15))
    zz = torch.stack(torch.meshgrid(grid, grid.flip(0), indexing="xy"), dim=-1).reshape(-1, 2)
    seen = evaluation.classifier_outputs(classifier, vae.decode_probs(vae2, zz))[1].argmax(1)
    assert (kind_of[seen] == kind_of[torch.as_tensor(knn.predict(zz))]).double().mean() > 0.6
    near = (torch.cdist(zz, codes2) < 0.25).sum(1)  # the holes: test codes near each grid point, against the prior's
    assert (near < 0.1 * len(codes2) * 0.25**2 / 2 * torch.exp(-0.5 * (zz**2).sum(1))).sum() >= len(zz) // 10

    held = FASHION_CLASSES.index("Trouser")
    nine = trained(x_train[y_train != held], 1)
    normal, odd = x_test[y_test != held][:3000], x_test[y_test == held]
    raw = [anomaly.neg_elbo_per_image(nine, x) for x in (normal, odd)]
    floor = [vae.bernoulli_nll(torch.logit(x.clamp(1e-6, 1 - 1e-6)), x) for x in (normal, odd)]
    png = [anomaly.png_bits(x) for x in (normal, odd)]
    minus_floor = [r - f for r, f in zip(raw, floor, strict=True)]
    minus_png = [r / math.log(2) - p for r, p in zip(raw, png, strict=True)]
    minus_both = [m / math.log(2) - p for m, p in zip(minus_floor, png, strict=True)]
    auc = {name: anomaly.auroc(*s) for name, s in
           (("raw", raw), ("floor", minus_floor), ("png", minus_png), ("both", minus_both))}
    assert auc["raw"] < 0.5 and raw[1].mean() < raw[0].mean()
    shipped, _ = load_checkpoint(SHIPPED_DIR / vae.VAE_NAME)  # (b): the shipped VAE, digits against clothing
    x_mnist, _ = image_tensors("mnist", train=False)
    digits = [anomaly.neg_elbo_per_image(shipped, x) for x in (x_test[:3000], x_mnist[:3000])]
    assert auc["raw"] < anomaly.auroc(*digits)
    assert min(auc["floor"], auc["png"]) > 0.75 and min(auc["floor"], auc["png"]) - auc["raw"] > 0.5 * (1 - auc["raw"])
    assert auc["both"] < max(auc["floor"], auc["png"]) + 0.01
    assert torch.corrcoef(torch.stack([torch.cat(floor), torch.cat(png)]))[0, 1] > 0.75
    flagged = [(s[1] > s[0].quantile(0.95)).double().mean().item() for s in (raw, minus_png)]
    assert flagged[0] < 0.05 < flagged[1] < 0.5


@pytest.mark.slow  # 3 x 150 + 3 x 20 training steps of the shipped conv VAE's size (about 2 min on one thread)
def test_conv_vae_kl_dips_when_its_pixel_biases_start_at_the_mean_image():
    """Why the conv VAE of notebook 03 (section 2, and vae.RECIPES) starts its pixel biases at 0. The shipped model's
    size, Adam 2e-3 constant, batches of 128, seeds 0-2. From 0 the KL rises dozens of times over within 20 steps.
    From the mean image (init_pixel_bias) it falls below half its value at initialisation within 20 steps, and stays
    below that value up to step 50, in every seed. The dip can last: when this was written, seed 0's KL was still
    under 0.001 nats over steps 141-150, while seeds 1 and 2 passed 1 nat at steps 74 and 62."""
    x_train, _ = image_tensors("fashion-mnist", train=True)
    x_test, _ = image_tensors("fashion-mnist", train=False)
    recipe = vae.RECIPES["ship"]

    def first_steps(seed, mean_image, steps):  # the KL at initialisation (1,000 test images), then per training batch
        seed_everything(seed)  # the same weights from both starts; only the pixel biases differ
        model = replace(recipe, pixel_bias=mean_image).make_model(x_train)
        start = vae.evaluate(model, x_test[:1000])["kl"]
        run = vae.fit_vae(model, x_train[:steps * recipe.batch_size], 1, batch_size=recipe.batch_size, lr=recipe.lr,
                          seed=seed, desc=f"seed {seed}")
        assert run["steps"] == steps
        return start, run["kl"]

    still_near_0 = []
    for seed in (0, 1, 2):
        start, kl = first_steps(seed, mean_image=False, steps=20)
        assert start < 0.5 and sum(kl[-5:]) / 5 > 24 * start, f"seed {seed}: from 0 the KL should rise at once"
        start, kl = first_steps(seed, mean_image=True, steps=150)
        assert start < 0.5 and sum(kl[15:20]) / 5 < 0.5 * start, f"seed {seed}: from the mean image the KL should fall"
        assert max(kl[20:50]) < start, f"seed {seed}: the dip should last past step 50"
        still_near_0.append(sum(kl[-10:]) / 10 < 0.01)
    assert any(still_near_0), "in one seed of three, at least, the KL should still be near 0 after 150 steps"
