"""The exercise checkers of notebook 04 (diffusion models)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from course_utils import diffusion
from course_utils.diffusion import make_schedule
from course_utils.exercises import Wrong, as_tensor, call_refusing, checker, close

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
    out = call_refusing([(diffusion, "q_sample", "diffusion.q_sample")], "write the closed form yourself", add_noise,
                        "your function", x0.clone(), t.clone(), noise.clone(), ab_all.clone(),
                        advice="index alpha_bar with t and combine x0 and noise")
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
        shortcuts = [(diffusion, name, f"diffusion.{name}") for name in ("ddpm_step", "ddim_step")]  # eta = 1: DDPM's
        out = call_refusing(shortcuts, "write the step yourself", reverse_step,
                            "your function", x_t.clone(), eps.clone(), t, noise.clone(), betas.clone(), ab_all.clone(),
                            advice="build the mean and the noise's scale from betas and alpha_bar")
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


# --- exercise 3: one guided noise prediction --------------------------------------------------------------------


class _Denoiser(torch.nn.Module):
    """A stand-in for the U-Net, called as ``model(x, t, labels)``: a prediction that depends on the image, the
    timestep and the label (the null class 10 included), and a note of the labels of each call."""

    null_class = 10

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))  # as a real model, it has parameters
        self.calls: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor, t: Any, labels: torch.Tensor | None = None) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=torch.float32)
        t = t.expand(len(x)) if t.ndim == 0 else t
        if labels is None:  # as the U-Net: no labels is the null class
            labels = torch.full((len(x),), self.null_class, dtype=torch.long)
        self.calls.append(torch.as_tensor(labels).detach().cpu().clone())
        scale = 1 + 0.25 * torch.as_tensor(labels, dtype=torch.float32).view(-1, 1, 1, 1)
        return torch.sin(3 * x + t.view(-1, 1, 1, 1) / 300) * scale


def _guidance_mistakes(c: torch.Tensor, u: torch.Tensor, zero: torch.Tensor, scale: float) -> list:
    return [
        (c + scale * (u - c), "the sign of the guidance: this moves away from the class, towards the unconditional "
                              "prediction (or the two halves of the batch are swapped). Start from eps_uncond and "
                              "add scale times (eps_cond - eps_uncond)"),
        ((1 + scale) * c - scale * u, "this is Ho & Salimans' convention, where w = 0 means the conditional model; "
                                      "here scale = 1 is the conditional model and scale = 0 the unconditional one"),
        (zero + scale * (c - zero), "class 0 is a real class (T-shirt/top), not \"no label\": the unconditional "
                                    "prediction uses the null class, model.null_class (10 here), one past the real "
                                    "classes"),
        (u + scale * c, "add the *difference* eps_cond - eps_uncond, scaled: the direction that makes the image more "
                        "like its class"),
        (scale * (c - u), "the unconditional prediction is missing: the difference is a direction, to be added to "
                          "eps_uncond"),
        (scale * c, "the unconditional prediction is missing: guidance extrapolates from eps_uncond through "
                    "eps_cond"),
    ]


@checker(solution="guided_noise")
def check_guided_noise(guided_noise: Callable[..., Any]) -> str:
    """``guided_noise(model, x_t, t, labels, scale)``: eps_uncond + scale * (eps_cond - eps_uncond), from two
    predictions of ``model``, with the labels and with the null class."""
    g = torch.Generator().manual_seed(3)
    x_t, labels, t = torch.randn(4, 1, 6, 6, generator=g), torch.tensor([0, 3, 7, 9]), 500
    model = _Denoiser()
    with torch.no_grad():
        c, u, zero = (model(x_t, torch.full((4,), t), y) for y in (labels, torch.full((4,), 10), torch.zeros(4).long()))
    shortcuts = [(diffusion, "denoise", "diffusion.denoise"), (diffusion, "guided_eps", "diffusion.guided_eps")]
    for scale in (3.0, 0.0, 1.0):
        model.calls.clear()
        out = call_refusing(shortcuts, "write the two predictions and their combination yourself", guided_noise,
                            "your function", model, x_t.clone(), t, labels.clone(), scale,
                            advice="call model(...) and combine its outputs")
        out = as_tensor(out, f"the result at scale {scale:g}", shape=tuple(x_t.shape))
        if close(out, u + scale * (c - u), 1e-5):
            continue
        _first_match(out, _guidance_mistakes(c, u, zero, scale), 1e-5)
        asked = torch.cat([y.flatten() for y in model.calls]) if model.calls else torch.empty(0, dtype=torch.long)
        if not (asked == model.null_class).any():
            raise Wrong("the model was never asked without the label: the unconditional prediction is the model's "
                        "with every label replaced by the null class, model.null_class (10 here)")
        raise Wrong(f"at scale {scale:g} the result should be eps_uncond + scale * (eps_cond - eps_uncond), with "
                    "eps_cond = model(x_t, t, labels) and eps_uncond the same with the null class: scale 0 gives "
                    "eps_uncond and scale 1 gives eps_cond")
    return ("eps_uncond + scale * (eps_cond - eps_uncond), the unconditional prediction from the null class: scale 0 "
            "is unconditional, 1 conditional, above 1 guided")


# --- exercise 4: the DDIM sampling loop ---------------------------------------------------------------------------


class _GaussianDenoiser(torch.nn.Module):
    """A stand-in for a trained U-Net, called as ``model(x, t, labels)``: the best noise prediction for images
    whose pixels are Gaussian around a mean per class, ``eps* = sqrt(1 - ab)(x - sqrt(ab) m_y) / (ab v + 1 - ab)``
    (section 3.1's score), plus a small error. Its samples depend on every t, so each mistake shows."""

    null_class = 10

    def __init__(self, shape: tuple[int, ...] = (1, 6, 6), v: float = 0.05) -> None:
        super().__init__()
        self.config = type("Config", (), {"schedule": "cosine", "T": 1000})()
        self.register_buffer("alpha_bar", make_schedule("cosine", 1000).alpha_bar.float())
        pixels = torch.arange(torch.Size(shape).numel(), dtype=torch.float32).view(1, *shape)
        self.register_buffer("means", 0.6 * torch.sin(pixels + torch.arange(11.0).view(-1, 1, 1, 1)))
        self.v = v
        self.weight = torch.nn.Parameter(torch.zeros(1))  # as a real model, it has parameters

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        ab = self.alpha_bar[torch.as_tensor(t, dtype=torch.long)].view(-1, *([1] * (x.ndim - 1)))
        m = self.means[labels]
        best = (1 - ab).sqrt() * (x - ab.sqrt() * m) / (ab * self.v + 1 - ab)
        return best + 0.01 * torch.sin(5 * x)  # a small error, as a trained network's: the clip of x0_hat matters


def _ddim_variant(model: Any, x: torch.Tensor, labels: torch.Tensor, steps: int, ab_all: torch.Tensor,
                  variant: str = "right") -> torch.Tensor:
    """The DDIM loop, right or with one named mistake (the checker's catalogue)."""
    T = len(ab_all)  # noqa: N806
    times = diffusion.sampling_timesteps(T, steps)
    if variant == "ascending":
        times = times[::-1]
    with torch.no_grad():
        for i, t in enumerate(times):
            t_next = times[i + 1] if i + 1 < len(times) else -1
            if variant == "t - 1":
                t_next = t - 1
            ab = ab_all[t]
            ab_next = ab_all[t_next] if t_next >= 0 or variant == "wraps" else torch.tensor(1.0)
            eps = model(x, torch.full((len(x),), t_next if variant == "eps at next" else t), labels)
            root = (lambda v: v) if variant == "no sqrt" else torch.sqrt
            x0 = (x - root(1 - ab) * eps) / root(ab)
            if variant != "no clip":
                x0 = x0.clamp(-1, 1)
            x = root(ab_next) * x0 + root(1 - ab_next) * eps
    return x


_LOOP_MISTAKES = [
    ("ascending", "wrong order of t: the loop went from small t to large; start at t = T - 1 (pure noise) and go "
                  "down, as sampling_timesteps(T, steps) lists them"),
    ("t - 1", "wrong alpha_bar index for the next level: the step goes from t to the next timestep visited, "
              "t - T/steps, not to t - 1; take alpha_bar at that next timestep"),
    ("wraps", "wrong alpha_bar index at the last step: after the last timestep the next one is -1, and "
              "alpha_bar[-1] in Python is the *last* entry (almost no signal); there nothing is noised, so use 1"),
    ("eps at next", "the network was asked at the next timestep: ask it for the noise at the current t, the noise "
                    "level of the x it is given"),
    ("no sqrt", "a missing sqrt: x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t), and the next x is "
                "sqrt(alpha_bar_next) x0_hat + sqrt(1 - alpha_bar_next) eps: standard deviations, not variances"),
    ("no clip", "x0_hat was not clipped: clamp it to [-1, 1], the range of the data, before the step (without it "
                "the first step's x0_hat is the predicted noise's error magnified about 20,000 times)"),
]


def _diffusers_steps() -> list[tuple[Any, str, str]]:
    """The ``step`` of diffusers' DDIM and DDPM schedulers, as shortcuts (none where diffusers is missing)."""
    try:
        from diffusers import DDIMScheduler, DDPMScheduler
    except ImportError:  # pragma: no cover - diffusers is a course dependency
        return []
    return [(cls, "step", f"diffusers' {cls.__name__}.step") for cls in (DDIMScheduler, DDPMScheduler)]


@checker(solution="ddim_sample")
def check_ddim_sample(ddim_sample: Callable[..., Any]) -> str:
    """``ddim_sample(model, x, labels, steps, alpha_bar)``: the DDIM loop from the noise ``x``, the same images as
    ``diffusion.sample`` gives from the same seed."""
    model, steps, labels, shape = _GaussianDenoiser(), 10, torch.tensor([0, 3, 7, 9]), (1, 6, 6)
    ab_all = diffusion.schedule_of(model).alpha_bar.float()
    expected = diffusion.sample(model, 4, labels, steps=steps, shape=shape, generator=torch.Generator().manual_seed(5))
    x = torch.randn(4, *shape, generator=torch.Generator().manual_seed(5))  # sample's first draw
    shortcuts = [(diffusion, name, f"diffusion.{name}") for name in ("sample", "ddim_step", "predict_x0", "denoise")]
    shortcuts += _diffusers_steps()  # section 4.4's loop, with alpha_bar put into a scheduler, is the exercise done
    with torch.no_grad():
        out = call_refusing(shortcuts, "write the loop yourself", ddim_sample, "your function", model, x.clone(),
                            labels.clone(), steps, ab_all.clone(),
                            advice="call model(x, timesteps, labels) and write the step from the formula")
    images = as_tensor(out, "the samples", shape=tuple(x.shape))
    if close(images, expected, 1e-4):
        return (f"{steps} DDIM steps from t = {ab_all.numel() - 1} down: the same images as diffusion.sample from the "
                "same seed")
    for variant, hint in _LOOP_MISTAKES:
        if close(images, _ddim_variant(model, x, labels, steps, ab_all, variant), 1e-4):
            raise Wrong(hint)
    if close(images, x, 1e-4):
        raise Wrong("the result is the starting noise: the loop did not change x (assign the step's result to x)")
    raise Wrong("the samples differ from diffusion.sample's from the same noise by up to "
                f"{(images - expected).abs().max():.3g}: check the timesteps, the alpha_bar of t and of the next "
                "timestep (1 after the last), the clip of x0_hat and the step's formula")
