"""course_utils.exercises.diffusion: notebook 04's checkers say right to a right answer, and name each mistake."""

from __future__ import annotations

import pytest
import torch

from course_utils import diffusion
from course_utils.exercises import diffusion as ex
from course_utils.solutions import diffusion as ref
from tests.checks import assert_not_done, assert_right, assert_wrong

pytestmark = pytest.mark.usefixtures("one_thread")


def _stub(*args):
    raise NotImplementedError


# --- exercise 1: noising in one step ------------------------------------------------------------------------------


def noiser(variant: str = "right"):
    def add_noise(x0, t, noise, alpha_bar):
        index = {"t - 1": (t - 1).clamp(min=0), "t + 1": t + 1, "first t": t[:1].expand(len(t))}.get(variant, t)
        ab = alpha_bar[index]
        if variant == "no reshape":
            return ab.sqrt() * x0 + (1 - ab).sqrt() * noise  # [4] against [4, 1, 6, 6]: broadcasts on the last axis
        if variant == "unsqueezed wrong":
            ab = ab[:, None, None, None, None]
            return ab.sqrt() * x0 + (1 - ab).sqrt() * noise
        ab = ab.view(-1, 1, 1, 1)
        signal = {"no sqrt ab": ab, "both variances": ab, "swapped": (1 - ab).sqrt()}.get(variant, ab.sqrt())
        spread = {"variance": 1 - ab, "both variances": 1 - ab, "swapped": ab.sqrt()}.get(variant, (1 - ab).sqrt())
        if variant == "package":
            return diffusion.q_sample(x0, t, noise, diffusion.make_schedule("linear"))
        if variant == "no noise":
            return x0 * 1.0
        return signal * x0 + spread * noise

    return add_noise


def test_add_noise():
    assert_right(ex.check_add_noise(ref.add_noise))
    assert_right(ex.check_add_noise(noiser()))


def test_add_noise_refuses_the_package_version():
    assert_wrong(ex.check_add_noise(noiser("package")), "calls diffusion.q_sample")
    assert_wrong(ex.check_add_noise(diffusion.q_sample), "diffusion.q_sample itself")


@pytest.mark.parametrize(("variant", "fragment"), [
    ("no sqrt ab", "a missing √ᾱ"),
    ("variance", "scale it by the standard deviation, sqrt(1 - alpha_bar)"),
    ("both variances", "both scales are variances"),
    ("swapped", "signal and noise are swapped"),
    ("t - 1", "noised t + 1 times"),
    ("t + 1", "use alpha_bar[t], the product"),
    ("first t", "one timestep per image"),
    ("unsqueezed wrong", "broadcasts against the wrong axis"),
    ("no noise", "the noise is missing"),
])
def test_add_noise_names_each_mistake(variant, fragment):
    assert_wrong(ex.check_add_noise(noiser(variant)), fragment)


def test_add_noise_stub_and_crash():
    assert_not_done(ex.check_add_noise(_stub))
    assert_wrong(ex.check_add_noise(noiser("no reshape")), "your function raised RuntimeError")
    assert_wrong(ex.check_add_noise(lambda x0, t, noise, ab: x0 + 0.1), "largest difference")


# --- exercise 2: one DDPM reverse step --------------------------------------------------------------------------


def stepper(variant: str = "right"):
    def reverse_step(x_t, eps, t, noise, betas, alpha_bar):
        beta, ab = betas[t], alpha_bar[t]
        ab_prev = alpha_bar[t - 1] if (t > 0 or variant == "wraps at 0") else torch.tensor(1.0)
        var = (1 - ab_prev) / (1 - ab) * beta
        denom = {"no sqrt": 1 - ab}.get(variant, torch.sqrt(1 - ab))
        sign = 1.0 if variant == "plus eps" else -1.0
        scale = {"by alpha_bar": ab.sqrt(), "by alpha": 1 - beta}.get(variant, torch.sqrt(1 - beta))
        mean = (x_t + sign * beta / denom * eps) / scale
        if variant == "x0":
            return (x_t - (1 - ab).sqrt() * eps) / ab.sqrt()
        if variant == "package":
            return diffusion.ddpm_step(eps, t, t - 1, x_t, diffusion.make_schedule("linear"), noise)
        if variant == "ddim at eta 1":  # the same step (section 8.3 of the notebook), under another name
            return diffusion.ddim_step(eps, t, t - 1, x_t, diffusion.make_schedule("linear"), 1.0, noise)
        if t == 0 and variant != "wraps at 0" and variant != "noise at 0":
            return mean
        sigma = {"beta": beta.sqrt(), "variance": var, "no noise": torch.tensor(0.0), "noise at 0": beta.sqrt()}.get(
            variant, var.sqrt())
        return mean + sigma * noise

    return reverse_step


def test_reverse_step():
    assert_right(ex.check_reverse_step(ref.reverse_step))
    assert_right(ex.check_reverse_step(stepper()))


def test_reverse_step_refuses_the_package_version():
    assert_wrong(ex.check_reverse_step(stepper("package")), "calls diffusion.ddpm_step")
    assert_wrong(ex.check_reverse_step(diffusion.ddpm_step), "diffusion.ddpm_step itself")
    assert_wrong(ex.check_reverse_step(stepper("ddim at eta 1")), "calls diffusion.ddim_step")
    assert_wrong(ex.check_reverse_step(diffusion.ddim_step), "diffusion.ddim_step itself")


@pytest.mark.parametrize(("variant", "fragment"), [
    ("beta", "variance beta_t: that is Ho et al.'s other choice"),
    ("noise at 0", "variance beta_t"),
    ("variance", "scaled by the variance"),
    ("no sqrt", "the denominator is sqrt(1 - alpha_bar[t])"),
    ("by alpha_bar", "divided by sqrt(alpha_bar[t])"),
    ("by alpha", "divided by alpha_t: divide by its square root"),
    ("plus eps", "the sign of the eps term"),
    ("x0", "this is the predicted x0"),
    ("no noise", "no noise was added"),
    ("wraps at 0", "alpha_bar[-1], the *last* entry"),
])
def test_reverse_step_names_each_mistake(variant, fragment):
    assert_wrong(ex.check_reverse_step(stepper(variant)), fragment)


def test_reverse_step_stub_and_others():
    assert_not_done(ex.check_reverse_step(_stub))
    assert_wrong(ex.check_reverse_step(lambda x_t, eps, t, noise, b, ab: x_t), "differs from")
    assert_wrong(ex.check_reverse_step(lambda x_t, eps, t, noise, b, ab: x_t[0]), "should have shape (4, 1, 6, 6)")


def test_reverse_step_cases_tell_the_variances_apart():
    """beta_t and the posterior variance differ by a factor near 2 at t = 1: the checker sees the choice."""
    s = diffusion.make_schedule("linear")
    posterior = (1 - s.alpha_bar[0]) / (1 - s.alpha_bar[1]) * s.betas[1]
    assert 0.4 < posterior / s.betas[1] < 0.6


# --- exercise 3: one guided noise prediction ----------------------------------------------------------------------


def guider(variant: str = "right"):
    def guided_noise(model, x_t, t, labels, scale):
        tt = torch.full((len(x_t),), t)
        null = {"class 0": torch.zeros_like(labels), "labels twice": labels}.get(
            variant, torch.full_like(labels, model.null_class))
        if variant == "none for null":
            c, u = model(x_t, tt, labels), model(x_t, tt, None)
        elif variant == "int t":
            c, u = model(x_t, t, labels), model(x_t, t, null)
        elif variant == "swapped halves":
            u, c = model(torch.cat([x_t, x_t]), torch.cat([tt, tt]), torch.cat([labels, null])).chunk(2)
        elif variant == "t not doubled":
            c, u = model(torch.cat([x_t, x_t]), tt, torch.cat([labels, null])).chunk(2)
        else:
            c, u = model(torch.cat([x_t, x_t]), torch.cat([tt, tt]), torch.cat([labels, null])).chunk(2)
        return {"sign": c + scale * (u - c), "ho salimans": (1 + scale) * c - scale * u, "no difference": u + scale * c,
                "no uncond": scale * (c - u), "scaled cond": scale * c}.get(variant, u + scale * (c - u))

    return guided_noise


def two_calls(model, x_t, t, labels, scale):  # the two predictions in two calls, combined rearranged
    tt = torch.full((len(x_t),), t)
    eps_cond, eps_uncond = model(x_t, tt, labels), model(x_t, tt, torch.full_like(labels, model.null_class))
    return scale * eps_cond + (1 - scale) * eps_uncond


@pytest.mark.parametrize("variant", ["right", "none for null", "int t"])
def test_guided_noise(variant):
    assert_right(ex.check_guided_noise(guider(variant)))


def test_guided_noise_accepts_the_reference_two_calls_and_a_real_unet():
    assert_right(ex.check_guided_noise(ref.guided_noise))
    assert_right(ex.check_guided_noise(two_calls))
    model = diffusion.UNet(channels=(8,), time_dim=8).eval()
    torch.nn.init.normal_(model.out.weight, std=0.1)  # not the zero output of a fresh U-Net: the two calls differ
    x, labels = torch.randn(3, 1, 8, 8), torch.tensor([1, 4, 9])
    with torch.no_grad():
        ours = ref.guided_noise(model, x, 700, labels, 2.5)
        package = diffusion.denoise(model, x, 700, labels, guidance=2.5)
    assert torch.allclose(ours, package, atol=1e-5)


@pytest.mark.parametrize(("variant", "fragment"), [
    ("sign", "the sign of the guidance"),
    ("swapped halves", "the two halves of the batch are swapped"),
    ("ho salimans", "Ho & Salimans' convention"),
    ("class 0", "class 0 is a real class"),
    ("labels twice", "never asked without the label"),
    ("no difference", "add the *difference*"),
    ("no uncond", "the difference is a direction"),
    ("scaled cond", "guidance extrapolates from eps_uncond"),
    ("t not doubled", "your function raised RuntimeError"),
])
def test_guided_noise_names_each_mistake(variant, fragment):
    assert_wrong(ex.check_guided_noise(guider(variant)), fragment)


def test_guided_noise_stub_shortcuts_and_others():
    assert_not_done(ex.check_guided_noise(_stub))
    assert_wrong(ex.check_guided_noise(diffusion.denoise), "diffusion.denoise itself")
    assert_wrong(ex.check_guided_noise(lambda m, x, t, y, s: diffusion.guided_eps(m(x, t, y), m(x, t, None), s)),
                 "calls diffusion.guided_eps")
    assert_wrong(ex.check_guided_noise(lambda m, x, t, y, s: (m(x, t, y) + m(x, t, None)) / 2), "scale 0 gives")
    assert_wrong(ex.check_guided_noise(lambda m, x, t, y: x), "your function raised TypeError")


# --- exercise 4: the DDIM sampling loop ---------------------------------------------------------------------------


def looper(variant: str):
    def ddim_sample(model, x, labels, steps, alpha_bar):
        return ex._ddim_variant(model, x, labels, steps, alpha_bar, variant)

    return ddim_sample


def int_t_loop(model, x, labels, steps, alpha_bar):  # one int timestep for the batch, alpha_bar_next by hand
    times = list(range(len(alpha_bar) - 1, -1, -len(alpha_bar) // steps))
    with torch.no_grad():
        for i, t in enumerate(times):
            eps = model(x, t, labels)
            nxt = alpha_bar[times[i + 1]] if i + 1 < len(times) else 1.0
            x0 = ((x - (1 - alpha_bar[t]) ** 0.5 * eps) / alpha_bar[t] ** 0.5).clamp(-1, 1)
            x = nxt**0.5 * x0 + (1 - nxt) ** 0.5 * eps
    return x


def test_ddim_sample():
    assert_right(ex.check_ddim_sample(ref.ddim_sample))
    assert_right(ex.check_ddim_sample(looper("right")))
    assert_right(ex.check_ddim_sample(int_t_loop))


def test_ddim_sample_matches_diffusion_sample_on_a_real_unet():
    model = diffusion.UNet(channels=(8,), time_dim=8).eval()
    torch.nn.init.normal_(model.out.weight, std=0.1)
    labels = torch.tensor([1, 4])
    x = torch.randn(2, *diffusion.IMAGE_SHAPE, generator=torch.Generator().manual_seed(2))
    ours = ref.ddim_sample(model, x, labels, 5, diffusion.schedule_of(model).alpha_bar.float())
    package = diffusion.sample(model, 2, labels, steps=5, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(ours, package, atol=1e-4)


@pytest.mark.parametrize(("variant", "fragment"), [
    ("ascending", "wrong order of t"),
    ("t - 1", "wrong alpha_bar index for the next level"),
    ("wraps", "wrong alpha_bar index at the last step"),
    ("eps at next", "asked at the next timestep"),
    ("no sqrt", "a missing sqrt"),
    ("no clip", "x0_hat was not clipped"),
])
def test_ddim_sample_names_each_mistake(variant, fragment):
    assert_wrong(ex.check_ddim_sample(looper(variant)), fragment)


def test_ddim_sample_stub_shortcuts_and_others():
    assert_not_done(ex.check_ddim_sample(_stub))
    assert_wrong(ex.check_ddim_sample(lambda m, x, y, n, ab: diffusion.sample(m, len(x), y, steps=n)),
                 "calls diffusion.sample")
    assert_wrong(ex.check_ddim_sample(lambda m, x, y, n, ab: x), "the starting noise")
    assert_wrong(ex.check_ddim_sample(lambda m, x, y, n, ab: x[0]), "should have shape")
    assert_wrong(ex.check_ddim_sample(lambda m, x, y, n, ab: x * 0.5), "differ from diffusion.sample's")


def test_ddim_sample_refuses_the_diffusers_schedulers():  # section 4.4's loop, with the exercise's alpha_bar
    from diffusers import DDIMScheduler, DDPMScheduler

    def scheduler_loop(model, x, labels, steps, alpha_bar):
        sched = DDIMScheduler(num_train_timesteps=len(alpha_bar), timestep_spacing="trailing")
        sched.alphas_cumprod = alpha_bar.clone()
        sched.set_timesteps(steps)
        for t in sched.timesteps:
            x = sched.step(model(x, t.expand(len(x)), labels), t, x).prev_sample
        return x

    assert_wrong(ex.check_ddim_sample(scheduler_loop), "calls diffusers' DDIMScheduler.step")
    assert callable(DDIMScheduler.step) and "raise_" not in DDIMScheduler.step.__qualname__  # restored afterwards
    ddpm_sched = DDPMScheduler(num_train_timesteps=1000)
    assert_wrong(ex.check_ddim_sample(lambda m, x, y, n, ab: ddpm_sched.step(m(x, 999, y), 999, x).prev_sample),
                 "calls diffusers' DDPMScheduler.step")


def test_ddim_sample_checker_leaves_the_global_random_state_alone():
    torch.manual_seed(7)
    before = torch.random.get_rng_state()
    ex.check_ddim_sample(ref.ddim_sample)
    assert torch.equal(before, torch.random.get_rng_state())
