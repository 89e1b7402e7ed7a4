"""The course's hand-written metrics and decoders against libraries that compute the same thing.

Where writing the code is the lesson (notebook 07: FID, KID, precision and recall, the bootstrap, the Wilson
interval, Bradley-Terry; notebook 05: beam search), the course keeps its own code, and each test here runs it
beside a library on the same input: torchmetrics (its FID and KID arithmetic on the course's features, not its
Inception network), prdc (the reference code of Naeem et al., 2020, whose precision and recall are those of
Kynkäänniemi et al., 2019), SciPy, choix and Hugging Face's ``generate``.
"""

from __future__ import annotations

import inspect
import random

import numpy as np
import pytest
import torch
from scipy.stats import bootstrap
from torch import nn

from course_utils import decoding, evaluation
from course_utils import human_eval as he

pytestmark = pytest.mark.usefixtures("one_thread")


def features(n: int, d: int, seed: int, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    """``[n, d]`` correlated float64 features: Gaussian noise through a random linear map (so covariances differ)."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=g, dtype=torch.float64) / d**0.5
    return scale * torch.randn(n, d, generator=g, dtype=torch.float64) @ mix + shift


class Identity(nn.Module):
    """A torchmetrics "feature extractor" that hands over the features it is given, so only the metric's maths runs."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features  # read by torchmetrics instead of running a dummy image through

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


# --- image metrics (notebook 07, section 2) -----------------------------------------------------------------


def test_frechet_distance_matches_torchmetrics():
    from torchmetrics.image.fid import FrechetInceptionDistance

    for real, fake in ((features(400, 16, 0), features(300, 16, 1, scale=0.8, shift=0.3)),
                       (features(500, 8, 2), features(500, 8, 2)[:250] + 0.01)):
        fid = FrechetInceptionDistance(feature=Identity(real.shape[1]))
        fid.update(real, real=True)
        fid.update(fake, real=False)
        ours = evaluation.frechet_distance(*evaluation.feature_stats(fake), *evaluation.feature_stats(real))
        # both in float64; torchmetrics takes the eigenvalues of S1 S2, the course those of S1^1/2 S2 S1^1/2
        # (the same in exact arithmetic): on well-conditioned 16-d covariances they agree to about 1e-12
        assert ours == pytest.approx(fid.compute().item(), rel=1e-8, abs=1e-10)


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save all extracted features")
def test_kid_matches_torchmetrics():
    from torchmetrics.image.kid import KernelInceptionDistance

    real, fake = features(300, 12, 3), features(300, 12, 4, scale=1.1, shift=0.2)
    # one subset of every feature: torchmetrics' random subset is then a permutation, which KID does not see
    kid = KernelInceptionDistance(feature=Identity(12), subsets=1, subset_size=300)
    kid.update(real, real=True)
    kid.update(fake, real=False)
    theirs = kid.compute()[0].item()
    # the same unbiased sums in float64, added in another order: rounding only
    assert evaluation.mmd2_unbiased(real, fake) == pytest.approx(theirs, rel=1e-9)
    assert evaluation.kid(real, fake, subsets=1, subset_size=300)[0] == pytest.approx(theirs, rel=1e-9)
    assert evaluation.kid_interval(real, fake, resamples=10)[0] == pytest.approx(theirs, rel=1e-9)


def test_precision_recall_match_prdc(capsys):
    from prdc import compute_prdc

    real, fake = features(400, 8, 5), features(300, 8, 6, scale=0.7, shift=0.5)
    theirs = compute_prdc(real.numpy(), fake.numpy(), nearest_k=3)
    ours = evaluation.precision_recall(real, fake, k=3)
    # Shares of 300 and 400 points: equal exactly. prdc counts a point strictly inside a ball, the course on its
    # surface too, and computes distances another way; with continuous random features no distance lies within
    # rounding (1e-12) of a radius, so the two counts cannot differ.
    assert ours == {"precision": theirs["precision"], "recall": theirs["recall"]}
    assert 0.1 < ours["recall"] < 0.9 and 0.1 < ours["precision"]  # neither share is trivially 0 or 1
    assert evaluation.manifold_membership(fake, real, k=3).double().mean().item() == ours["precision"]


# --- the bootstrap (notebook 07, sections 2.5 and 3.3) --------------------------------------------------------

# scipy.stats.bootstrap's seed argument: rng since SciPy 1.15, random_state before (the oldest SciPy claimed, 1.10)
SEED = "rng" if "rng" in inspect.signature(bootstrap).parameters else "random_state"
RESAMPLES = 10_000


def _close_to_scipy(ours: tuple[float, float, float], res) -> None:
    """A percentile interval matches SciPy's up to the Monte Carlo error of two independent sets of resamples.

    An endpoint of a 95% percentile interval from B resamples varies by about sqrt(0.025 * 0.975 / B) /
    phi(1.96) ~ 2.7 / sqrt(B) standard errors of the statistic: 0.027 at B = 10,000; the difference of two
    independent endpoints by 0.038. The bound, 0.15 standard errors, is four of those; a 90% interval instead
    of a 95% one would move each endpoint by 0.3, and an unpaired resampling of paired scores by far more.
    """
    se = res.standard_error
    low, high = res.confidence_interval
    assert ours[1] == pytest.approx(low, abs=0.15 * se) and ours[2] == pytest.approx(high, abs=0.15 * se)


def test_bootstrap_interval_matches_scipy():
    g = torch.Generator().manual_seed(7)
    skewed = torch.empty(200, dtype=torch.float64).exponential_(generator=g)  # a skewed sample: asymmetric interval
    ours = evaluation.bootstrap_interval(lambda s: s.mean(), skewed, resamples=RESAMPLES,
                                         generator=torch.Generator().manual_seed(0))
    res = bootstrap((skewed.numpy(),), np.mean, n_resamples=RESAMPLES, method="percentile", **{SEED: 1})
    _close_to_scipy(ours, res)
    # two samples, each resampled on its own (SciPy's paired=False)
    a, b = skewed[:120], 1.3 * torch.empty(80, dtype=torch.float64).exponential_(generator=g)
    ours = evaluation.bootstrap_interval(lambda x, y: x.mean() - y.mean(), a, b, resamples=RESAMPLES,
                                         generator=torch.Generator().manual_seed(0))
    res = bootstrap((a.numpy(), b.numpy()), lambda x, y: x.mean() - y.mean(), n_resamples=RESAMPLES,
                    method="percentile", vectorized=False, **{SEED: 2})
    _close_to_scipy(ours, res)


def test_paired_bootstrap_matches_scipy():
    """Two models' scores on the same items, stacked ``[n, 2]`` (notebook 07, section 3.3) = SciPy's ``paired=True``."""
    g = torch.Generator().manual_seed(8)
    difficulty = torch.empty(150, dtype=torch.float64).exponential_(generator=g) + 0.5
    a = difficulty * (1.05 + 0.05 * torch.randn(150, generator=g, dtype=torch.float64))
    b = difficulty * (1.00 + 0.05 * torch.randn(150, generator=g, dtype=torch.float64))
    ours = evaluation.bootstrap_interval(lambda s: s[:, 0].mean() / s[:, 1].mean(), torch.stack([a, b], 1),
                                         resamples=RESAMPLES, generator=torch.Generator().manual_seed(0))
    res = bootstrap((a.numpy(), b.numpy()), lambda x, y: x.mean() / y.mean(), paired=True, vectorized=False,
                    n_resamples=RESAMPLES, method="percentile", **{SEED: 3})
    _close_to_scipy(ours, res)
    assert ours[1] > 1.0  # paired, the 5% edge of model a is resolved; unpaired, difficulty would swamp it


# --- human evaluation (notebook 07, section 4) ----------------------------------------------------------------


def test_wilson_interval_matches_scipy():
    from scipy.stats import binomtest

    for n in (1, 2, 5, 16, 30, 100, 997):
        for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            for level in (0.8, 0.95, 0.99):
                theirs = binomtest(k, n).proportion_ci(level, method="wilson")
                # the same closed form in float64: rounding only
                assert he.wilson_interval(k, n, level) == pytest.approx((theirs.low, theirs.high), abs=1e-12)


def pair(a: str, b: str, choice: str, i: int) -> he.Rating:
    return he.Rating(rater="r", task="pairwise", item_a=f"{a}{i}", item_b=f"{b}{i}", shown_left=f"{a}{i}",
                     choice=choice, model_a=a, model_b=b)


def test_bradley_terry_matches_choix():
    import choix

    rng, strength = random.Random(0), {"a": 3.0, "b": 2.0, "c": 1.0, "d": 0.5}
    ratings = []
    for i in range(300):  # random pairings, 10% ties, the rest won with the Bradley-Terry odds
        m1, m2 = rng.sample(sorted(strength), 2)
        u = rng.random()
        choice = "tie" if u < 0.1 else "left" if u < 0.1 + 0.9 * strength[m1] / (strength[m1] + strength[m2]) \
            else "right"
        ratings.append(pair(m1, m2, choice, i))
    ours = he.bradley_terry(ratings)
    index = {m: k for k, m in enumerate(sorted(ours))}
    games = []  # choix has no ties: every comparison twice, a tie as one win each way (half a win each, as here)
    for r in ratings:
        a, b, winner = index[r.model_a], index[r.model_b], r.winner()
        games += [(a, b), (b, a)] if winner is None else [(a, b) if winner == r.model_a else (b, a)] * 2
    logs = choix.ilsr_pairwise(len(index), games, alpha=0.0)  # log-strengths centred on 0
    theirs = np.exp(logs) / np.exp(logs).sum()
    # both iterate to the maximum of the same likelihood (tolerances 1e-10 and 1e-8): agreement to about 1e-9
    assert [ours[m] for m in sorted(ours)] == pytest.approx(theirs.tolist(), rel=1e-6)
    assert ours["a"] > ours["b"] > ours["c"] > ours["d"]


def test_two_way_bootstrap_with_one_rater_is_scipys_bootstrap_of_the_items():
    """One rater: resampling raters changes nothing, so the two-way interval is the items' percentile bootstrap."""
    rng = random.Random(5)
    ratings = [pair("a", "b", "left" if rng.random() < 0.65 else "tie" if rng.random() < 0.2 else "right", i)
               for i in range(120)]
    ours = he.two_way_bootstrap(ratings, "a", resamples=RESAMPLES, seed=0)
    wins = np.array([1.0 if r.choice == "left" else 0.5 if r.choice == "tie" else 0.0 for r in ratings])
    res = bootstrap((wins,), np.mean, n_resamples=RESAMPLES, method="percentile", **{SEED: 4})
    _close_to_scipy((ours["rate"], ours["low"], ours["high"]), res)


def test_side_bias_is_scipys_binomial_test():
    from scipy.stats import binomtest

    rng = random.Random(6)
    ratings = [pair("a", "b", rng.choice(["left", "left", "right", "tie"]), i) for i in range(90)]
    ours = he.side_bias(ratings)
    theirs = binomtest(ours["left"], ours["n"], 0.5)
    ci = theirs.proportion_ci(0.95, method="wilson")
    assert ours["p_value"] == pytest.approx(theirs.pvalue, rel=1e-12)
    assert (ours["low"], ours["high"]) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_room_power_of_independent_ratings_is_the_binomial_probability():
    """No spread between items or raters: every rating is an independent coin, and the share of rooms whose
    Wilson interval excludes 50% is a sum of binomial probabilities, computed exactly with SciPy."""
    from scipy.stats import binom

    n, p, rooms = 60, 0.65, 2000
    exact = sum(binom.pmf(k, n, p) for k in range(n + 1)
                if not he.wilson_interval(k, n)[0] <= 0.5 <= he.wilson_interval(k, n)[1])
    ours = he.room_power(p, 3, 20, rooms=rooms, item_sd=0.0, rater_sd=0.0, seed=0, method="wilson")
    assert ours == pytest.approx(exact, abs=3.5 * (exact * (1 - exact) / rooms) ** 0.5)


# --- beam search (notebook 05, section 4) ---------------------------------------------------------------------


class Logits(nn.Module):
    """A Hugging Face causal LM as the course's decoders call one: ``ids [B, T]`` -> logits, ``config.block_size``."""

    def __init__(self, hf_model: nn.Module) -> None:
        super().__init__()
        self.hf = hf_model
        self.config = type("Config", (), {"block_size": hf_model.config.n_positions})()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.hf(input_ids=ids).logits


def test_beam_search_matches_transformers_generate():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    # N(0, 0.3) weights instead of GPT-2's 0.02: peaked next-token distributions, so candidates' scores differ by
    # far more than float32 rounding and both searches must pick the same ones. No end token: every hypothesis
    # runs the full length, and length_penalty=0 ranks them by their summed log-probability, as the course does.
    config = GPT2Config(vocab_size=50, n_positions=64, n_embd=32, n_layer=2, n_head=2, initializer_range=0.3,
                        bos_token_id=None, eos_token_id=None, pad_token_id=None)
    hf_model = GPT2LMHeadModel(config).eval()
    model = Logits(hf_model).eval()  # eval on the wrapper too: the decoders restore *its* mode, and so its child's
    differs_from_greedy = 0
    for seed in range(6):
        prompt = torch.randint(50, (5,), generator=torch.Generator().manual_seed(seed))
        greedy = decoding.greedy(model, prompt, 10)
        for beams in (1, 2, 3, 5):
            theirs = hf_model.generate(prompt[None], attention_mask=torch.ones(1, 5, dtype=torch.long),
                                       do_sample=False, num_beams=beams, max_new_tokens=10, min_new_tokens=10,
                                       length_penalty=0.0, early_stopping=False, pad_token_id=0)[0]
            ours = decoding.beam_search(model, prompt, 10, num_beams=beams)
            assert torch.equal(ours, theirs), (seed, beams)
            differs_from_greedy += not torch.equal(ours, greedy)
    assert differs_from_greedy >= 3  # the beams do change the answer here: a greedy beam search would fail above
