"""Summarisation with every fact known: generated match reports and their headlines (notebook 06, section 4.2).

No summarisation data set can be fetched offline, so the course makes one, as
it made the dates of :mod:`course_utils.seq2seq`:

- the data: :func:`make_report` writes a short football match report (the
  result, a scorer, the crowd, a run of form, the weather, in a random order
  and phrasing) and its reference **headline** (``"Rovers beat City 3-1"``);
  :func:`make_pairs` draws many. Fixtures (home, away) with
  :func:`is_held_out` true are never drawn for training;
- the baseline: :func:`lead` (the first ``k`` sentences);
- the metric: :func:`rouge_n` and :func:`rouge_l` (F1 of n-gram overlap and of
  the longest common subsequence, with the tokenisation of Google's
  ``rouge-score`` package, which tests/test_summaries.py checks them against);
- the facts: :func:`entities` (team names, player names and numbers) and
  :func:`hallucinated` (those of a summary that are not in its source);
- the model's tokenizer: :func:`word_tokenizer` (one token per word, a closed
  vocabulary from :func:`vocabulary`).

The model and its training are :mod:`course_utils.seq2seq`'s tiny BART.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import torch

TEAMS = ("Rovers", "City", "Albion", "Rangers", "Wanderers", "Athletic", "Harriers", "Dynamo", "Olympic", "Villa",
         "Town", "Celtic")
PLAYERS = ("Smith", "Okafor", "Novak", "Silva", "Brennan", "Kowalski", "Haddad", "Moreau", "Lindqvist", "Tanaka",
           "Mensah", "Rossi", "Fischer", "Duarte", "Murphy", "Ivanova", "Berg", "Costa", "Nakamura", "Walsh",
           "Petrov", "Adeyemi", "Kane", "Larsen")  # PLAYERS[2 t] and PLAYERS[2 t + 1] play for TEAMS[t]
DAYS = ("Saturday", "Sunday", "Tuesday", "Wednesday")
CROWDS = tuple(range(4000, 31000, 1000))  # attendances, written as digits
MAX_GOALS = 5
PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
TIMES = {1: "once", 2: "twice", 3: "three times"}

# the sentences of a report; each is picked at random, then the sentences are shuffled (the result is never last)
_RESULT_WIN = ("{w} beat {l} {ws}-{ls} on {day} .", "{l} lost {ls}-{ws} to {w} on {day} .",
               "{w} won {ws}-{ls} against {l} on {day} .")
_RESULT_DRAW = ("{h} and {a} drew {hs}-{as_} on {day} .", "{h} drew {hs}-{as_} with {a} on {day} .")
_SCORER = ("{p} scored {times} for {t} .", "{p} of {t} scored {times} .")
_CROWD = ("{n} fans watched the game .", "the crowd was {n} .")
_FORM = ("{t} have now played {k} games without a defeat .", "it was the {k}th game in a row that {t} scored .")
_WEATHER = ("rain fell all afternoon .", "it was a cold and windy day .", "the sun shone on a dry pitch .")


def is_held_out(home: int, away: int) -> bool:
    """True for the test fixtures (team indices): one pair in about eleven, never drawn for training."""
    return (3 * home + away) % 11 == 0 and home != away


def _fixture(generator: torch.Generator, split: str) -> tuple[int, int]:
    """A (home, away) pair of different teams from the split's fixtures."""
    while True:
        home, away = (int(i) for i in torch.randint(len(TEAMS), (2,), generator=generator))
        if home != away and (split == "all" or is_held_out(home, away) == (split == "test")):
            return home, away


def _pick(options: Sequence[str], generator: torch.Generator) -> str:
    return options[int(torch.randint(len(options), (), generator=generator))]


def make_report(generator: torch.Generator, split: str = "all") -> dict[str, Any]:
    """One match: ``{"report", "headline", "facts"}``, every fact drawn from ``generator``.

    The headline names the winner first (``"Rovers beat City 3-1"``) or both
    teams in a draw (``"Rovers and City draw 1-1"``), whatever phrasing the
    report used. ``split``: ``"train"`` or ``"test"`` fixtures (:func:`is_held_out`), or ``"all"``.
    """
    if split not in ("all", "train", "test"):
        raise ValueError(f"split must be 'all', 'train' or 'test', got {split!r}")
    g = generator
    home, away = _fixture(g, split)
    hs, as_ = (int(x) for x in torch.randint(MAX_GOALS + 1, (2,), generator=g))
    h, a, day = TEAMS[home], TEAMS[away], _pick(DAYS, g)
    if hs == as_:
        result = _pick(_RESULT_DRAW, g).format(h=h, a=a, hs=hs, as_=as_, day=day)
        headline = f"{h} and {a} draw {hs}-{as_}"
        scorer_team = home if torch.rand((), generator=g) < 0.5 else away
    else:
        (w, ws), (lo, ls) = sorted([(h, hs), (a, as_)], key=lambda x: -x[1])
        result = _pick(_RESULT_WIN, g).format(w=w, l=lo, ws=ws, ls=ls, day=day)
        headline = f"{w} beat {lo} {ws}-{ls}"
        scorer_team = home if hs > as_ else away
    goals = max(hs, as_)
    sentences = [result]
    player = None
    if goals:
        player = PLAYERS[2 * scorer_team + int(torch.randint(2, (), generator=g))]
        times = TIMES[min(int(torch.randint(1, goals + 1, (), generator=g)), 3)]
        sentences.append(_pick(_SCORER, g).format(p=player, t=TEAMS[scorer_team], times=times))
    crowd = CROWDS[int(torch.randint(len(CROWDS), (), generator=g))]
    form = int(torch.randint(4, 10, (), generator=g))
    in_form = h if hs >= as_ else a  # the winner (the home side in a draw) is on a run
    sentences += [_pick(_CROWD, g).format(n=crowd), _pick(_FORM if goals else _FORM[:1], g).format(t=in_form, k=form),
                  _pick(_WEATHER, g)]
    order = torch.randperm(len(sentences), generator=g).tolist()
    if order[-1] == 0:  # the result is never the last sentence
        order[-1], order[0] = order[0], order[-1]
    text = " ".join(sentences[i] for i in order)
    facts = {"home": h, "away": a, "score": (hs, as_), "scorer": player, "crowd": crowd, "form": form,
             "result_position": order.index(0)}
    return {"report": text, "headline": headline, "facts": facts}


def make_pairs(n: int, generator: torch.Generator, split: str = "all") -> list[tuple[str, str]]:
    """``n`` (report, headline) pairs of ``split``."""
    return [(r["report"], r["headline"]) for r in (make_report(generator, split) for _ in range(n))]


def sentences(text: str) -> list[str]:
    """The sentences of a report (each ends with ``" ."``)."""
    return [s.strip() + " ." for s in text.split(" .") if s.strip()]


def lead(text: str, k: int = 1) -> str:
    """The lead-``k`` baseline: the first ``k`` sentences, without their full stops."""
    return " ".join(s[:-2] for s in sentences(text)[:k])


# --- ROUGE (Lin, 2004), tokenised as Google's rouge-score package does -------------------------------------


def tokens(text: str) -> list[str]:
    """Lower case, every run of characters other than a-z and 0-9 a separator (``rouge-score``'s tokenizer)."""
    return re.findall(r"[a-z0-9]+", text.lower())


def _f1(overlap: int, predicted: int, reference: int) -> float:
    precision, recall = overlap / predicted if predicted else 0.0, overlap / reference if reference else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def rouge_n(prediction: str, reference: str, n: int = 1) -> float:
    """ROUGE-N F1: n-grams shared by the two texts (each counted at most as often as in both), as an F1."""
    grams = [Counter(tuple(t[i:i + n]) for i in range(len(t) - n + 1)) for t in (tokens(prediction), tokens(reference))]
    return _f1(sum((grams[0] & grams[1]).values()), sum(grams[0].values()), sum(grams[1].values()))


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """The length of the longest common subsequence of two token lists (dynamic programming, one row at a time)."""
    row = [0] * (len(b) + 1)
    for x in a:
        previous_diagonal = 0
        for j, y in enumerate(b, start=1):
            previous_diagonal, row[j] = row[j], previous_diagonal + 1 if x == y else max(row[j], row[j - 1])
    return row[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1: the longest common subsequence as a share of each text's tokens, as an F1."""
    p, r = tokens(prediction), tokens(reference)
    return _f1(lcs_length(p, r), len(p), len(r))


def rouge(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean ROUGE-1, ROUGE-2 and ROUGE-L F1 over pairs (the mean of per-pair scores, as papers report)."""
    if len(predictions) != len(references) or not references:
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    pairs = list(zip(predictions, references, strict=True))
    return {"rouge1": sum(rouge_n(p, r, 1) for p, r in pairs) / len(pairs),
            "rouge2": sum(rouge_n(p, r, 2) for p, r in pairs) / len(pairs),
            "rougeL": sum(rouge_l(p, r) for p, r in pairs) / len(pairs)}


# --- facts -----------------------------------------------------------------------------------------------------


def entities(text: str) -> set[str]:
    """The facts a headline can get wrong: team names, player names and numbers (every digit run) in ``text``."""
    words = set(re.findall(r"[A-Za-z]+", text))
    return (words & set(TEAMS)) | (words & set(PLAYERS)) | set(re.findall(r"\d+", text))


def hallucinated(summary: str, source: str) -> set[str]:
    """The entities of ``summary`` that its ``source`` does not contain: made up, whatever the rest says."""
    return entities(summary) - entities(source)


def hallucination_rate(summaries: Sequence[str], sources: Sequence[str]) -> float:
    """The share of summaries with at least one entity that is not in their source."""
    if len(summaries) != len(sources) or not sources:
        raise ValueError(f"{len(summaries)} summaries for {len(sources)} sources")
    return sum(bool(hallucinated(s, src)) for s, src in zip(summaries, sources, strict=True)) / len(sources)


# --- the tokenizer ------------------------------------------------------------------------------------------


def vocabulary() -> list[str]:
    """Every word a report or headline can hold (special tokens first), from the templates and the names."""
    words = {"draw", "beat", "and"} | set(TEAMS) | set(PLAYERS) | set(DAYS) | set(" ".join(TIMES.values()).split())
    words |= {f"{i}-{j}" for i in range(MAX_GOALS + 1) for j in range(MAX_GOALS + 1)}
    words |= {str(n) for n in CROWDS} | {str(k) for k in range(4, 10)} | {f"{k}th" for k in range(4, 10)}
    templates = _RESULT_WIN + _RESULT_DRAW + _SCORER + _CROWD + _FORM + _WEATHER
    words |= {w for t in templates for w in re.sub(r"\{[a-z_]+\}", " ", t).split()}
    return [PAD, BOS, EOS, UNK, *sorted(words)]


def word_tokenizer() -> Any:
    """A ``transformers`` tokenizer with one token per space-separated word of :func:`vocabulary`.

    Ids 0-3 are ``<pad>``, ``<s>``, ``</s>``, ``<unk>``; encoding appends
    ``</s>``; decoding joins the words with spaces. Sources are padded on the left.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast  # lazy: importing transformers takes seconds

    vocab = {t: i for i, t in enumerate(vocabulary())}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins the words with spaces
    tok.post_processor = processors.TemplateProcessing(single=f"$A {EOS}", special_tokens=[(EOS, vocab[EOS])])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, bos_token=BOS, eos_token=EOS, unk_token=UNK,
                                   padding_side="left")
