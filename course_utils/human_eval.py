"""Human evaluation: recording ratings safely, and what a room's ratings can and cannot tell (notebook 06).

- :class:`RatingsLog`: one CSV file of ratings under ``data/ratings/``. Every row
  is written whole, under a file lock, with one ``write`` call: a crash never
  leaves half a row (a torn last line is cut off by the next writer and ignored
  by readers), and two kernels appending at once lose nothing.
- :func:`load_ratings` merges the files of a room.
- :func:`wilson_interval`, :func:`win_rates`, :func:`bradley_terry`: who wins a
  blind pairwise comparison, with intervals; :func:`quiz_accuracy` for the
  real-or-generated quiz against chance; :func:`agreement` between raters
  (scikit-learn's Cohen's kappa for two, :func:`fleiss_kappa` for more).

The Wilson interval and Bradley-Terry are taught in notebook 06 (section 4.3, exercise 4; section 4.4), so they
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

    Notebook 06 (section 4.3) teaches the formula. ``successes`` may be fractional (a tie is half a win);
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

    Every item must have the same number of raters (at least 2). Notebook 06 only names it; it is written out
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
