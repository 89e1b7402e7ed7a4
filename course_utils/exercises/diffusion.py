"""The exercise checkers of notebook 04 (diffusion models)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from course_utils.diffusion import make_schedule
from course_utils.exercises import Wrong, as_tensor, call, checker, close

_SCHEDULE = make_schedule("linear")  # betas 1e-4 .. 0.02, T = 1000: every mistake below changes the answer visibly


def _case(seed: int, n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 6, 6, generator=g) * 2 - 1, torch.randn(n, 1, 6, 6, generator=g)


def _first_match(value: torch.Tensor, mistakes: list[tuple[torch.Tensor, str]], tol: float = 1e-4) -> None:
    """:class:`Wrong` with the hint of the first known mistake ``value`` equals, if any."""
    for wrong, hint in mistakes:
        if close(value, wrong.float(), tol):
            raise Wrong(hint)


# --- exercise 1: noising in one step ---------------------------------------------------------------------------


def _noise_mistakes(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, ab_all: torch.Tensor) -> list:
    def rows(values: torch.Tensor) -> torch.Tensor:
        return values.view(-1, 1, 1, 1)

    ab = rows(ab_all[t])
    return [
        (ab * x0 + (1 - ab).sqrt() * noise, "the signal is scaled by alpha_bar itself: it is sqrt(alpha_bar), so "
                                            "that signal and noise variances add up to 1 (a missing √ᾱ)"),
        (ab.sqrt() * x0 + (1 - ab) * noise, "the noise is scaled by its variance 1 - alpha_bar: scale it by the "
                                            "standard deviation, sqrt(1 - alpha_bar)"),
        (ab * x0 + (1 - ab) * noise, "both scales are variances: x_t = sqrt(alpha_bar) x0 + sqrt(1 - alpha_bar) noise"),
        ((1 - ab).sqrt() * x0 + ab.sqrt() * noise, "signal and noise are swapped: at small t, x_t should be almost x0"),
        (rows(ab_all[(t - 1).clamp(min=0)]).sqrt() * x0 + (1 - rows(ab_all[(t - 1).clamp(min=0)])).sqrt() * noise,
         "off by one step: x_t has been noised t + 1 times, by betas[0] .. betas[t], which is alpha_bar[t]"),
        (rows(ab_all[t + 1]).sqrt() * x0 + (1 - rows(ab_all[t + 1])).sqrt() * noise,
         "off by one step: use alpha_bar[t], the product of alphas[0] .. alphas[t]"),
        (ab_all[t[0]].sqrt() * x0 + (1 - ab_all[t[0]]).sqrt() * noise,
         "every row used the first row's timestep: t holds one timestep per image; index alpha_bar with all of t "
         "and reshape to [N, 1, 1, 1] so that it broadcasts over each image's pixels"),
    ]


@checker(solution="add_noise")
def check_add_noise(add_noise: Callable[..., Any]) -> str:
    """``add_noise(x0, t, noise, alpha_bar)``: x_t = sqrt(ab[t]) x0 + sqrt(1 - ab[t]) noise, one t per row."""
    x0, noise = _case(0)
    t = torch.tensor([3, 150, 600, 998])
    ab_all = _SCHEDULE.alpha_bar.float()
    out = call(add_noise, "your function", x0.clone(), t.clone(), noise.clone(), ab_all.clone())
    if isinstance(out, torch.Tensor) and out.shape == (4, 4, 1, 6, 6):
        raise Wrong("the result has shape (4, 4, 1, 6, 6): alpha_bar[t] has shape [4] and broadcasts against the "
                    "wrong axis; reshape it to [N, 1, 1, 1] first")
    x_t = as_tensor(out, "x_t", shape=tuple(x0.shape))
    ab = ab_all[t].view(-1, 1, 1, 1)
    expected = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
    if close(x_t, expected, 1e-4):
        return ("x_t = sqrt(alpha_bar[t]) x0 + sqrt(1 - alpha_bar[t]) noise: t steps of noising in one, each image "
                "at its own t")
    _first_match(x_t, _noise_mistakes(x0, t, noise, ab_all))
    if close(x_t, x0, 1e-4):
        raise Wrong("x_t equals x0: the noise is missing")
    raise Wrong("x_t is not sqrt(alpha_bar[t]) * x0 + sqrt(1 - alpha_bar[t]) * noise for these inputs "
                f"(largest difference {(x_t - expected).abs().max():.3g})")


# --- exercise 2: one DDPM reverse step ------------------------------------------------------------------------


def _step_parts(t: int) -> tuple[torch.Tensor, ...]:
    s = _SCHEDULE
    beta, ab = s.betas[t], s.alpha_bar[t]
    ab_prev = s.alpha_bar[t - 1] if t > 0 else torch.tensor(1.0, dtype=torch.float64)
    return beta, ab, ab_prev, (1 - ab_prev) / (1 - ab) * beta


def _step_mistakes(x_t: torch.Tensor, eps: torch.Tensor, t: int, noise: torch.Tensor) -> list:
    beta, ab, ab_prev, var = (v.float() for v in _step_parts(t))
    mean = (x_t - beta / (1 - ab).sqrt() * eps) / (1 - beta).sqrt()
    wrap = _SCHEDULE.alpha_bar[-1].float()  # alpha_bar[t - 1] at t = 0 in Python: the last entry
    return [
        (mean + beta.sqrt() * noise, "the noise has variance beta_t: that is Ho et al.'s other choice; this "
                                     "exercise asks for the posterior variance (1 - alpha_bar[t-1]) / "
                                     "(1 - alpha_bar[t]) * beta_t"),
        (mean + var * noise, "the noise is scaled by the variance: scale it by the standard deviation, its square "
                             "root"),
        (mean + beta * noise, "the noise is scaled by beta_t, a variance, and the wrong one: use the square root "
                              "of the posterior variance"),
        ((x_t - beta / (1 - ab) * eps) / (1 - beta).sqrt() + var.sqrt() * noise,
         "eps is scaled by beta_t / (1 - alpha_bar[t]): the denominator is sqrt(1 - alpha_bar[t]), the noise's "
         "standard deviation in x_t"),
        ((x_t - beta / (1 - ab).sqrt() * eps) / ab.sqrt() + var.sqrt() * noise,
         "the mean is divided by sqrt(alpha_bar[t]): one step undoes one alpha, divide by sqrt(alpha_t) = "
         "sqrt(1 - beta_t)"),
        ((x_t - beta / (1 - ab).sqrt() * eps) / (1 - beta) + var.sqrt() * noise,
         "the mean is divided by alpha_t: divide by its square root"),
        ((x_t + beta / (1 - ab).sqrt() * eps) / (1 - beta).sqrt() + var.sqrt() * noise,
         "the sign of the eps term: the step removes predicted noise, x_t - beta_t / sqrt(1 - alpha_bar[t]) eps"),
        ((x_t - (1 - ab).sqrt() * eps) / ab.sqrt(), "this is the predicted x0, where the chain would jump in one go; "
                                                    "one step moves only to x_{t-1}"),
        (mean, "no noise was added: every step but the last (t = 0) adds sigma_t * noise"),
        (mean + ((1 - wrap) / (1 - ab) * beta).sqrt() * noise,
         "at t = 0, alpha_bar[t - 1] is alpha_bar[-1], the *last* entry in Python: before the first step nothing "
         "is noised, so alpha_bar is 1 there (and the step adds no noise)"),
    ]


@checker(solution="reverse_step")
def check_reverse_step(reverse_step: Callable[..., Any]) -> str:
    """``reverse_step(x_t, eps, t, noise, betas, alpha_bar)``: one DDPM step, posterior variance, no noise at t = 0."""
    betas, ab_all = _SCHEDULE.betas.float(), _SCHEDULE.alpha_bar.float()
    for t in (500, 1, 0):
        x_t, eps = _case(10 + t)
        noise = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(t))
        out = call(reverse_step, "your function", x_t.clone(), eps.clone(), t, noise.clone(), betas.clone(),
                   ab_all.clone())
        x_prev = as_tensor(out, f"x_(t-1) at t = {t}", shape=tuple(x_t.shape))
        beta, ab, _, var = (v.float() for v in _step_parts(t))
        expected = (x_t - beta / (1 - ab).sqrt() * eps) / (1 - beta).sqrt() + var.sqrt() * noise
        if close(x_prev, expected, 1e-4):
            continue
        _first_match(x_prev, _step_mistakes(x_t, eps, t, noise))
        raise Wrong(f"at t = {t} the step differs from (x_t - beta_t / sqrt(1 - alpha_bar[t]) eps) / sqrt(alpha_t) "
                    f"+ sigma_t noise by up to {(x_prev - expected).abs().max():.3g}")
    return ("x_(t-1) = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_t) + sigma_t z with the posterior "
            "variance, and no noise at the last step")


# --- exercise 3: classifier-free guidance -----------------------------------------------------------------------


@checker(solution="guide")
def check_guide(guide: Callable[..., Any]) -> str:
    """``guide(eps_cond, eps_uncond, scale)``: eps_uncond + scale * (eps_cond - eps_uncond)."""
    g = torch.Generator().manual_seed(3)
    eps_c, eps_u = torch.randn(2, 1, 6, 6, generator=g), torch.randn(2, 1, 6, 6, generator=g)
    for scale in (3.0, 0.0, 1.0):
        out = as_tensor(call(guide, "your function", eps_c.clone(), eps_u.clone(), scale), f"the result at scale "
                        f"{scale:g}", shape=tuple(eps_c.shape))
        expected = eps_u + scale * (eps_c - eps_u)
        if close(out, expected, 1e-5):
            continue
        _first_match(out, [
            (eps_c + scale * (eps_u - eps_c), "the sign of the guidance: this moves away from the class, towards the "
                                              "unconditional prediction. Start from eps_uncond and add scale times "
                                              "(eps_cond - eps_uncond)"),
            ((1 + scale) * eps_c - scale * eps_u, "this is Ho & Salimans' convention, where w = 0 means the "
                                                  "conditional model; here scale = 1 is the conditional model and "
                                                  "scale = 0 the unconditional one"),
            (eps_u + scale * eps_c, "add the *difference* eps_cond - eps_uncond, scaled: the direction that makes "
                                    "the image more like its class"),
            (scale * (eps_c - eps_u), "the unconditional prediction is missing: the difference is a direction, to be "
                                      "added to eps_uncond"),
            (scale * eps_c, "the unconditional prediction is missing: guidance extrapolates from eps_uncond "
                            "through eps_cond"),
        ], 1e-5)
        raise Wrong(f"at scale {scale:g} the result should be eps_uncond + scale * (eps_cond - eps_uncond): "
                    "scale 0 gives eps_uncond and scale 1 gives eps_cond")
    return "eps_uncond + scale * (eps_cond - eps_uncond): scale 0 is unconditional, 1 conditional, above 1 guided"
