"""course_utils.exercises.evaluation: notebook 07's checkers say right to a right answer, and hint at each wrong one."""

from __future__ import annotations

import math

import pytest
import torch

from course_utils import evaluation, human_eval
from course_utils.exercises import evaluation as ex
from course_utils.solutions import evaluation as solutions
from tests.checks import assert_not_done, assert_right, assert_wrong

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: one thread is fastest (conftest.py)


@pytest.fixture(autouse=True)
def lenient(monkeypatch):
    monkeypatch.delenv("COURSE_EXPECT_STUBS", raising=False)  # answers must come back as verdicts here


# --- the bootstrap interval ---------------------------------------------------------------------------------


def bootstrap(values, resamples=2000, generator=None, level=0.95, size=None, replace=True):
    n = len(values)
    if replace:
        idx = torch.randint(n, (resamples, size or n), generator=generator)
    else:
        idx = torch.stack([torch.randperm(n, generator=generator) for _ in range(resamples)])
    means = values[idx].mean(dim=1)
    a = (1 - level) / 2
    return torch.quantile(means, a).item(), torch.quantile(means, 1 - a).item()


def test_bootstrap_interval_right():
    assert_right(ex.check_bootstrap_interval(solutions.bootstrap_mean_interval))
    assert_right(ex.check_bootstrap_interval(bootstrap))


def test_bootstrap_interval_hints():
    assert_wrong(ex.check_bootstrap_interval(lambda v, r, g: bootstrap(v, r, g)[::-1]), "low is above high")
    assert_wrong(ex.check_bootstrap_interval(lambda v, r, g: bootstrap(v, r, g, replace=False)), "with replacement")
    spread = lambda v, r, g: (torch.quantile(v, 0.025).item(), torch.quantile(v, 0.975).item())
    assert_wrong(ex.check_bootstrap_interval(spread), "spread of the values")
    assert_wrong(ex.check_bootstrap_interval(lambda v, r, g: bootstrap(v, r, g, level=0.9)), "90% interval")
    assert_wrong(ex.check_bootstrap_interval(lambda v, r, g: bootstrap(v, r, None)), "same generator seed")
    assert_wrong(ex.check_bootstrap_interval(lambda v, r, g: bootstrap(v, r, g, size=400)), "half as wide")
    assert_wrong(ex.check_bootstrap_interval(lambda v, r, g: 1.0), "tuple of two numbers")

    def normal(v, r, g):
        half = 1.96 * v.std().item() / math.sqrt(len(v))
        return v.mean().item() - half, v.mean().item() + half

    assert_wrong(ex.check_bootstrap_interval(normal), "normal approximation")

    def normal_with_noise(v, r, g):  # uses the generator, but is still symmetric about the mean
        low, high = normal(v, r, g)
        jitter = torch.rand(1, generator=g, dtype=torch.float64).item() * 1e-9
        return low + jitter, high + jitter

    assert_wrong(ex.check_bootstrap_interval(normal_with_noise), "strongly skewed")

    def stub(v, r, g):
        raise NotImplementedError

    assert_not_done(ex.check_bootstrap_interval(stub))


# --- precision and recall -----------------------------------------------------------------------------------


def precision_recall(real, fake, k=3, rank=None):
    rank = rank or k + 1

    def radii(x):
        return torch.cdist(x, x).kthvalue(rank, dim=1).values

    def inside(queries, support):
        return (torch.cdist(queries, support) <= radii(support)[None, :]).any(dim=1).float().mean().item()

    return inside(fake, real), inside(real, fake)


def test_precision_recall_right():
    assert_right(ex.check_precision_recall(solutions.precision_recall_knn))
    assert_right(ex.check_precision_recall(precision_recall))


def test_the_toy_cases_have_the_known_shape():
    from course_utils import evaluation

    pr = {name: evaluation.precision_recall(real, fake) for name, (real, fake) in ex.toy_manifold_cases().items()}
    good, collapsed, off = pr.values()
    assert good["precision"] > 0.9 and good["recall"] > 0.9
    assert collapsed["precision"] > 0.9 and collapsed["recall"] < 0.35  # a quarter of the circle
    assert off["precision"] < 0.05 and off["recall"] < 0.05


def test_precision_recall_hints():
    assert_wrong(ex.check_precision_recall(lambda r, f, k: precision_recall(r, f, k)[::-1]), "swapped")
    assert_wrong(ex.check_precision_recall(lambda r, f, k: precision_recall(r, f, k, rank=k)), "kthvalue(k + 1)")

    def own_radii(real, fake, k):
        rad = lambda x: torch.cdist(x, x).kthvalue(k + 1, dim=1).values
        return ((torch.cdist(fake, real) <= rad(fake)[:, None]).any(1).float().mean().item(),
                (torch.cdist(real, fake) <= rad(real)[:, None]).any(1).float().mean().item())

    assert_wrong(ex.check_precision_recall(own_radii), "the balls belong to the set being covered")
    assert_wrong(ex.check_precision_recall(lambda r, f, k: (0.5, 0.5)), "expected precision")


# --- the paired bootstrap of a ratio ------------------------------------------------------------------------


def ratio_interval(a, b, resamples, generator, level=0.95, replace=True, independent=False, statistic="ratio"):
    n = len(a)
    if replace:
        items = torch.randint(n, (resamples, n), generator=generator)
    else:
        items = torch.stack([torch.randperm(n, generator=generator) for _ in range(resamples)])
    other = torch.randint(n, (resamples, n), generator=generator) if independent else items
    ra, rb = a[items], b[other]
    values = {"ratio": ra.mean(dim=1) / rb.mean(dim=1), "per-item": (ra / rb).mean(dim=1),
              "difference": (ra - rb).mean(dim=1)}[statistic]
    q = (1 - level) / 2
    return torch.quantile(values, q).item(), torch.quantile(values, 1 - q).item()


def test_paired_ratio_right():
    assert_right(ex.check_paired_ratio(solutions.paired_ratio_interval))
    assert_right(ex.check_paired_ratio(ratio_interval))

    def one_resample_at_a_time(a, b, resamples, generator):  # a loop draws the same indices as one big draw
        ratios = []
        for _ in range(resamples):
            i = torch.randint(len(a), (len(a),), generator=generator)
            ratios.append(a[i].sum() / b[i].sum())
        ratios = torch.stack(ratios)
        return torch.quantile(ratios, 0.025).item(), torch.quantile(ratios, 0.975).item()

    assert_right(ex.check_paired_ratio(one_resample_at_a_time))

    def with_the_package(a, b, resamples, generator):  # the package resamples the rows of [n, 2] in pairs
        _, low, high = evaluation.bootstrap_interval(lambda s: (s[:, 0].mean() / s[:, 1].mean()).item(),
                                                     torch.stack([a, b], dim=1), resamples=resamples,
                                                     generator=generator)
        return low, high

    a, b = ex.ratio_scores(256, 0)  # the package's stacked call gives the reference interval, and is refused
    want = one_resample_at_a_time(a, b, 300, torch.Generator().manual_seed(5))
    assert with_the_package(a, b, 300, torch.Generator().manual_seed(5)) == pytest.approx(want, rel=1e-6)
    assert_wrong(ex.check_paired_ratio(with_the_package), "evaluation.bootstrap_interval")


def test_the_ratio_data_make_pairing_and_the_statistic_matter():
    a, b = ex.ratio_scores(256, 0)
    assert (a > 0).all() and (b > 0).all() and torch.corrcoef(torch.stack([a, b]))[0, 1] > 0.9
    g = torch.Generator().manual_seed(0)
    low, high = ratio_interval(a, b, 2000, g)
    u_low, u_high = ratio_interval(a, b, 2000, g, independent=True)
    p_low, p_high = ratio_interval(a, b, 2000, g, statistic="per-item")
    assert high < 1 and u_high - u_low > 4 * (high - low)  # model a is better; pairing matters
    assert p_low > high  # the mean of the per-item ratios is another quantity, outside the interval


def test_paired_ratio_hints():
    check = ex.check_paired_ratio
    assert_wrong(check(lambda a, b, r, g: ratio_interval(a, b, r, g)[::-1]), "low is above high")
    assert_wrong(check(lambda a, b, r, g: ratio_interval(a, b, r, g, replace=False)), "with replacement")
    assert_wrong(check(lambda a, b, r, g: ratio_interval(a, b, r, g, independent=True)), "unpaired")
    assert_wrong(check(lambda a, b, r, g: ratio_interval(a, b, r, g, statistic="per-item")), "per-item ratios")
    assert_wrong(check(lambda a, b, r, g: ratio_interval(b, a, r, g)), "upside down")
    assert_wrong(check(lambda a, b, r, g: ratio_interval(a, b, r, g, statistic="difference")), "mean *difference*")
    assert_wrong(check(lambda a, b, r, g: bootstrap(a - b, r, g)), "mean *difference*")  # Exercise 2 on a - b
    assert_wrong(check(lambda a, b, r, g: ratio_interval(a, b, r, g, level=0.9)), "90% interval")
    assert_wrong(check(lambda a, b, r, g: ratio_interval(a, b, r, g, level=0.99)), "99% interval")
    assert_wrong(check(lambda a, b, r, g: ratio_interval(a, b, r, None)), "same generator seed")
    assert_wrong(check(lambda a, b, r, g: bootstrap(a, r, g)), "should contain the observed ratio")

    def shifted(a, b, r, g):  # the right width, in the wrong place
        low, high = ratio_interval(a, b, r, g)
        return low + 0.3 * (high - low), high + 0.3 * (high - low)

    assert_wrong(check(shifted), "expected about")

    def normal(a, b, r, g):  # ratio ± 1.96 standard errors of the resampled ratios: uses no generator
        ratio = (a.mean() / b.mean()).item()
        torch.manual_seed(0)
        i = torch.randint(len(a), (r, len(a)))
        half = 1.96 * (a[i].mean(1) / b[i].mean(1)).std().item()
        return ratio - half, ratio + half

    assert_wrong(check(normal), "nothing was resampled")

    def normal_with_the_generator(a, b, r, g):  # the same, drawn with the generator: still symmetric
        ratio = (a.mean() / b.mean()).item()
        i = torch.randint(len(a), (r, len(a)), generator=g)
        half = 1.96 * (a[i].mean(1) / b[i].mean(1)).std().item()
        return ratio - half, ratio + half

    assert_wrong(check(normal_with_the_generator), "strongly skewed", "normal approximation")
    assert_wrong(check(lambda a, b, r, g: 0.9), "tuple of two numbers")
    assert_wrong(check(lambda a, b, r, g: 1 / 0), "raised ZeroDivisionError")

    def stub(scores_a, scores_b, resamples, generator):
        raise NotImplementedError

    assert_not_done(check(stub))
    assert_not_done(check(...))


# --- the win rate -------------------------------------------------------------------------------------------


def wilson(s, n, z=1.959964):
    p = s / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def win_rate(ratings, model, tie_value=0.5, count_ties=True, sides=True, interval=wilson):
    n = wins = 0
    for r in ratings:
        if r.task != "pairwise" or model not in (r.model_a, r.model_b):
            continue
        if r.choice == "tie":
            if count_ties:
                n, wins = n + 1, wins + tie_value
            continue
        n += 1
        left_is_a = r.shown_left == r.item_a if sides else True
        left_model, right_model = (r.model_a, r.model_b) if left_is_a else (r.model_b, r.model_a)
        wins += (left_model if r.choice == "left" else right_model) == model
    return (wins / n, *interval(wins, n))


def wald(s, n):
    p = s / n
    half = 1.959964 * math.sqrt(p * (1 - p) / n)
    return p - half, p + half


def test_win_rate_right():
    assert_right(ex.check_win_rate(solutions.win_rate))
    assert_right(ex.check_win_rate(win_rate))
    rates = human_eval.win_rates(ex.win_rate_ratings())
    assert rates["gan"]["n"] == 42 and rates["gan"]["ties"] == 4 and rates["gan"]["wins"] == 18 + 2 + 5
    assert {r.model_a for r in ex.win_rate_ratings()} == {"gan", "real"}  # gan is model_b against real data


def test_win_rate_hints():
    assert_wrong(ex.check_win_rate(lambda r, m: win_rate(r, m, sides=False)), "sides were drawn at random")
    assert_wrong(ex.check_win_rate(lambda r, m: win_rate(r, m, count_ties=False)), "ties are comparisons too")
    assert_wrong(ex.check_win_rate(lambda r, m: win_rate(r, m, tie_value=0)), "half a win, not as a loss")
    assert_wrong(ex.check_win_rate(lambda r, m: win_rate(r, m, interval=wald)), "Wald interval")
    assert_wrong(ex.check_win_rate(lambda r, m: win_rate(r, m, interval=lambda s, n: wilson(s, n, 1.645))),
                 "95% Wilson interval")
    assert_wrong(ex.check_win_rate(lambda r, m: (0.5, 0.4)), "three numbers")

    def model_a_wins(ratings, model):  # counts model_a's wins in every comparison, whatever model is asked
        n = wins = 0
        for r in ratings:
            if r.task != "pairwise" or model not in (r.model_a, r.model_b):
                continue
            n += 1
            wins += 0.5 if r.choice == "tie" else r.winner() == r.model_a
        return (wins / n, *wilson(wins, n))

    assert_wrong(ex.check_win_rate(model_a_wins))
    assert_not_done(ex.check_win_rate(...))


# --- the package's one-liners are refused -------------------------------------------------------------------


def test_checkers_refuse_the_package_one_liners():
    """Each one-liner gives the right answer outside the checker; the checker refuses it, and restores the package."""
    originals = [evaluation.precision_recall, evaluation.manifold_membership, evaluation.knn_radii,
                 evaluation.bootstrap_interval, human_eval.win_rates, human_eval.wilson_interval]
    winner = human_eval.Rating.winner
    by_pr = lambda real, fake, k: tuple(evaluation.precision_recall(real, fake, k).values())  # noqa: E731
    by_membership = lambda real, fake, k: tuple(  # noqa: E731
        evaluation.manifold_membership(q, s, k).double().mean().item() for q, s in ((fake, real), (real, fake)))
    real, fake = ex.toy_manifold_cases()["collapsed (a quarter of it)"]
    assert by_pr(real, fake, 3) == by_membership(real, fake, 3) == solutions.precision_recall_knn(real, fake, 3)
    assert_wrong(ex.check_precision_recall(by_pr), "write it with torch yourself", "evaluation.precision_recall")
    assert_wrong(ex.check_precision_recall(by_membership), "evaluation.manifold_membership")
    assert_wrong(ex.check_precision_recall(evaluation.precision_recall), "is evaluation.precision_recall itself")

    def mean_of(x):
        return x.mean().item()

    by_bootstrap = lambda v, r, g: evaluation.bootstrap_interval(mean_of, v, resamples=r, generator=g)[1:]  # noqa: E731
    assert_wrong(ex.check_bootstrap_interval(by_bootstrap), "write the resampling yourself",
                 "evaluation.bootstrap_interval")

    def by_stacking(a, b, resamples, generator):  # the stacked [n, 2] call: one draw of rows for both models
        return evaluation.bootstrap_interval(lambda s: (s[:, 0].mean() / s[:, 1].mean()).item(),
                                             torch.stack([a, b], dim=1), resamples=resamples, generator=generator)[1:]

    a, b = ex.ratio_scores(256, 0)
    want = solutions.paired_ratio_interval(a, b, 500, torch.Generator().manual_seed(3))
    assert by_stacking(a, b, 500, torch.Generator().manual_seed(3)) == pytest.approx(want, rel=1e-9)
    assert_wrong(ex.check_paired_ratio(by_stacking), "write the resampling yourself", "evaluation.bootstrap_interval")

    def hidden(a, b, resamples, generator):  # catches the refusal, then answers anyway
        try:
            return by_stacking(a, b, resamples, generator)
        except Exception:
            return solutions.paired_ratio_interval(a, b, resamples, generator)

    assert_wrong(ex.check_paired_ratio(hidden), "calls evaluation.bootstrap_interval")

    by_win_rates = lambda r, m: tuple(human_eval.win_rates(r)[m][k] for k in ("rate", "low", "high"))  # noqa: E731
    ratings = ex.win_rate_ratings()
    assert by_win_rates(ratings, "gan") == pytest.approx(solutions.win_rate(ratings, "gan"), abs=1e-6)
    assert_wrong(ex.check_win_rate(by_win_rates), "count the wins and write the interval yourself",
                 "human_eval.win_rates")

    def by_wilson(r, m):  # counts the wins by hand, but asks the package for the interval
        rate = solutions.win_rate(r, m)[0]
        n = sum(m in (x.model_a, x.model_b) for x in r)
        return (rate, *human_eval.wilson_interval(rate * n, n))

    assert by_wilson(ratings, "gan") == pytest.approx(solutions.win_rate(ratings, "gan"), abs=1e-6)
    assert_wrong(ex.check_win_rate(by_wilson), "human_eval.wilson_interval")

    def by_winner(r, m):  # lets Rating.winner read the sides, the one trap of the exercise
        wins = sum(0.5 if x.winner() is None else x.winner() == m for x in r if m in (x.model_a, x.model_b))
        n = sum(m in (x.model_a, x.model_b) for x in r)
        return (wins / n, *wilson(wins, n))

    assert by_winner(ratings, "gan") == pytest.approx(solutions.win_rate(ratings, "gan"), abs=1e-6)
    assert_wrong(ex.check_win_rate(by_winner), "count the wins and write the interval yourself", "Rating.winner")
    assert human_eval.Rating.winner is winner  # restored after the check
    assert [evaluation.precision_recall, evaluation.manifold_membership, evaluation.knn_radii,
            evaluation.bootstrap_interval, human_eval.win_rates, human_eval.wilson_interval] == originals
    assert human_eval.win_rates(ratings)["gan"]["n"] == 42  # the restored functions still work
