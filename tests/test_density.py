"""course_utils.density: the Gaussian mixture and PCA / probabilistic PCA."""

from __future__ import annotations

import math

import pytest
import torch

from course_utils import density
from course_utils.toy import two_moons

pytestmark = pytest.mark.usefixtures("one_thread")  # small models: one thread is fastest

# --- Gaussian mixture -------------------------------------------------------------------


def random_gmm(k: int = 3, seed: int = 0) -> density.GaussianMixture:
    torch.manual_seed(seed)
    gmm = density.GaussianMixture(k, 2, means=torch.randn(k, 2) * 1.5, scale=0.6)
    with torch.no_grad():  # random, valid parameters: any real numbers are allowed
        gmm.logits.normal_()
        gmm.log_diag.normal_(mean=-0.7, std=0.3)
        gmm.lower.normal_(std=0.5)
    return gmm


def test_gmm_parameters_are_built_from_free_numbers():
    gmm = density.GaussianMixture(2, 2, means=torch.zeros(2, 2), scale=1.0, min_scale=0.5)
    with torch.no_grad():  # free numbers chosen by hand
        gmm.logits.copy_(torch.tensor([0.0, math.log(3.0)]))
        gmm.log_diag.copy_(torch.log(torch.tensor([[1.5, 0.5], [0.5, 1.5]])))  # diagonal exp(.) + 0.5
        gmm.lower.copy_(torch.tensor([[[9.0, 9.0], [1.0, 9.0]], [[9.0, 9.0], [-2.0, 9.0]]]))  # only below it counts
    assert torch.allclose(gmm.weights(), torch.tensor([0.25, 0.75]))  # softmax of (0, log 3)
    assert torch.allclose(gmm.scale_tril()[0], torch.tensor([[2.0, 0.0], [1.0, 1.0]]))
    assert torch.allclose(gmm.covariances()[1], torch.tensor([[1.0, -2.0], [-2.0, 8.0]]))  # L L^T, L=[[1,0],[-2,2]]
    gmm = random_gmm(4)
    with torch.no_grad():
        gmm.log_diag.fill_(-100.0)  # a collapsed component: the floor keeps it a proper Gaussian
    assert torch.isfinite(gmm.log_prob(torch.zeros(5, 2))).all()
    assert torch.allclose(torch.diagonal(gmm.scale_tril(), dim1=-2, dim2=-1), torch.tensor(gmm.min_scale))


def test_gmm_log_prob_integrates_to_one():
    gmm = random_gmm(3)
    xs = torch.linspace(-8, 8, 401)
    gx, gy = torch.meshgrid(xs, xs, indexing="xy")
    grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
    with torch.no_grad():
        mass = gmm.log_prob(grid).exp().sum() * (xs[1] - xs[0]) ** 2
    assert abs(mass.item() - 1.0) < 1e-3


def test_gmm_log_prob_matches_torch_distributions():
    gmm = random_gmm(3)
    ref = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(logits=gmm.logits),
        torch.distributions.MultivariateNormal(gmm.means, scale_tril=gmm.scale_tril()),
    )
    x = torch.randn(50, 2) * 2
    assert torch.allclose(gmm.log_prob(x), ref.log_prob(x), atol=1e-4)
    assert torch.allclose(gmm.responsibilities(x).sum(1), torch.ones(50), atol=1e-5)


def test_gmm_sample_shapes_statistics_and_seed():
    gmm = random_gmm(3)
    x, k = gmm.sample(40_000, generator=torch.Generator().manual_seed(1), return_components=True)
    assert x.shape == (40_000, 2) and k.shape == (40_000,) and k.dtype == torch.long
    freq = torch.bincount(k, minlength=3).float() / len(k)
    assert torch.allclose(freq, gmm.weights().detach(), atol=0.01)
    for j in range(3):  # pick a component, then draw from its Gaussian
        pts = x[k == j]
        assert torch.allclose(pts.mean(0), gmm.means[j].detach(), atol=0.05)
        assert torch.allclose(torch.cov(pts.T), gmm.covariances()[j].detach(), atol=0.05)
    again = gmm.sample(40_000, generator=torch.Generator().manual_seed(1))
    assert torch.equal(again, x)
    assert not x.requires_grad


def test_fit_gmm_learns_and_more_components_help_on_moons():
    g = torch.Generator().manual_seed(0)
    train, test = two_moons(400, generator=g), two_moons(2000, generator=g)
    one, losses = density.fit_gmm(train, 1, steps=150, generator=g)
    six, _ = density.fit_gmm(train, 6, steps=150, generator=g)
    assert len(losses) == 150 and losses[-1] < losses[0]
    with torch.no_grad():
        assert six.log_prob(test).mean() > one.log_prob(test).mean() + 0.3
    # one Gaussian fitted by maximum likelihood: the sample mean and (biased) covariance
    assert torch.allclose(one.means[0].detach(), train.mean(0), atol=0.02)
    assert torch.allclose(one.covariances()[0].detach(), torch.cov(train.T, correction=0), atol=0.03)


def test_kmeans_init_finds_separated_clusters():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[-5.0, 0.0], [0.0, 5.0], [5.0, 0.0]])
    x = centres.repeat_interleave(100, 0) + 0.1 * torch.randn(300, 2, generator=g)
    found = density.kmeans_init(x, 3, generator=g)
    order = torch.cdist(centres, found).argmin(1)
    assert sorted(order.tolist()) == [0, 1, 2]  # one centre per cluster
    assert torch.allclose(found[order], centres, atol=0.05)
    assert density.kmeans_init(torch.zeros(4, 2), 3).shape == (3, 2)  # duplicates: no crash


def test_gmm_rejects_bad_shapes():
    with pytest.raises(ValueError, match="shape"):
        density.GaussianMixture(3, 2, means=torch.zeros(2, 2))
    with pytest.raises(ValueError, match="n_components"):
        density.fit_gmm(torch.randn(5, 2), 6)


# --- PCA ------------------------------------------------------------------------------------


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    low_rank = torch.randn(500, 3, generator=g) @ torch.randn(3, 8, generator=g)
    return low_rank + 0.2 * torch.randn(500, 8, generator=g) + 1.0


def test_pca_components_and_variances(data):
    pca = density.PCA.fit(data)
    v = pca.components
    assert torch.allclose(v.T @ v, torch.eye(8), atol=1e-4)
    assert (pca.variances[:-1] >= pca.variances[1:]).all()
    s = torch.linalg.svdvals(data - data.mean(0))
    assert torch.allclose(pca.variances, s**2 / (len(data) - 1), rtol=1e-3, atol=1e-4)
    ratio = pca.explained_variance_ratio()
    assert ratio[-1] == pytest.approx(1.0) and ratio[2] > 0.95  # three real directions, plus noise


def test_pca_encode_decode(data):
    pca = density.PCA.fit(data)
    assert pca.encode(data, 3).shape == (500, 3)
    assert torch.allclose(pca.reconstruct(data, 8), data, atol=1e-4)
    errors = [((pca.reconstruct(data, k) - data) ** 2).sum(1).mean().item() for k in range(1, 9)]
    assert all(a >= b for a, b in zip(errors[:-1], errors[1:], strict=True))
    # the error of a rank-k reconstruction is the variance left out
    assert errors[2] == pytest.approx(pca.variances[3:].sum().item() * (len(data) - 1) / len(data), rel=1e-3)
    with pytest.raises(ValueError, match="k must be"):
        pca.encode(data, 9)


def test_pca_sample_and_log_prob(data):
    pca = density.PCA.fit(data)
    x = pca.sample(20_000, 3, generator=torch.Generator().manual_seed(0))
    assert x.shape == (20_000, 8)
    assert torch.allclose(x.mean(0), pca.mean, atol=0.1)
    k = 3
    sigma2 = pca.noise_variance(k)
    cov_diag = torch.cat([pca.variances[:k], sigma2.expand(8 - k)])
    cov = pca.components @ torch.diag(cov_diag) @ pca.components.T
    ref = torch.distributions.MultivariateNormal(pca.mean, covariance_matrix=cov)
    assert torch.allclose(pca.log_prob(data[:20], k), ref.log_prob(data[:20]), atol=1e-3)
    noisy = pca.sample(200_000, k, generator=torch.Generator().manual_seed(0), noise=True)
    # the samples have the density's covariance: lambda_i along the first k directions, sigma^2 elsewhere
    along = pca.components.T @ torch.cov(noisy.T) @ pca.components
    # a variance estimated from N Gaussian draws has a relative standard error sqrt(2 / N) = 0.32%: allow 3 of them
    # (the old bug, lambda_i + sigma^2 along the first k directions, is 5 standard errors off on the third)
    assert ((along.diagonal() - cov_diag).abs() <= 3 * cov_diag * (2 / 200_000) ** 0.5).all()
    assert (along - torch.diag(along.diagonal())).abs().max() < 0.02 * pca.variances[0]


def test_pca_interpolate_walks_between_codes_and_is_the_projected_crossfade(data):
    pca = density.PCA.fit(data)
    walk = pca.interpolate(data[0], data[1], 3, 5)
    assert walk.shape == (5, 8)
    assert torch.allclose(walk[[0, -1]], pca.reconstruct(data[:2], 3), atol=1e-5)  # both ends included
    t = torch.linspace(0, 1, 5)[:, None]
    assert torch.allclose(walk, pca.reconstruct((1 - t) * data[0] + t * data[1], 3), atol=1e-5)  # PCA is linear
    codes = pca.encode(walk, 3)
    assert torch.allclose(codes[2], codes[[0, -1]].mean(0), atol=1e-5)  # the middle is halfway between the codes
