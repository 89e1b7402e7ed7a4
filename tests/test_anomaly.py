"""course_utils.anomaly: the -ELBO score, the PNG complexity correction and the AUROC (notebook 03, section 4)."""

from __future__ import annotations

import pytest
import torch

from course_utils import anomaly, vae
from course_utils.vae import MLPVAE

pytestmark = pytest.mark.usefixtures("one_thread")  # small models: one thread is fastest


def test_neg_elbo_per_image_is_the_elbos_parts_summed():
    torch.manual_seed(0)
    model = MLPVAE(latent_dim=4, hidden=16)
    x = torch.rand(20, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    recon, kl = vae.elbo_parts(model, x, seed=5)
    scores = anomaly.neg_elbo_per_image(model, x, seed=5)
    assert scores.shape == (20,) and torch.equal(scores, recon + kl.sum(1))
    assert scores.mean().item() == pytest.approx(vae.evaluate(model, x, seed=5)["neg_elbo"], rel=1e-6)


def test_png_bits_measures_complexity():
    black = torch.zeros(1, 1, 28, 28)
    noise = torch.randint(0, 256, (1, 1, 28, 28), generator=torch.Generator().manual_seed(0)) / 255
    bits = anomaly.png_bits(torch.cat([black, noise]))
    assert bits[1] >= 784 * 8  # random bytes cannot be compressed: at least the 6,272 raw bits
    assert bits[0] < bits[1] / 5
    with pytest.raises(ValueError, match=r"images must be \[N, 1, 28, 28\]"):
        anomaly.png_bits(torch.zeros(2, 28, 28))


def test_auroc_known_answers():
    assert anomaly.auroc(torch.tensor([0.0, 1.0]), torch.tensor([2.0, 3.0])) == 1.0
    assert anomaly.auroc(torch.tensor([2.0, 3.0]), torch.tensor([0.0, 1.0])) == 0.0
    assert anomaly.auroc(torch.tensor([0.0, 2.0]), torch.tensor([1.0, 2.0])) == pytest.approx(0.625)  # (1+1+0.5)/4
    with pytest.raises(ValueError, match="at least one"):
        anomaly.auroc(torch.tensor([]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="finite"):
        anomaly.auroc(torch.tensor([float("nan")]), torch.tensor([1.0]))
