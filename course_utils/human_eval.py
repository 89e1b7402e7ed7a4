"""Human evaluation: recording ratings safely, and what a room's ratings can and cannot tell (notebook 07).

- :class:`RatingsLog`: one CSV file of ratings under ``data/ratings/``. Every row
  is written whole, under a file lock, with one ``write`` call: a crash never
  leaves half a row (a torn last line is cut off by the next writer and ignored
  by readers), and two kernels appending at once lose nothing.
- :func:`load_ratings` merges the files of a room.
- :func:`wilson_interval`, :func:`win_rates`, :func:`bradley_terry`: who wins a
  blind pairwise comparison, with intervals; :func:`quiz_accuracy` for the
  real-or-generated quiz against chance; :func:`agreement` between raters
  (scikit-learn's Cohen's kappa for two, :func:`fleiss_kappa` for more).
- :func:`two_way_bootstrap` and :func:`bradley_terry_intervals`: intervals that resample raters **and** items
  (a room's ratings of shared items are not independent); :func:`side_bias` (left against right);
  :func:`room_power`: how many raters and items a room needs, by simulation (simulated raters, not people);
  :func:`report` prints a room's whole analysis.

The Wilson interval and Bradley-Terry are taught in notebook 07 (section 4.3, exercise 4; section 4.4), so they
are written out here; ``tests/test_against_libraries.py`` checks them against SciPy and choix. Cohen's kappa is
only named there, so scikit-learn's ``cohen_kappa_score`` computes it.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import math
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
from filelock import FileLock

from course_utils.data import data_dir

FIELDS = ("rater", "time", "task", "item_a", "item_b", "shown_left", "choice", "model_a", "model_b")
CHOICES = {"pairwise": ("left", "right", "tie"), "quiz": ("real", "generated")}


def ratings_dir() -> Path:
    """``COURSE_RATINGS_DIR`` if set, else ``data/ratings/`` in the data cache (git-ignored)."""
    env = os.environ.get("COURSE_RATINGS_DIR", "").strip()
    return Path(env).expanduser().resolve() if env else data_dir() / "ratings"


@dataclass(frozen=True)
class Rating:
    """One judgement.

    - ``task="pairwise"``: items ``item_a`` and ``item_b`` (from models
      ``model_a`` and ``model_b``), ``shown_left`` names the item drawn on the
      left, and ``choice`` is ``left``, ``right`` or ``tie``;
    - ``task="quiz"``: one item ``item_a`` (``model_a`` is ``real`` or the
      model's name), ``choice`` is the rater's guess, ``real`` or ``generated``.
    """

    rater: str
    task: str
    item_a: str
    choice: str
    model_a: str
    item_b: str = ""
    model_b: str = ""
    shown_left: str = ""
    time: str = ""

    def __post_init__(self) -> None:
        if self.task not in CHOICES:
            raise ValueError(f"task must be one of {sorted(CHOICES)}, got {self.task!r}")
        if self.choice not in CHOICES[self.task]:
            raise ValueError(f"a {self.task} choice must be one of {CHOICES[self.task]}, got {self.choice!r}")
        if not self.rater or any(c in self.rater for c in ",\n\r"):
            raise ValueError(f"rater must be a non-empty name without commas or newlines, got {self.rater!r}")
        if self.task == "pairwise" and self.shown_left not in (self.item_a, self.item_b):
            raise ValueError("shown_left must be item_a or item_b")

    def winner(self) -> str | None:
        """The winning model of a pairwise rating, or None for a tie."""
        if self.choice == "tie":
            return None
        left_is_a = self.shown_left == self.item_a
        return self.model_a if (self.choice == "left") == left_is_a else self.model_b


class RatingsLog:
    """Append-only CSV of :class:`Rating` rows; safe against crashes and concurrent writers."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def append(self, rating: Rating) -> None:
        """Write one whole row: lock, cut a torn last line, write, flush to disk, unlock.

        The lock is ``filelock``'s (a ``.lock`` file beside the CSV), which works on
        Linux, macOS and Windows, between processes and between machines sharing a disk.
        """
        stamped = rating if rating.time else _with_time(rating)
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow([getattr(stamped, f) for f in FIELDS])
        line = buf.getvalue().encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{self.path}.lock"), open(self.path, "a+b") as fh:  # appends always go to the end
            size = fh.seek(0, os.SEEK_END)
            if size == 0:
                line = (",".join(FIELDS) + "\n").encode() + line
            else:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":  # a writer crashed mid-row: drop its torn line
                    fh.seek(0)
                    fh.truncate(fh.read().rfind(b"\n") + 1)
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def read(self) -> list[Rating]:
        """Every complete row (a torn last line, without its newline, is ignored)."""
        if not self.path.exists():
            return []
        text = self.path.read_text(encoding="utf-8")
        if not text.endswith("\n"):
            text = text[: text.rfind("\n") + 1]
        rows = list(csv.DictReader(io.StringIO(text)))
        return [Rating(**{k: row[k] for k in FIELDS}) for row in rows]


def _with_time(rating: Rating) -> Rating:
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return Rating(**{**{f: getattr(rating, f) for f in FIELDS}, "time": now})


def load_ratings(folder: str | Path | None = None) -> list[Rating]:
    """Every rating in every ``*.csv`` of ``folder`` (default: ``data/ratings/``): a room's files, merged."""
    folder = Path(folder) if folder is not None else ratings_dir()
    return [r for path in sorted(folder.glob("*.csv")) for r in RatingsLog(path).read()]


# --- analysis ------------------------------------------------------------------------------------------


def wilson_interval(successes: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval for a proportion (good at small ``n`` and near 0 or 1, unlike p ± 1.96 se).

    Notebook 07 (section 4.3) teaches the formula. ``successes`` may be fractional (a tie is half a win);
    for whole counts it equals SciPy's ``binomtest(k, n).proportion_ci(level, method="wilson")``.
    """
    if n <= 0:
        raise ValueError("an interval needs at least one observation")
    z = NormalDist().inv_cdf(1 - (1 - level) / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exactly 0 and 1 at the ends, not 1e-17 off
    return low, 1.0 if successes == n else min(1.0, centre + half)


def win_rates(ratings: Iterable[Rating], level: float = 0.95) -> dict[str, dict[str, float]]:
    """Per model: comparisons, wins, ties, win rate (a tie counts half) and its Wilson interval."""
    stats: dict[str, dict[str, float]] = defaultdict(lambda: {"n": 0, "wins": 0.0, "ties": 0})
    for r in ratings:
        if r.task != "pairwise":
            continue
        winner = r.winner()
        for model in (r.model_a, r.model_b):
            s = stats[model]
            s["n"] += 1
            if winner is None:
                s["ties"] += 1
                s["wins"] += 0.5
            elif winner == model:
                s["wins"] += 1
    for s in stats.values():
        s["rate"] = s["wins"] / s["n"]
        s["low"], s["high"] = wilson_interval(s["wins"], int(s["n"]), level)
    return dict(stats)


def bradley_terry(ratings: Iterable[Rating], iterations: int = 500, tol: float = 1e-10) -> dict[str, float]:
    """Bradley-Terry strengths (summing to 1) by the MM algorithm of Hunter (2004); a tie counts half a win each.

    ``P(i beats j) = s_i / (s_i + s_j)``. Needs every model to win and lose at
    least once (half a win from a tie counts), or its strength runs to 0 or 1.
    The same maximum-likelihood fit as choix's ``ilsr_pairwise`` or ``opt_pairwise`` (which return log-strengths
    centred on 0, and count a tie only if it is entered as one win each way).
    """
    wins: dict[str, float] = defaultdict(float)
    games: dict[tuple[str, str], float] = defaultdict(float)
    for r in ratings:
        if r.task != "pairwise" or r.model_a == r.model_b:
            continue
        pair = tuple(sorted((r.model_a, r.model_b)))
        games[pair] += 1
        winner = r.winner()
        if winner is None:
            wins[r.model_a] += 0.5
            wins[r.model_b] += 0.5
        else:
            wins[winner] += 1
    models = sorted({m for pair in games for m in pair})
    if len(models) < 2:
        raise ValueError("Bradley-Terry needs pairwise ratings of at least two models")
    strength = dict.fromkeys(models, 1.0 / len(models))
    for _ in range(iterations):
        new = {}
        for m in models:
            denom = sum(n / (strength[m] + strength[o]) for pair, n in games.items() if m in pair
                        for o in pair if o != m)
            new[m] = wins[m] / denom if denom else 0.0
        total = sum(new.values())
        new = {m: v / total for m, v in new.items()}
        if max(abs(new[m] - strength[m]) for m in models) < tol:
            strength = new
            break
        strength = new
    return strength


def quiz_accuracy(ratings: Iterable[Rating], level: float = 0.95) -> dict[str, float]:
    """The real-or-generated quiz: how often a rater was right, its interval, and the p-value against guessing."""
    from scipy.stats import binomtest  # lazy: scipy.stats takes about a second to import, and only the quiz needs it

    answers = [r for r in ratings if r.task == "quiz"]
    if not answers:
        raise ValueError("no quiz answers yet")
    right = sum((r.choice == "real") == (r.model_a == "real") for r in answers)
    low, high = wilson_interval(right, len(answers), level)
    p_value = binomtest(right, len(answers), 0.5).pvalue
    return {"n": len(answers), "right": right, "accuracy": right / len(answers), "low": low, "high": high,
            "p_value": p_value}


def fleiss_kappa(counts: Sequence[Mapping[str, int]]) -> float:
    """Agreement of many raters: ``counts[i][label]`` is how many raters gave item ``i`` that label.

    Every item must have the same number of raters (at least 2). Notebook 07 only names it; it is written out
    because none of the course's libraries has it (statsmodels' ``inter_rater.fleiss_kappa`` does).
    """
    if not counts:
        raise ValueError("no items")
    totals = {sum(c.values()) for c in counts}
    if len(totals) != 1 or min(totals) < 2:
        raise ValueError(f"every item needs the same number of raters, at least 2; got {sorted(totals)}")
    raters, items = totals.pop(), len(counts)
    labels = sorted({k for c in counts for k in c})
    p_label = {k: sum(c.get(k, 0) for c in counts) / (items * raters) for k in labels}
    agreement = [(sum(v * v for v in c.values()) - raters) / (raters * (raters - 1)) for c in counts]
    p_bar, p_e = sum(agreement) / items, sum(p * p for p in p_label.values())
    return 1.0 if p_e == 1 else (p_bar - p_e) / (1 - p_e)


def rater_labels(ratings: Iterable[Rating], task: str = "pairwise") -> dict[str, dict[str, str]]:
    """``{rater: {item: label}}``: what each rater said about each item, comparable across raters.

    Sides are drawn at random for every rater, so a pairwise label is the
    winner's position in the pair, keyed by the two item ids in sorted order:
    ``first`` or ``second`` (of the sorted ids) or ``tie``. (Labelling by the
    winning model's name would pool pair types that can each produce only their
    own two models, which lowers chance agreement and inflates kappa.)
    a quiz label is the guess (``real``/``generated``), keyed by the item id. A
    rater who rated an item twice counts with the last rating.
    """
    if task not in CHOICES:
        raise ValueError(f"task must be one of {sorted(CHOICES)}, got {task!r}")
    labels: dict[str, dict[str, str]] = defaultdict(dict)
    for r in ratings:
        if r.task != task:
            continue
        if task == "quiz":
            labels[r.rater][r.item_a] = r.choice
        else:
            first, second = sorted((r.item_a, r.item_b))
            if r.choice == "tie":
                label = "tie"
            else:
                won = r.item_a if (r.choice == "left") == (r.shown_left == r.item_a) else r.item_b
                label = "first" if won == first else "second"
            labels[r.rater][f"{first}|{second}"] = label
    return dict(labels)


def agreement(ratings: Iterable[Rating], task: str = "pairwise") -> dict[str, float | int | str]:
    """Agreement between the raters of a merged room, on the items every one of them rated.

    Two raters: Cohen's kappa (scikit-learn's ``cohen_kappa_score``); three or more: Fleiss' kappa. Returns
    ``raters``, ``items`` (rated by all), ``kappa`` and ``method``. Raises
    ``ValueError`` with fewer than two raters or no item that all of them rated. When every rating of the
    common items is one and the same label, chance agreement is total and kappa undefined: it is given as 1.
    """
    labels = rater_labels(ratings, task)
    if len(labels) < 2:
        raise ValueError(f"agreement needs at least two raters; the {task} ratings have {len(labels)}")
    raters = sorted(labels)
    common = sorted(set.intersection(*(set(labels[r]) for r in raters)))
    if not common:
        raise ValueError(f"no {task} item was rated by all {len(raters)} raters: give everyone the same items")
    if len(raters) == 2:
        from sklearn.metrics import cohen_kappa_score  # lazy: scikit-learn takes about a second to import

        a, b = ([labels[r][item] for item in common] for r in raters)
        kappa = 1.0 if len(set(a) | set(b)) == 1 else float(cohen_kappa_score(a, b))
        return {"raters": 2, "items": len(common), "kappa": kappa, "method": "Cohen"}
    counts = [{k: sum(labels[r][item] == k for r in raters) for k in {labels[r][item] for r in raters}}
              for item in common]
    return {"raters": len(raters), "items": len(common), "kappa": fleiss_kappa(counts), "method": "Fleiss"}


# --- intervals that count raters and items (notebook 07, section 4.4) ---------------------------------------


def pair_key(r: Rating) -> str:
    """The item of a pairwise rating: its two item ids, sorted (the same for every rater, whatever the sides)."""
    return "|".join(sorted((r.item_a, r.item_b)))


def comparison_groups(ratings: Iterable[Rating]) -> list[list[str]]:
    """The models, split into groups that are connected by pairwise comparisons (sorted; largest first).

    Bradley-Terry ranks models only within a group: two groups that never meet (images and melodies, say)
    have no common scale, so each is fitted on its own.
    """
    parent: dict[str, str] = {}

    def root(m: str) -> str:
        while parent.setdefault(m, m) != m:
            m = parent[m]
        return m

    for r in ratings:
        if r.task == "pairwise":
            parent[root(r.model_a)] = root(r.model_b)
    groups: dict[str, list[str]] = defaultdict(list)
    for m in sorted(parent):
        groups[root(m)].append(m)
    return sorted(groups.values(), key=lambda g: (-len(g), g))


def _rater_item_table(ratings: Sequence[Rating], model: str) -> tuple[list[str], list[str], Any, Any]:
    """``wins[r, i]`` (a tie counts half) and ``games[r, i]``: rater r's ratings of item i that involve ``model``."""

    mine = [r for r in ratings if r.task == "pairwise" and model in (r.model_a, r.model_b)]
    if not mine:
        raise ValueError(f"no pairwise rating involves {model!r}")
    raters, items = sorted({r.rater for r in mine}), sorted({pair_key(r) for r in mine})
    row, col = {x: k for k, x in enumerate(raters)}, {x: k for k, x in enumerate(items)}
    wins, games = np.zeros((len(raters), len(items))), np.zeros((len(raters), len(items)))
    for r in mine:
        winner = r.winner()
        wins[row[r.rater], col[pair_key(r)]] += 0.5 if winner is None else float(winner == model)
        games[row[r.rater], col[pair_key(r)]] += 1
    return raters, items, wins, games


def _two_way_rates(wins: Any, games: Any, resamples: int, rng: Any) -> Any:
    """Win rates of ``resamples`` two-way resamples: raters (rows) and items (columns) drawn with replacement."""
    n_raters, n_items = wins.shape
    wr = rng.multinomial(n_raters, [1 / n_raters] * n_raters, size=resamples).astype(float)  # how often each
    wi = rng.multinomial(n_items, [1 / n_items] * n_items, size=resamples).astype(float)  # rater / item is drawn
    won, played = (((wr @ m) * wi).sum(1) for m in (wins, games))
    with np.errstate(invalid="ignore", divide="ignore"):
        return won / played  # nan where a resample holds no game of this model (dropped by the caller)


def two_way_bootstrap(
    ratings: Iterable[Rating], model: str, resamples: int = 1000, seed: int = 0, level: float = 0.95,
) -> dict[str, float]:
    """A model's win rate with a percentile interval that resamples **both** raters and items.

    Each resample draws the raters with replacement and, independently, the items (pairs of item ids) with
    replacement, and keeps every rating of a drawn rater on a drawn item (a rater drawn twice counts twice).
    Ratings of one item by many raters are not independent (a clearly better image wins for everyone), nor are
    one rater's ratings (a lenient rater); this interval counts both, where the Wilson interval of
    :func:`win_rates` treats every rating as an independent coin. Returns ``rate``, ``low``, ``high``,
    ``raters``, ``items``, ``n`` (ratings).
    """

    ratings = list(ratings)
    raters, items, wins, games = _rater_item_table(ratings, model)
    rates = _two_way_rates(wins, games, resamples, np.random.default_rng(seed))
    rates = rates[np.isfinite(rates)]
    alpha = (1 - level) / 2
    return {"rate": float(wins.sum() / games.sum()), "low": float(np.quantile(rates, alpha)),
            "high": float(np.quantile(rates, 1 - alpha)), "raters": len(raters), "items": len(items),
            "n": int(games.sum())}


def _bradley_terry_draws(pairwise: Sequence[Rating], models: Iterable[str], resamples: int,
                         seed: int) -> list[dict[str, float]]:
    """The strengths refitted on each two-way resample (raters and items drawn with replacement).

    A resample in which one of ``models`` drew no game is skipped: its strength is undefined there.
    """
    models = set(models)
    by_cell: dict[tuple[str, str], list[Rating]] = defaultdict(list)
    for r in pairwise:
        by_cell[(r.rater, pair_key(r))].append(r)
    raters, items = sorted({c[0] for c in by_cell}), sorted({c[1] for c in by_cell})
    rng, draws = np.random.default_rng(seed), []
    for _ in range(resamples):
        pick_r = rng.integers(len(raters), size=len(raters))
        pick_i = rng.integers(len(items), size=len(items))
        resample = [r for a in pick_r for b in pick_i for r in by_cell.get((raters[a], items[b]), ())]
        if len({m for r in resample for m in (r.model_a, r.model_b)}) < len(models):
            continue
        draws.append(bradley_terry(resample))
    return draws


def bradley_terry_intervals(
    ratings: Iterable[Rating], resamples: int = 200, seed: int = 0, level: float = 0.95,
) -> dict[str, tuple[float, float, float]]:
    """``{model: (strength, low, high)}``: :func:`bradley_terry` with two-way bootstrap intervals.

    Each resample draws raters and items (pairs of item ids) with replacement, as :func:`two_way_bootstrap`
    does, and refits the strengths (normalised to sum 1, so each interval is of a model's share of strength).
    Fit the models of one :func:`comparison_groups` group at a time. To compare two models, use the interval
    of their difference (:func:`bradley_terry_differences`), not whether their two intervals overlap.
    """

    pairwise = [r for r in ratings if r.task == "pairwise"]
    fitted = bradley_terry(pairwise)
    draws = _bradley_terry_draws(pairwise, fitted, resamples, seed)
    alpha = (1 - level) / 2
    return {m: (fitted[m], float(np.quantile([d[m] for d in draws], alpha)),
                float(np.quantile([d[m] for d in draws], 1 - alpha))) for m in fitted}


def bradley_terry_differences(
    ratings: Iterable[Rating], pairs: Iterable[tuple[str, str]], resamples: int = 200, seed: int = 0,
    level: float = 0.95,
) -> dict[tuple[str, str], tuple[float, float, float]]:
    """``{(a, b): (s_a - s_b, low, high)}``: the difference of two Bradley-Terry strengths with its interval.

    Both strengths are refitted on the **same** two-way resamples (with the same ``seed``, the resamples of
    :func:`bradley_terry_intervals`), so the interval is of the difference itself: an interval that contains 0
    says these ratings cannot order the two models. Fit the models of one :func:`comparison_groups` group.
    """

    pairwise, pairs = [r for r in ratings if r.task == "pairwise"], list(pairs)
    fitted = bradley_terry(pairwise)
    unknown = {m for pair in pairs for m in pair} - set(fitted)
    if unknown:
        raise ValueError(f"no pairwise rating involves {sorted(unknown)}")
    draws = _bradley_terry_draws(pairwise, fitted, resamples, seed)
    alpha = (1 - level) / 2
    out = {}
    for a, b in pairs:
        d = [x[a] - x[b] for x in draws]
        out[a, b] = (fitted[a] - fitted[b], float(np.quantile(d, alpha)), float(np.quantile(d, 1 - alpha)))
    return out


def side_bias(ratings: Iterable[Rating], level: float = 0.95) -> dict[str, float]:
    """Do raters pick the left side more often than the right, whatever is shown there?

    Over the pairwise ratings that are not ties: ``n``, ``left`` (how many chose left), ``share`` (left / n) with
    its Wilson interval (``low``, ``high``) and the two-sided binomial ``p_value`` against 50%. Sides are drawn
    at random, so a side bias adds noise, not a tilt towards a model; a strong one says the question is too hard
    or the raters too hurried.
    """
    from scipy.stats import binomtest  # lazy, as in quiz_accuracy

    decided = [r for r in ratings if r.task == "pairwise" and r.choice != "tie"]
    if not decided:
        raise ValueError("no pairwise rating other than ties")
    left = sum(r.choice == "left" for r in decided)
    low, high = wilson_interval(left, len(decided), level)
    return {"n": len(decided), "left": left, "share": left / len(decided), "low": low, "high": high,
            "p_value": binomtest(left, len(decided), 0.5).pvalue}


def report(folder: str | Path, resamples: int = 200, seed: int = 0) -> dict[str, Any] | None:
    """Analyse and print a room's pairwise ratings (every ``*.csv`` in ``folder``), as read in notebook 07, 4.4.

    Prints the number of ratings and raters; each model's win rate with its Wilson and two-way intervals
    (:func:`two_way_bootstrap`, ``10 * resamples`` resamples); Bradley-Terry strengths with two-way intervals within
    each group of more than two models that met each other (``resamples`` resamples); the side check (unless every
    rating is a tie); and the agreement (or why there is none). Returns those results in a dict (keys ``ratings``,
    ``rates``, ``two_way``, ``bt``, ``side``, ``agreement``), or ``None`` when the folder holds no pairwise ratings.
    """
    ratings = [r for r in load_ratings(folder) if r.task == "pairwise"]
    if not ratings:
        print(f"no pairwise ratings in {folder} yet: nothing to analyse (rate some pairs, or merge a room's files)")
        return None
    print(f"{len(ratings)} ratings from {len({r.rater for r in ratings})} rater(s)")
    rates, two_way = win_rates(ratings), {}
    for m, s in sorted(rates.items(), key=lambda kv: -kv[1]["rate"]):
        t = two_way[m] = two_way_bootstrap(ratings, m, resamples=10 * resamples, seed=seed)
        print(f"  {m:<8} won {s['rate']:.0%} of {s['n']:.0f}: 95% Wilson interval {s['low']:.0%} to {s['high']:.0%}; "
              f"two-way, over {t['raters']} rater(s) and {t['items']} items, {t['low']:.0%} to {t['high']:.0%}")
    strengths: dict[str, tuple[float, float, float]] = {}
    for group in (g for g in comparison_groups(ratings) if len(g) > 2):
        fit = bradley_terry_intervals([r for r in ratings if r.model_a in group], resamples=resamples, seed=seed)
        print("  Bradley-Terry strengths, two-way 95% intervals: "
              + ", ".join(f"{m} {s:.2f} [{lo:.2f}, {hi:.2f}]" for m, (s, lo, hi) in sorted(fit.items())))
        strengths.update(fit)
    side = None
    if not all(r.choice == "tie" for r in ratings):
        side = side_bias(ratings)
        print(f"  side: left chosen in {side['share']:.0%} of {side['n']} decided pairs "
              f"(95% interval {side['low']:.0%} to {side['high']:.0%}; p = {side['p_value']:.2f} against 50%)")
    try:
        agreed: dict[str, Any] | None = agreement(ratings)
    except ValueError as why:
        print(f"  agreement: {why}")
        agreed = None
    else:
        print(f"  agreement: {agreed['method']}'s kappa {agreed['kappa']:.2f} over {agreed['items']} pairs "
              f"rated by all {agreed['raters']}")
    return {"ratings": ratings, "rates": rates, "two_way": two_way, "bt": strengths, "side": side,
            "agreement": agreed}


def _offset_for(win_rate: float, spread: float, rng: Any) -> float:
    """The logit ``c`` with mean(sigmoid(c + spread * N(0, 1))) = win_rate (the population's average win rate)."""
    from scipy.optimize import brentq
    from scipy.special import expit, logit

    if spread == 0:
        return float(logit(win_rate))
    z = spread * rng.standard_normal(200_000)
    return float(brentq(lambda c: expit(c + z).mean() - win_rate, logit(win_rate) - 10, logit(win_rate) + 10))


def room_power(
    win_rate: float, raters: int, items: int, rooms: int = 200, resamples: int = 200, item_sd: float = 1.0,
    rater_sd: float = 0.5, seed: int = 0, level: float = 0.95, method: str = "two-way",
) -> float:
    """The share of simulated rooms whose two-way interval for a model's win rate excludes 50%.

    A room: ``raters`` people each rate the same ``items`` pairs (the model against one opponent). Rater ``r``
    prefers the model on item ``i`` with probability ``sigmoid(c + a_i + b_r)``: items differ
    (``a_i ~ N(0, item_sd^2)``, on the log-odds scale), so do raters (``b_r ~ N(0, rater_sd^2)``), and ``c`` is
    set so that the average over items and raters is ``win_rate``. No ties. Each room is analysed with the
    two-way bootstrap of :func:`two_way_bootstrap` (``resamples`` resamples), or with ``method="wilson"`` by
    the Wilson interval of all its ratings as if they were independent; the result is the detection rate (the
    power) at that ``win_rate``, or the false-alarm rate at ``win_rate = 0.5``.
    """
    if method not in ("two-way", "wilson"):
        raise ValueError(f"method must be 'two-way' or 'wilson', got {method!r}")
    from scipy.special import expit

    if not 0 < win_rate < 1 or raters < 1 or items < 1:
        raise ValueError(f"need 0 < win_rate < 1 and at least one rater and item; got {win_rate}, {raters}, {items}")
    rng = np.random.default_rng(seed)
    c = _offset_for(win_rate, math.hypot(item_sd, rater_sd), rng)
    alpha, games, hits = (1 - level) / 2, np.ones((raters, items)), 0
    for _ in range(rooms):
        p = expit(c + item_sd * rng.standard_normal(items)[None, :] + rater_sd * rng.standard_normal(raters)[:, None])
        wins = (rng.random((raters, items)) < p).astype(float)
        if method == "wilson":
            low, high = wilson_interval(wins.sum(), wins.size, level)
        else:
            low, high = np.quantile(_two_way_rates(wins, games, resamples, rng), [alpha, 1 - alpha])
        hits += bool(low > 0.5 or high < 0.5)
    return hits / rooms
