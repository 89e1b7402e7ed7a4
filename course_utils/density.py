"""Explicit densities: the Gaussian mixture and PCA / probabilistic PCA.

Notebook 01 builds each of them step by step:

- :class:`GaussianMixture`, :func:`kmeans_init` and :func:`fit_gmm`: an explicit density on R^d, fitted by
  gradient descent on the negative log-likelihood (section 2; 2-D toy data).
- :class:`PCA`: a linear encoder/decoder (section 4), and with :meth:`PCA.log_prob` the
  probabilistic PCA density (Tipping & Bishop, 1999; sections 4.1 and 6), a first
  latent-variable model to compare VAEs with (03).

(The bigram model of section 3 is in :mod:`course_utils.text`.)

Every parameter is kept valid by construction (mixture weights are a softmax of
logits, covariances are ``L @ L.T`` with a positive diagonal on ``L``), so plain
gradient descent never leaves the set of valid models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

LOG_2PI = math.log(2 * math.pi)


# --- Gaussian mixture -----------------------------------------------------------------


class GaussianMixture(nn.Module):
    r"""A mixture of ``n_components`` full-covariance Gaussians in ``dim`` dimensions.

    $p(x) = \sum_k \pi_k \, \mathcal N(x; \mu_k, \Sigma_k)$ with $\pi = \mathrm{softmax}(\text{logits})$
    and $\Sigma_k = L_k L_k^\top$, where $L_k$ is lower triangular with diagonal
    ``exp(log_diag) + min_scale``. ``min_scale`` keeps every component from
    collapsing onto a single point, where the likelihood would be infinite.
    """

    def __init__(
        self, n_components: int, dim: int = 2, means: torch.Tensor | None = None,
        scale: float = 1.0, min_scale: float = 1e-3,
    ) -> None:
        super().__init__()
        if n_components < 1 or dim < 1:
            raise ValueError(f"need n_components >= 1 and dim >= 1, got {n_components} and {dim}")
        if means is None:
            means = torch.randn(n_components, dim) * scale
        if tuple(means.shape) != (n_components, dim):
            raise ValueError(f"means must have shape {(n_components, dim)}, got {tuple(means.shape)}")
        if scale <= min_scale:
            raise ValueError(f"scale must exceed min_scale={min_scale}, got {scale}")
        self.min_scale = float(min_scale)
        self.logits = nn.Parameter(torch.zeros(n_components))
        self.means = nn.Parameter(means.detach().clone().float())
        self.log_diag = nn.Parameter(torch.full((n_components, dim), math.log(scale - min_scale)))
        self.lower = nn.Parameter(torch.zeros(n_components, dim, dim))  # only the part below the diagonal is used

    @property
    def n_components(self) -> int:
        return self.logits.shape[0]

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def weights(self) -> torch.Tensor:
        """Mixture weights $\\pi_k$: positive, summing to 1."""
        return torch.softmax(self.logits, dim=0)

    def scale_tril(self) -> torch.Tensor:
        """``[K, d, d]`` lower-triangular $L_k$ with a positive diagonal."""
        diag = self.log_diag.exp() + self.min_scale
        return torch.tril(self.lower, diagonal=-1) + torch.diag_embed(diag)

    def covariances(self) -> torch.Tensor:
        """``[K, d, d]`` covariance matrices $\\Sigma_k = L_k L_k^\\top$."""
        tril = self.scale_tril()
        return tril @ tril.transpose(-1, -2)

    def component_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, K]``: $\\log \\mathcal N(x_n; \\mu_k, \\Sigma_k)$ for every point and component."""
        tril = self.scale_tril()  # K d d
        diff = (x[None, :, :] - self.means[:, None, :]).transpose(1, 2)  # K d N
        z = torch.linalg.solve_triangular(tril, diff, upper=False)  # L^-1 (x - mu)
        log_det = torch.diagonal(tril, dim1=-2, dim2=-1).log().sum(-1)  # half of log |Sigma|
        return (-0.5 * z.pow(2).sum(1) - log_det[:, None] - 0.5 * self.dim * LOG_2PI).T

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``[N]`` log-density: $\\log p(x_n) = \\log \\sum_k \\pi_k \\mathcal N(x_n; \\mu_k, \\Sigma_k)$.

        ``logsumexp`` adds the component densities in log space: as plain numbers they can underflow to 0.
        """
        return torch.logsumexp(self.component_log_prob(x) + torch.log_softmax(self.logits, 0), dim=1)

    def responsibilities(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, K]``: $p(k \\mid x_n)$, which component probably made each point."""
        return torch.softmax(self.component_log_prob(x) + torch.log_softmax(self.logits, 0), dim=1)

    @torch.no_grad()
    def sample(
        self, n: int, generator: torch.Generator | None = None, return_components: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Draw ``n`` points: pick a component $k \\sim \\pi$, then draw from its Gaussian.

        The draw is $x = \\mu_k + L_k \\varepsilon$ with $\\varepsilon \\sim \\mathcal N(0, I)$.

        The random numbers come from ``generator`` (on its own device, CPU for
        :func:`course_utils.runtime.seed_everything`'s), so samples are the same on every device.
        """
        device = self.means.device
        draw_on = generator.device if generator is not None else device
        k = torch.multinomial(self.weights().to(draw_on), n, replacement=True, generator=generator).to(device)
        eps = torch.randn(n, self.dim, generator=generator, device=draw_on).to(device)
        x = self.means[k] + (self.scale_tril()[k] @ eps[:, :, None])[:, :, 0]
        return (x, k) if return_components else x


def _distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances without the matrix-multiply shortcut (exact 0 for identical points)."""
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def kmeans_init(
    x: torch.Tensor, k: int, generator: torch.Generator | None = None, iterations: int = 10,
) -> torch.Tensor:
    """``[k, d]`` starting means: k-means++ seeding, then ``iterations`` rounds of k-means (Lloyd).

    k-means++ picks each new centre with probability proportional to its squared
    distance from the centres so far, which spreads the centres over the data;
    random starts make a fitted mixture depend on luck.
    """
    if not 1 <= k <= len(x):
        raise ValueError(f"k must be between 1 and the number of points ({len(x)}), got {k}")
    data = x.detach().cpu().float()
    centres = data[torch.randint(len(data), (1,), generator=generator)]
    for _ in range(1, k):
        d2 = _distances(data, centres).pow(2).min(1).values
        if d2.sum() <= 0:  # fewer distinct points than k: any point will do
            d2 = torch.ones_like(d2)
        centres = torch.cat([centres, data[torch.multinomial(d2, 1, generator=generator)]])
    for _ in range(iterations):
        nearest = _distances(data, centres).argmin(1)
        centres = torch.stack([data[nearest == j].mean(0) if (nearest == j).any() else centres[j] for j in range(k)])
    return centres.to(x.device)


def fit_gmm(
    x: torch.Tensor, n_components: int, steps: int = 500, lr: float = 0.05,
    generator: torch.Generator | None = None, min_scale: float = 1e-3,
) -> tuple[GaussianMixture, list[float]]:
    """Fit a :class:`GaussianMixture` to ``x`` ``[N, d]`` by full-batch Adam on the mean negative log-likelihood.

    The means start from :func:`kmeans_init`; every component starts round, with a
    width that shrinks as components are added. Returns the model (on ``x``'s
    device) and the training loss per step (nats per point).
    """
    n, dim = x.shape
    if not 1 <= n_components <= n:
        raise ValueError(f"n_components must be between 1 and the number of points ({n}), got {n_components}")
    spread = float(x.std(0).mean()) if n > 1 else 1.0
    scale = max(spread * n_components ** (-1.0 / dim), 2 * min_scale)  # a narrower start for more components
    model = GaussianMixture(n_components, dim, means=kmeans_init(x, n_components, generator),
                            scale=scale, min_scale=min_scale).to(x.device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = -model.log_prob(x).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return model, losses


# --- PCA ------------------------------------------------------------------------------


@dataclass
class PCA:
    """Principal component analysis as a linear encoder/decoder.

    ``components`` holds the principal directions as *columns*, in order of
    decreasing ``variances`` (the eigenvalues of the data covariance).
    """

    mean: torch.Tensor  # [D]
    components: torch.Tensor  # [D, D], orthonormal columns
    variances: torch.Tensor  # [D], decreasing

    @classmethod
    def fit(cls, x: torch.Tensor) -> PCA:
        """Fit to ``x`` ``[N, D]`` (or images ``[N, ...]``, flattened): eigenvectors of the covariance."""
        x = x.reshape(len(x), -1).float()
        if len(x) < 2:
            raise ValueError("PCA needs at least two points")
        mean = x.mean(0)
        centred = x - mean
        cov = centred.T @ centred / (len(x) - 1)
        variances, vectors = torch.linalg.eigh(cov)  # ascending order
        variances, vectors = variances.flip(0).clamp_min(0), vectors.flip(1)
        # A sign convention, so that the same data give the same components everywhere.
        signs = torch.sign(vectors[vectors.abs().argmax(0), torch.arange(vectors.shape[1], device=x.device)])
        return cls(mean, vectors * torch.where(signs == 0, 1.0, signs), variances)

    @property
    def dim(self) -> int:
        return self.mean.shape[0]

    def explained_variance_ratio(self) -> torch.Tensor:
        """``[D]``: the cumulative fraction of the variance kept by the first ``k`` components, ``k = 1..D``."""
        return self.variances.cumsum(0) / self.variances.sum()

    def encode(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """``[N, k]`` latent codes: the coordinates of ``x - mean`` along the first ``k`` directions."""
        self._check_k(k)
        return (x.reshape(len(x), -1) - self.mean) @ self.components[:, :k]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``[N, D]``: back from ``k``-dimensional codes to data space."""
        k = z.shape[1]
        self._check_k(k)
        return z @ self.components[:, :k].T + self.mean

    def reconstruct(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Encode then decode: the best rank-``k`` approximation of ``x``, in ``x``'s shape."""
        return self.decode(self.encode(x, k)).reshape(x.shape)

    def interpolate(self, x_a: torch.Tensor, x_b: torch.Tensor, k: int, steps: int) -> torch.Tensor:
        """``[steps, D]``: ``steps`` decoded points on the line from ``x_a``'s code to ``x_b``'s, ends included."""
        z_a, z_b = self.encode(torch.stack([x_a.reshape(-1), x_b.reshape(-1)]), k)
        t = torch.linspace(0, 1, steps, device=z_a.device)[:, None]
        return self.decode(torch.lerp(z_a, z_b, t))

    def noise_variance(self, k: int) -> torch.Tensor:
        """Probabilistic PCA's $\\sigma^2$: the mean of the variances the first ``k`` components leave out."""
        self._check_k(k)
        return self.variances[k:].mean() if k < self.dim else self.variances.new_tensor(0.0)

    @torch.no_grad()
    def sample(self, n: int, k: int, generator: torch.Generator | None = None, noise: bool = False) -> torch.Tensor:
        """``[N, D]``: decode $z \\sim \\mathcal N(0, \\mathrm{diag}(\\lambda_1..\\lambda_k))$, the codes' variances.

        With ``noise``, sample probabilistic PCA instead, the density :meth:`log_prob`
        scores (Tipping & Bishop's maximum-likelihood model): $z \\sim \\mathcal N(0,
        \\Lambda_k - \\sigma^2 I)$ decoded, plus $\\mathcal N(0, \\sigma^2 I)$ noise, so the
        variance is $\\lambda_i$ along each of the first ``k`` directions and $\\sigma^2$ along the rest.
        """
        self._check_k(k)
        draw_on = generator.device if generator is not None else self.mean.device
        code_var = self.variances[:k] - (self.noise_variance(k) if noise else 0.0)
        z = torch.randn(n, k, generator=generator, device=draw_on).to(self.mean.device) * code_var.clamp_min(0).sqrt()
        x = self.decode(z)
        if noise:
            eps = torch.randn(n, self.dim, generator=generator, device=draw_on).to(self.mean.device)
            x = x + self.noise_variance(k).sqrt() * eps
        return x

    def log_prob(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """``[N]`` log-density of probabilistic PCA with ``k`` components (nats per data point).

        The model: $x = \\text{mean} + W z + \\varepsilon$, $z \\sim \\mathcal N(0, I_k)$,
        $\\varepsilon \\sim \\mathcal N(0, \\sigma^2 I)$; its maximum-likelihood fit has
        covariance $\\lambda_i$ along the first ``k`` directions and $\\sigma^2$ along the rest.
        """
        self._check_k(k)
        if k == self.dim:
            raise ValueError("log_prob needs k < D: with every component kept, no variance is left for the noise")
        sigma2 = self.noise_variance(k)
        centred = x.reshape(len(x), -1) - self.mean
        z = centred @ self.components[:, :k]
        residual = centred.pow(2).sum(1) - z.pow(2).sum(1)
        lam = self.variances[:k]
        maha = (z.pow(2) / lam).sum(1) + residual.clamp_min(0) / sigma2
        log_det = lam.log().sum() + (self.dim - k) * sigma2.log()
        return -0.5 * (maha + log_det + self.dim * LOG_2PI)

    def to(self, device: torch.device | str) -> PCA:
        return PCA(self.mean.to(device), self.components.to(device), self.variances.to(device))

    def _check_k(self, k: int) -> None:
        if not 1 <= k <= self.dim:
            raise ValueError(f"k must be between 1 and {self.dim}, got {k}")
