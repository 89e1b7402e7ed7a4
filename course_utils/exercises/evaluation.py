"""The exercise checkers of notebook 06 (evaluating generative models)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from course_utils import evaluation, human_eval
from course_utils.exercises import Wrong, as_number, call, checker

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
    low, high = _pair_of_numbers(call(fn, "your function", values.clone(), 4000, torch.Generator().manual_seed(1)),
                                 "the interval")
    _, ref_low, ref_high = evaluation.bootstrap_interval(_mean, values, resamples=4000,
                                                         generator=torch.Generator().manual_seed(2))
    width, ref_width, mean = high - low, ref_high - ref_low, values.mean().item()
    if low > high:
        raise Wrong("low is above high: return (low, high), the 2.5% quantile first")
    if width < 0.05 * ref_width:
        raise Wrong("the interval has (almost) no width: every resample gave the same mean. Draw the resample "
                    "*with replacement*: idx = torch.randint(len(values), (len(values),), generator=generator)")
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
    again = _pair_of_numbers(call(fn, "your function", values.clone(), 4000, torch.Generator().manual_seed(1)),
                             "the interval")
    if again != (low, high):
        raise Wrong("the same generator seed gave another interval: draw every resample with the generator you are "
                    "given (torch.randint(..., generator=generator)), so that a result can be reproduced")
    more = _sample(1600, 3)
    l4, h4 = _pair_of_numbers(call(fn, "your function", more, 4000, torch.Generator().manual_seed(1)), "the interval")
    shrink = (h4 - l4) / width
    if not 0.35 < shrink < 0.7:
        raise Wrong("with 4 times the values the interval should be about half as wide;"
                    f" yours changed by x{shrink:.2f}."
                    " Each resample must have as many values as the sample: len(values)")
    other = _pair_of_numbers(call(fn, "your function", values.clone(), 4000, torch.Generator().manual_seed(7)),
                             "the interval")
    if other == (low, high):
        raise Wrong("another generator gave exactly the same interval, so nothing was resampled: a formula such as "
                    "mean ± 1.96·std/sqrt(n) is the normal approximation, not the bootstrap. Draw the resamples "
                    "with the generator you are given and take quantiles of their means")
    skewed = (_sample(50, 4) - 5) * 0.75  # standard normal, then exp: a strongly right-skewed sample
    skewed = skewed.exp()
    ls, hs = _pair_of_numbers(call(fn, "your function", skewed.clone(), 4000, torch.Generator().manual_seed(1)),
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
        p, r = _pair_of_numbers(call(fn, "your function", real.clone(), fake.clone(), k), "(precision, recall)")
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


# --- a paired bootstrap of two models (section 3.3) ------------------------------------------------------


def paired_scores(n: int, seed: int, skewed: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Two models' scores on the same ``n`` items (lower is better): a shared difficulty, a small difference.

    The items' difficulty varies much more than the difference between the models, as for two language models
    on the same chunks of text, so resampling the models independently gives a far wider interval than pairing.
    With ``skewed``, the per-item differences are strongly right-skewed (a few items much worse for model a).
    """
    g = torch.Generator().manual_seed(seed)
    if skewed:
        gap = 0.2 * (1.25 * torch.randn(n, generator=g, dtype=torch.float64)).exp() - 0.3  # a - b, item by item
    else:
        gap = 0.14 * torch.randn(n, generator=g, dtype=torch.float64) - 0.1
    difficulty = 0.5 * torch.randn(n, generator=g, dtype=torch.float64)
    b = 2.0 + difficulty + 0.1 * torch.randn(n, generator=g, dtype=torch.float64)
    return b + gap, b


def _quantiles(t: torch.Tensor) -> tuple[float, float]:
    return torch.quantile(t, 0.025).item(), torch.quantile(t, 0.975).item()


def _resampled_means(x: torch.Tensor, seed: int, resamples: int = 4000) -> torch.Tensor:
    picks = torch.randint(len(x), (resamples, len(x)), generator=torch.Generator().manual_seed(seed))
    return x[picks].mean(dim=1)


def _near(got: tuple[float, float], want: tuple[float, float], share: float = 0.1) -> bool:
    """Both ends within ``share`` of the wanted interval's width."""
    width = want[1] - want[0]
    return abs(got[0] - want[0]) <= share * width and abs(got[1] - want[1]) <= share * width


@checker(solution="paired_bootstrap")
def check_paired_bootstrap(fn: Callable[..., Any]) -> str:
    """``fn(scores_a, scores_b, resamples, generator)`` -> ``(low, high)``: the paired bootstrap of mean(a - b)."""
    a, b = paired_scores(256, 0)

    def ask(sa: torch.Tensor, sb: torch.Tensor, seed: int) -> tuple[float, float]:
        out = call(fn, "your function", sa.clone(), sb.clone(), 4000, torch.Generator().manual_seed(seed))
        return _pair_of_numbers(out, "the interval")

    low, high = ask(a, b, 1)
    diff = (a - b).mean().item()
    paired = _quantiles(_resampled_means(a - b, 2))
    unpaired = _quantiles(_resampled_means(a, 2) - _resampled_means(b, 3))
    if low > high:
        raise Wrong("low is above high: return (low, high), the 2.5% quantile first")
    if high - low < 0.05 * (paired[1] - paired[0]):
        raise Wrong("the interval has (almost) no width: every resample gave the same mean difference. Draw the "
                    "item indices *with replacement*: torch.randint(n, ..., generator=generator), not a permutation")
    if _near((-high, -low), paired):
        raise Wrong("the sign is flipped: the difference is scores_a - scores_b (model a minus model b)")
    if not _near((low, high), paired, 0.06):  # a 90% interval is 0.08 of the width off at each end
        spread = _quantiles(a - b)
        a_alone, b_alone = _quantiles(_resampled_means(a, 2)), _quantiles(_resampled_means(b, 3))
        if _near((low, high), unpaired):
            raise Wrong("that is the *unpaired* interval, about 5 times too wide here: you resampled the two models' "
                        "scores independently, so an item that is hard for both lands in one resample and not in "
                        "the other. Draw one set of item indices per resample and use it for both scores_a and "
                        "scores_b")
        if _near((low, high), spread):
            raise Wrong("those are quantiles of the per-item differences themselves, their spread, about sqrt(n) "
                        "times too wide: take the *mean* difference of each resample, then the 2.5% and 97.5% "
                        "quantiles of those means")
        if _near((low, high), (a_alone[0] - b_alone[1], a_alone[1] - b_alone[0])):
            raise Wrong("you combined each model's own interval (low of a minus high of b, ...): the interval of "
                        "a difference is not built from two intervals. Take the quantiles of the resampled mean "
                        "differences, each computed on the same items for both models")
        if not low < diff < high:
            raise Wrong(f"the interval ({low:.3f}, {high:.3f}) should contain the observed mean difference "
                        f"{diff:.3f}, the mean of scores_a - scores_b")
        raise Wrong(f"expected about ({paired[0]:.3f}, {paired[1]:.3f}), got ({low:.3f}, {high:.3f}): each resample "
                    "draws len(scores_a) item indices with replacement, takes the mean of scores_a - scores_b on "
                    "them; then the 2.5% and 97.5% quantiles of those means")
    if ask(a, b, 1) != (low, high):
        raise Wrong("the same generator seed gave another interval: draw every resample with the generator you are "
                    "given (torch.randint(..., generator=generator)), so that a result can be reproduced")
    if ask(a, b, 7) == (low, high):
        raise Wrong("another generator gave exactly the same interval, so nothing was resampled: a formula such as "
                    "mean ± 1.96·std/sqrt(n) of the differences is the normal approximation, not the bootstrap. "
                    "Draw the resamples with the generator you are given and take quantiles of their means")
    sa, sb = paired_scores(50, 4, skewed=True)
    got, want = ask(sa, sb, 1), _quantiles(_resampled_means(sa - sb, 2))
    if not _near(got, want, 0.06):  # the normal approximation is 0.16 of the width off at the low end
        raise Wrong(f"on strongly skewed differences the percentile interval is about ({want[0]:.3f}, {want[1]:.3f}),"
                    f" lopsided around the mean difference {(sa - sb).mean().item():.3f}; yours is ({got[0]:.3f}, "
                    f"{got[1]:.3f}). Take the 2.5% and 97.5% quantiles of the resampled mean differences themselves "
                    "(not a symmetric mean ± 1.96·se)")
    ratio = (unpaired[1] - unpaired[0]) / (high - low)
    return (f"({low:.3f}, {high:.3f}) around the mean difference {diff:.3f}; resampling the two models "
            f"independently would give ({unpaired[0]:.3f}, {unpaired[1]:.3f}), x{ratio:.1f} as wide")


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


@checker(solution="win_rate")
def check_win_rate(fn: Callable[..., Any]) -> str:
    """``fn(ratings, model)`` -> ``(rate, low, high)``: the win rate (a tie is half a win) and its Wilson interval."""
    ratings = win_rate_ratings()
    out = call(fn, "your function", list(ratings), "gan")
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
        other = call(fn, "your function", list(ratings), model)
        if not isinstance(other, (tuple, list)) or len(other) != 3:
            raise Wrong("return three numbers: (rate, low, high)")
        got, want = as_number(other[0], "the rate"), human_eval.win_rates(ratings)[model]["rate"]
        if not math.isclose(got, want, abs_tol=1e-6):
            raise Wrong(f"asked about {model!r}, the win rate should be {want:.4f}, got {got:.4f}: count the wins of "
                        "the model you are given, which may be model_a or model_b of a rating")
    sweep = [human_eval.Rating(rater="ex", task="pairwise", item_a=f"gan{i}", item_b=f"vae{i}", shown_left=f"vae{i}",
                               choice="right", model_a="gan", model_b="vae") for i in range(5)]
    out5 = call(fn, "your function", sweep, "gan")
    if not isinstance(out5, (tuple, list)) or len(out5) != 3:
        raise Wrong("return three numbers: (rate, low, high)")
    low5 = as_number(out5[1], "low")
    if not math.isclose(low5, human_eval.wilson_interval(5, 5)[0], abs_tol=1e-4):
        raise Wrong(f"5 wins of 5: the Wilson interval starts at {human_eval.wilson_interval(5, 5)[0]:.3f}, yours at "
                    f"{low5:.3f}")
    return (f"gan won {rate:.1%} of {n} comparisons (95% interval {low:.1%} to {high:.1%}); 5 of 5 still leaves "
            f"{low5:.0%} possible")
