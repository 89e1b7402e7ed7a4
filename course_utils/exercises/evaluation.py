"""The exercise checkers of notebook 07 (evaluating generative models)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from course_utils import evaluation, human_eval
from course_utils.exercises import Wrong, as_number, call_refusing, checker

# --- the package's shortcuts: an exercise that asks for an algorithm refuses the function that does it ------------


PR_SHORTCUTS = ((evaluation, "precision_recall", "evaluation.precision_recall"),
                (evaluation, "manifold_membership", "evaluation.manifold_membership"),
                (evaluation, "knn_radii", "evaluation.knn_radii"))
BOOTSTRAP_SHORTCUTS = ((evaluation, "bootstrap_interval", "evaluation.bootstrap_interval"),)
WIN_RATE_SHORTCUTS = ((human_eval, "win_rates", "human_eval.win_rates"),
                      (human_eval, "wilson_interval", "human_eval.wilson_interval"),
                      (human_eval.Rating, "winner", "Rating.winner"))  # it reads the sides for you


# --- a bootstrap interval (section 2) ---------------------------------------------------------------


def _pair_of_numbers(value: Any, what: str) -> tuple[float, float]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise Wrong(f"return {what} as a tuple of two numbers, e.g. (low, high)")
    return as_number(value[0], f"the first number of {what}"), as_number(value[1], f"the second number of {what}")


def _sample(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 + 5


def _mean(x: torch.Tensor) -> float:
    return x.mean().item()


@checker(solution="bootstrap_mean_interval")
def check_bootstrap_interval(fn: Callable[..., Any]) -> str:
    """``fn(values, resamples, generator)`` -> ``(low, high)``: the 95% percentile bootstrap interval of the mean."""
    values = _sample(400, 0)

    def ask(sample: torch.Tensor, seed: int) -> Any:
        return call_refusing(BOOTSTRAP_SHORTCUTS, "write the resampling yourself", fn, "your function", sample, 4000,
                            torch.Generator().manual_seed(seed))

    low, high = _pair_of_numbers(ask(values.clone(), 1),
                                 "the interval")
    _, ref_low, ref_high = evaluation.bootstrap_interval(_mean, values, resamples=4000,
                                                         generator=torch.Generator().manual_seed(2))
    width, ref_width, mean = high - low, ref_high - ref_low, values.mean().item()
    if low > high:
        raise Wrong("low is above high: return (low, high), the 2.5% quantile first")
    if width < 0.05 * ref_width:
        raise Wrong("the interval has (almost) no width: every resample gave the same mean. Draw the resample "
                    "*with replacement*, so that values repeat or drop out")
    if not low < mean < high:
        raise Wrong(f"the interval ({low:.3f}, {high:.3f}) should contain the sample mean {mean:.3f}")
    ratio = width / ref_width
    if abs(ratio - math.sqrt(len(values))) < 0.25 * math.sqrt(len(values)):
        raise Wrong("that is the spread of the values themselves, about sqrt(n) times too wide: take the mean of "
                    "each resample, then the 2.5% and 97.5% quantiles of those means")
    for level, z in ((90, 1.645), (99, 2.576), (68, 1.0)):
        if abs(ratio - z / 1.96) < 0.04:
            raise Wrong(f"that looks like a {level}% interval; for 95%, take the 2.5% and 97.5% quantiles")
    if abs(low - ref_low) > 0.1 * ref_width or abs(high - ref_high) > 0.1 * ref_width:
        raise Wrong(f"expected about ({ref_low:.3f}, {ref_high:.3f}), got ({low:.3f}, {high:.3f}): resample the "
                    "values with replacement, take each resample's mean, then torch.quantile(means, 0.025) and 0.975")
    again = _pair_of_numbers(ask(values.clone(), 1),
                             "the interval")
    if again != (low, high):
        raise Wrong("the same generator seed gave another interval: draw every resample with the generator you are "
                    "given (torch.randint(..., generator=generator)), so that a result can be reproduced")
    more = _sample(1600, 3)
    l4, h4 = _pair_of_numbers(ask(more, 1), "the interval")
    shrink = (h4 - l4) / width
    if not 0.35 < shrink < 0.7:
        raise Wrong("with 4 times the values the interval should be about half as wide;"
                    f" yours changed by x{shrink:.2f}."
                    " Each resample must have as many values as the sample: len(values)")
    other = _pair_of_numbers(ask(values.clone(), 7),
                             "the interval")
    if other == (low, high):
        raise Wrong("another generator gave exactly the same interval, so nothing was resampled: a formula such as "
                    "mean ± 1.96·std/sqrt(n) is the normal approximation, not the bootstrap. Draw the resamples "
                    "with the generator you are given and take quantiles of their means")
    skewed = (_sample(50, 4) - 5) * 0.75  # standard normal, then exp: a strongly right-skewed sample
    skewed = skewed.exp()
    ls, hs = _pair_of_numbers(ask(skewed.clone(), 1),
                              "the interval")
    _, ref_ls, ref_hs = evaluation.bootstrap_interval(_mean, skewed, resamples=4000,
                                                      generator=torch.Generator().manual_seed(2))
    if abs(ls - ref_ls) > 0.1 * (ref_hs - ref_ls) or abs(hs - ref_hs) > 0.1 * (ref_hs - ref_ls):
        raise Wrong(f"on a strongly skewed sample the percentile bootstrap interval is about ({ref_ls:.3f}, "
                    f"{ref_hs:.3f}), lopsided around the mean {skewed.mean().item():.3f}; yours is ({ls:.3f}, "
                    f"{hs:.3f}). Take the 2.5% and 97.5% quantiles of the resampled means themselves (not a "
                    "symmetric mean ± 1.96·se)")
    return (f"({low:.3f}, {high:.3f}) around the mean {mean:.3f}; with 4x the data it is x{shrink:.2f} as wide "
            "(1/sqrt(4) = 0.5)")


# --- precision and recall on a toy manifold (section 2) ---------------------------------------------------


def _circle(n: int, seed: int, radius: float = 1.0, arc: float = 2 * math.pi) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    angle = torch.rand(n, generator=g, dtype=torch.float64) * arc
    r = radius + 0.03 * torch.randn(n, generator=g, dtype=torch.float64)
    return torch.stack([r * angle.cos(), r * angle.sin()], dim=1)


def toy_manifold_cases() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Real points on a noisy unit circle, and three generators: a good one, a collapsed one, one off the circle."""
    real = _circle(300, 0)
    return {"good (the whole circle)": (real, _circle(300, 1)),
            "collapsed (a quarter of it)": (real, _circle(300, 2, arc=math.pi / 2)),
            "off the manifold (radius 1.5)": (real, _circle(300, 3, radius=1.5))}


def _pr_variant(real: torch.Tensor, fake: torch.Tensor, k: int, rank: int,
                own_radii: bool = True) -> tuple[float, float]:
    """Precision and recall with the ``rank``-th smallest distance as radius (rank k + 1 is right)."""
    def radii(x: torch.Tensor) -> torch.Tensor:
        return torch.cdist(x, x).kthvalue(rank, dim=1).values

    def inside(queries: torch.Tensor, support: torch.Tensor, r: torch.Tensor) -> float:
        return (torch.cdist(queries, support) <= r[None, :]).any(dim=1).double().mean().item()

    if own_radii:
        return inside(fake, real, radii(real)), inside(real, fake, radii(fake))
    # the wrong manifold: each query tested against balls of the query's own set's radii
    d_fr, d_rf = torch.cdist(fake, real), torch.cdist(real, fake)
    return ((d_fr <= radii(fake)[:, None]).any(dim=1).double().mean().item(),
            (d_rf <= radii(real)[:, None]).any(dim=1).double().mean().item())


@checker(solution="precision_recall_knn")
def check_precision_recall(fn: Callable[..., Any]) -> str:
    """``fn(real, fake, k)`` -> ``(precision, recall)``: Kynkäänniemi et al.'s k-NN precision and recall."""
    k, found = 3, []
    tol = 1.5 / 300  # one point either way: a distance that ties a radius may round either side
    for name, (real, fake) in toy_manifold_cases().items():
        out = call_refusing(PR_SHORTCUTS, "write it with torch yourself", fn, "your function", real.clone(),
                           fake.clone(), k)
        p, r = _pair_of_numbers(out, "(precision, recall)")
        ref = evaluation.precision_recall(real, fake, k)
        ep, er = ref["precision"], ref["recall"]
        if abs(p - ep) <= tol and abs(r - er) <= tol:
            found.append(f"{name}: {p:.2f}/{r:.2f}")
            continue
        if abs(p - er) <= tol and abs(r - ep) <= tol:
            raise Wrong("precision and recall are swapped: precision asks whether the *generated* points fall inside "
                        "the real manifold, recall whether the *real* points fall inside the generated one")
        if all(abs(a - b) <= tol for a, b in zip((p, r), _pr_variant(real, fake, k, k), strict=True)):
            raise Wrong("the radius must be the distance to the k-th nearest *other* point: a point's smallest "
                        "distance is 0, to itself, so take kthvalue(k + 1)")
        if all(abs(a - b) <= tol for a, b in zip((p, r), _pr_variant(real, fake, k, k + 1, False), strict=True)):
            raise Wrong("the balls belong to the set being covered: for precision, use the real points' radii "
                        "around the real points, and ask whether each generated point is inside any of them")
        raise Wrong(f"{name}: expected precision {ep:.3f} and recall {er:.3f}, got {p:.3f} and {r:.3f}. A point is "
                    "inside a manifold if it is within radius_j of some point j of the other set (<=)")
    return "; ".join(found) + " (precision/recall): the collapsed generator is precise but covers little"


# --- a paired bootstrap of a ratio of two models' means (section 3.3) ----------------------------------------


def ratio_scores(n: int, seed: int, skewed: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Two models' positive scores on the same ``n`` items (lower is better), as bits per character on chunks.

    The items' difficulty varies much more than the two models differ, so resampling the models independently
    gives a far wider interval than pairing. Model a gains most on the hard items, so the mean of the per-item
    ratios a_i / b_i lies well away from the ratio of the means. With ``skewed``, a few items are very hard, and
    the resampled ratios are lopsided around the observed one.
    """
    g = torch.Generator().manual_seed(seed)
    spread = 1.4 if skewed else 0.6
    difficulty = (0.3 if skewed else 0.4) + (spread * torch.randn(n, generator=g, dtype=torch.float64)).exp()
    b = difficulty * (1 + 0.05 * torch.randn(n, generator=g, dtype=torch.float64))
    a = 0.8 * difficulty + 0.15 + 0.05 * torch.randn(n, generator=g, dtype=torch.float64)
    return a, b


def _quantiles(values: torch.Tensor, tail: float) -> tuple[float, float]:
    return torch.quantile(values, tail).item(), torch.quantile(values, 1 - tail).item()


def _ratio_intervals(a: torch.Tensor, b: torch.Tensor, resamples: int = 4000) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals from one draw of resamples: the right one ("right") and the mistakes'."""
    g, n = torch.Generator().manual_seed(2), len(a)
    items = torch.randint(n, (resamples, n), generator=g)
    others = torch.randint(n, (resamples, n), generator=g)
    ra, rb, mean_a, mean_b = a[items], b[items], a[items].mean(dim=1), b[items].mean(dim=1)
    values = {"right": mean_a / mean_b, "unpaired": mean_a / b[others].mean(dim=1), "inverted": mean_b / mean_a,
              "per-item": (ra / rb).mean(dim=1), "difference": mean_a - mean_b}
    out = {name: _quantiles(v, 0.025) for name, v in values.items()}
    for level in (90, 99):
        tail = (1 - level / 100) / 2
        out[f"{level}%"] = _quantiles(values["right"], tail)
    return out


def _off(got: tuple[float, float], want: tuple[float, float]) -> float:
    """How far the farther end of ``got`` lies from ``want``'s, in widths of ``want``."""
    return max(abs(got[0] - want[0]), abs(got[1] - want[1])) / (want[1] - want[0])


_RATIO_MISTAKES = {
    "unpaired": "that is the *unpaired* interval, several times too wide here: the two models' scores were resampled "
                "independently, so an item that is hard for both lands in one model's resample and not in the other's. "
                "Draw one set of item indices per resample and use it for both models",
    "per-item": "that is the interval of the mean of the per-item ratios a_i / b_i, another statistic: it weights "
                "every item equally, however many bits it holds. Each resample's statistic is the ratio of the two "
                "resampled *means*, mean of a over mean of b",
    "inverted": "the ratio is upside down: it is mean(scores_a) / mean(scores_b), model a over model b",
    "difference": "that is an interval of the mean *difference* a - b, not of the ratio of the means",
    "90%": "that looks like a 90% interval; for 95%, take the 2.5% and 97.5% quantiles of the resampled ratios",
    "99%": "that looks like a 99% interval; for 95%, take the 2.5% and 97.5% quantiles of the resampled ratios",
}


@checker(solution="paired_ratio_interval")
def check_paired_ratio(fn: Callable[..., Any]) -> str:
    """``fn(scores_a, scores_b, resamples, generator)`` -> ``(low, high)``: paired bootstrap of mean(a) / mean(b)."""
    a, b = ratio_scores(256, 0)

    def ask(sa: torch.Tensor, sb: torch.Tensor, seed: int) -> tuple[float, float]:
        out = call_refusing(BOOTSTRAP_SHORTCUTS, "write the resampling yourself", fn, "your function", sa.clone(),
                           sb.clone(), 4000, torch.Generator().manual_seed(seed))
        return _pair_of_numbers(out, "the interval")

    got = ask(a, b, 1)
    low, high = got
    ratio = (a.mean() / b.mean()).item()
    candidates = _ratio_intervals(a, b)
    right = candidates["right"]
    if low > high:
        raise Wrong("low is above high: return (low, high), the 2.5% quantile first")
    if high - low < 0.05 * (right[1] - right[0]):
        raise Wrong("the interval has (almost) no width: every resample gave the same ratio, so each resample held "
                    "every item once. Draw the item indices *with replacement*, so that items repeat or drop out")
    nearest = min(candidates, key=lambda name: _off(got, candidates[name]))
    if nearest != "right" or _off(got, right) > 0.06:  # a 90% interval is 0.08 of the width off at each end
        if nearest != "right" and _off(got, candidates[nearest]) <= 0.1:
            raise Wrong(_RATIO_MISTAKES[nearest])
        if not low < ratio < high:
            raise Wrong(f"the interval ({low:.4f}, {high:.4f}) should contain the observed ratio {ratio:.4f}, "
                        "mean(scores_a) / mean(scores_b)")
        raise Wrong(f"expected about ({right[0]:.4f}, {right[1]:.4f}), got ({low:.4f}, {high:.4f}): each resample "
                    "draws as many item indices as there are items, with replacement, the same ones for both models, "
                    "and gives one ratio of the two means; the interval is the 2.5% and 97.5% quantiles of the ratios")
    if ask(a, b, 1) != got:
        raise Wrong("the same generator seed gave another interval: draw every resample with the generator you are "
                    "given, so that a result can be reproduced")
    if ask(a, b, 7) == got:
        raise Wrong("another generator gave exactly the same interval, so nothing was resampled with it: a formula "
                    "(a normal approximation) is not the bootstrap. Draw the resamples with the generator you are "
                    "given and take quantiles of the resampled ratios")
    sa, sb = ratio_scores(50, 4, skewed=True)
    skewed, want = ask(sa, sb, 1), _ratio_intervals(sa, sb)["right"]
    if _off(skewed, want) > 0.06:  # a symmetric interval, ratio ± 1.96 standard errors, is 0.23 of the width off
        raise Wrong(f"on strongly skewed scores the percentile interval is about ({want[0]:.3f}, {want[1]:.3f}), "
                    f"lopsided around the ratio {(sa.mean() / sb.mean()).item():.3f}; yours is ({skewed[0]:.3f}, "
                    f"{skewed[1]:.3f}). A symmetric interval (ratio ± 1.96 standard errors, a normal approximation) "
                    "misses that: take the quantiles of the resampled ratios themselves")
    unpaired = candidates["unpaired"]
    times = (unpaired[1] - unpaired[0]) / (high - low)
    return (f"({low:.4f}, {high:.4f}) around the ratio {ratio:.4f}; resampling the two models independently would "
            f"give ({unpaired[0]:.4f}, {unpaired[1]:.4f}), x{times:.1f} as wide")


# --- a win rate with its interval (section 4) -------------------------------------------------------------


def win_rate_ratings() -> list[human_eval.Rating]:
    """A fixed set of ratings: gan against vae (with ties) and real data against gan, sides drawn at random.

    Each pair is ``(model_a, model_b, winner)``: gan is model_a against vae but model_b against real data, so a
    solution that counts model_a's wins whatever model it is asked about gives the wrong answer.
    """
    g = torch.Generator().manual_seed(0)
    outcomes = [("gan", "vae", "gan")] * 18 + [("gan", "vae", "vae")] * 8 + [("gan", "vae", None)] * 4 + \
               [("real", "gan", "real")] * 7 + [("real", "gan", "gan")] * 5
    ratings = []
    for i, (a, b, winner) in enumerate(outcomes):
        left_is_a = bool(torch.rand(1, generator=g).item() < 0.5)
        shown_left = f"{a}{i}" if left_is_a else f"{b}{i}"
        if winner is None:
            choice = "tie"
        else:
            choice = "left" if (winner == a) == left_is_a else "right"
        ratings.append(human_eval.Rating(rater="ex", task="pairwise", item_a=f"{a}{i}", item_b=f"{b}{i}",
                                         shown_left=shown_left, choice=choice, model_a=a, model_b=b))
    return ratings


def _wald(wins: float, n: int) -> tuple[float, float]:
    p = wins / n
    half = 1.959964 * math.sqrt(p * (1 - p) / n)
    return p - half, p + half


def ask_win_rate(fn: Any, ratings: list[human_eval.Rating], model: str) -> Any:
    return call_refusing(WIN_RATE_SHORTCUTS, "count the wins and write the interval yourself", fn, "your function",
                        ratings, model)


@checker(solution="win_rate")
def check_win_rate(fn: Callable[..., Any]) -> str:
    """``fn(ratings, model)`` -> ``(rate, low, high)``: the win rate (a tie is half a win) and its Wilson interval."""
    ratings = win_rate_ratings()
    out = ask_win_rate(fn, list(ratings), "gan")
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        raise Wrong("return three numbers: (rate, low, high)")
    rate, low, high = (as_number(v, what) for v, what in zip(out, ("the rate", "low", "high"), strict=True))
    ref = human_eval.win_rates(ratings)["gan"]
    n, wins, ties = int(ref["n"]), ref["wins"], ref["ties"]
    if not math.isclose(rate, ref["rate"], abs_tol=1e-6):
        naive = sum(r.choice == "left" for r in ratings if "gan" in (r.model_a, r.model_b) and r.model_a == "gan")
        naive += sum(r.choice == "right" for r in ratings if "gan" in (r.model_a, r.model_b) and r.model_b == "gan")
        if math.isclose(rate, (naive + ties / 2) / n, abs_tol=1e-6) or math.isclose(rate, naive / n, abs_tol=1e-6):
            raise Wrong("the sides were drawn at random: 'left' means the item in shown_left won, which is item_a "
                        "only when shown_left == item_a")
        if math.isclose(rate, (wins - ties / 2) / (n - ties), abs_tol=1e-6):
            raise Wrong("ties are comparisons too: count them in n, and as half a win each")
        if math.isclose(rate, (wins - ties / 2) / n, abs_tol=1e-6):
            raise Wrong("a tie counts as half a win, not as a loss")
        if math.isclose(rate, wins / len(ratings), abs_tol=1e-6):
            raise Wrong("count only the comparisons that involve the model (the others tell nothing about it)")
        raise Wrong(f"the win rate should be {ref['rate']:.4f} ({wins:g} wins, ties as half, in {n} comparisons), "
                    f"got {rate:.4f}")
    if all(math.isclose(a, b, abs_tol=1e-4) for a, b in zip((low, high), _wald(wins, n), strict=True)):
        raise Wrong("that is the Wald interval p ± 1.96·se, which misbehaves for small n and near 0 or 1: use "
                    "the Wilson score interval (written out in section 4)")
    if not (math.isclose(low, ref["low"], abs_tol=1e-4) and math.isclose(high, ref["high"], abs_tol=1e-4)):
        raise Wrong(f"the rate is right; the 95% Wilson interval should be ({ref['low']:.4f}, {ref['high']:.4f}), "
                    f"got ({low:.4f}, {high:.4f})")
    for model in ("real", "vae"):
        other = ask_win_rate(fn, list(ratings), model)
        if not isinstance(other, (tuple, list)) or len(other) != 3:
            raise Wrong("return three numbers: (rate, low, high)")
        got, want = as_number(other[0], "the rate"), human_eval.win_rates(ratings)[model]["rate"]
        if not math.isclose(got, want, abs_tol=1e-6):
            raise Wrong(f"asked about {model!r}, the win rate should be {want:.4f}, got {got:.4f}: count the wins of "
                        "the model you are given, which may be model_a or model_b of a rating")
    sweep = [human_eval.Rating(rater="ex", task="pairwise", item_a=f"gan{i}", item_b=f"vae{i}", shown_left=f"vae{i}",
                               choice="right", model_a="gan", model_b="vae") for i in range(5)]
    out5 = ask_win_rate(fn, sweep, "gan")
    if not isinstance(out5, (tuple, list)) or len(out5) != 3:
        raise Wrong("return three numbers: (rate, low, high)")
    low5 = as_number(out5[1], "low")
    if not math.isclose(low5, human_eval.wilson_interval(5, 5)[0], abs_tol=1e-4):
        raise Wrong(f"5 wins of 5: the Wilson interval starts at {human_eval.wilson_interval(5, 5)[0]:.3f}, yours at "
                    f"{low5:.3f}")
    return (f"gan won {rate:.1%} of {n} comparisons (95% interval {low:.1%} to {high:.1%}); 5 of 5 still leaves "
            f"{low5:.0%} possible")
