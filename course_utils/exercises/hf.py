"""The exercise checkers of notebook 05 (transformers with Hugging Face)."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import torch

from course_utils import music, seq2seq
from course_utils.exercises import Wrong, as_number, call, checker, close, not_done

# --- exercise 1: BPE merges by hand (section 1) ----------------------------------------------------------

BPE_COUNTS = {"hug": 7, "pug": 7, "pun": 1, "bun": 5, "hugs": 9}  # no two pairs tie in the first six merges
BPE_CORPUS = tuple(w for w, n in BPE_COUNTS.items() for _ in range(n))


def bpe_reference(words: Sequence[str], num_merges: int, weighted: bool = True, first_only: bool = False,
                  tie: str = "first") -> list[tuple[str, str]]:
    """Byte-pair encoding's training loop, and the variants that common mistakes compute.

    Each word starts as its characters; each step counts every adjacent pair
    over all words (a word that occurs 4 times counts 4 times), merges the most
    frequent pair (ties: the pair that sorts first) everywhere, left to right.
    """
    counts = Counter(words) if weighted else Counter(set(words))
    seqs = {w: list(w) for w in counts}
    merges: list[tuple[str, str]] = []
    for _ in range(num_merges):
        pairs: Counter = Counter()
        for w, n in counts.items():
            s = seqs[w]
            for a, b in zip(s, s[1:], strict=False):
                pairs[(a, b)] += n
        if not pairs:
            break
        best_count = max(pairs.values())
        tied = sorted(p for p, c in pairs.items() if c == best_count)
        best = tied[0] if tie == "first" else tied[-1]
        merges.append(best)
        for w, s in seqs.items():
            out, i, done = [], 0, False
            while i < len(s):
                if i + 1 < len(s) and (s[i], s[i + 1]) == best and not done:
                    out.append(s[i] + s[i + 1])
                    i += 2
                    done = first_only
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
    return merges


def _merge_list(value: Any) -> list[tuple[str, str]]:
    not_done(value)
    if not isinstance(value, (list, tuple)):
        raise Wrong(f"return a list of pairs, e.g. [('e', 's'), ('es', 't')]; got a {type(value).__name__}")
    out = []
    for item in value:
        if not (isinstance(item, (tuple, list)) and len(item) == 2 and all(isinstance(x, str) for x in item)):
            raise Wrong(f"each merge is a pair of two strings, such as ('e', 's'); got {item!r}")
        out.append((item[0], item[1]))
    return out


@checker
def check_bpe_merges(merges_fn: Callable[[list[str], int], Any]) -> str:
    """``merges_fn(words, num_merges)``: the first ``num_merges`` BPE merges of a list of words."""
    words, n = list(BPE_CORPUS), 6
    got = _merge_list(call(merges_fn, "your function", list(words), n))
    want = bpe_reference(words, n)
    if got == want:
        aaa = _merge_list(call(merges_fn, "your function", ["aaaa", "aaaa", "ab"], 2))
        if aaa != bpe_reference(["aaaa", "aaaa", "ab"], 2):
            raise Wrong(f"right on the first corpus, but on ['aaaa', 'aaaa', 'ab'] you give {aaa}, not "
                        f"{bpe_reference(['aaaa', 'aaaa', 'ab'], 2)}: in 'aaaa' the pair ('a', 'a') occurs 3 times "
                        "when counting, and merging left to right gives 'aa' 'aa'")
        return f"{', '.join(a + '+' + b for a, b in got)}: the same merges a BPE trainer learns from these words"
    if len(got) != n:
        raise Wrong(f"asked for {n} merges, got {len(got)}")
    if got == bpe_reference(words, n, weighted=False):
        raise Wrong("count each occurrence of a word: 'hugs' appears 9 times, so its pairs count 9 times "
                    "(you counted each distinct word once)")
    if got == bpe_reference(words, n, first_only=True):
        raise Wrong("merge every occurrence of the chosen pair in a word, not only the first one")
    if got[0] == want[0]:
        k = next(i for i in range(n) if got[i] != want[i])
        raise Wrong(f"the first {k} merges are right, merge {k + 1} should be {want[k]}, not {got[k]}: after a "
                    "merge, recount the pairs of the new symbols (a merged symbol like 'es' pairs with its neighbours)")
    raise Wrong(f"the first merge should be {want[0]} (the most frequent adjacent pair over all words), not {got[0]}")


# --- exercise 2: a loss per token as a loss per character (section 1) ---------------------------------------------


@checker
def check_per_char(per_char_fn: Callable[[float, int, int], Any]) -> str:
    """``per_char_fn(loss_per_token, num_tokens, num_chars)``: the same loss, in nats per character."""
    cases = [(4.2, 1000, 2860), (3.0, 500, 500), (2.5, 10, 37)]
    for loss, tokens, chars in cases:
        got = as_number(call(per_char_fn, "your function", loss, tokens, chars), "your loss per character")
        want = loss * tokens / chars
        if close(got, want, 1e-6):
            continue
        if close(got, loss * chars / tokens, 1e-6):
            raise Wrong("the ratio is upside down: the total loss is loss_per_token * num_tokens; spread it over "
                        "num_chars characters. A token covers several characters, so the loss per character is smaller")
        if close(got, loss * tokens / chars / math.log(2), 1e-6):
            raise Wrong("that is in bits; keep nats (the natural logarithm), as the models report them")
        if close(got, loss * tokens, 1e-6):
            raise Wrong("that is the total loss over the text; divide it by the number of characters")
        if close(got, loss / chars, 1e-6):
            raise Wrong("the total is loss_per_token * num_tokens, then divide by num_chars")
        raise Wrong(f"for {loss} nats/token over {tokens} tokens and {chars} characters expected {want:.4f}")
    return "nats/char = nats/token x tokens / chars: the same total, shared among more (and smaller) units"


# --- exercise 3: a rule-based date normaliser (section 4) --------------------------------------------------------


def _format_failures(fn: Callable[[str], Any], dates: Sequence[dt.date]) -> dict[str, tuple[str, Any, str]]:
    """The first wrong answer for each format: {format: (source, answer, expected)}."""
    wrong: dict[str, tuple[str, Any, str]] = {}
    for fmt in seq2seq.FORMATS:
        for d in dates:
            source = seq2seq.render(d, fmt)
            got = call(fn, "your function", source)
            if got != d.isoformat():
                wrong[fmt] = (source, got, d.isoformat())
                break
    return wrong


@checker
def check_normalise_date(normalise_fn: Callable[[str], Any]) -> str:
    """``normalise_fn(text)``: any date of :data:`seq2seq.FORMATS` as an ISO date ``'YYYY-MM-DD'``."""
    special = [dt.date(2021, 3, 21), dt.date(1900, 1, 1), dt.date(2099, 12, 31), dt.date(1999, 11, 30),
               dt.date(2000, 2, 29), dt.date(1984, 5, 2), dt.date(2024, 10, 20)]
    dates = special + seq2seq.random_dates(60, torch.Generator().manual_seed(5))
    wrong = _format_failures(normalise_fn, dates)
    if not wrong:
        return (f"all {len(seq2seq.FORMATS)} formats of {len(dates)} dates come out right: this is what the "
                "translator has to learn from examples alone")
    fmt, (source, got, want) = next(iter(wrong.items()))
    if isinstance(got, str) and len(got) == 10 and got[4] == "-" and got[7] == "-":
        y, m, d = got.split("-")
        if (y, m, d) == (want[:4], want[8:], want[5:7]):
            raise Wrong(f"{source!r} gives {got!r}: month and day are swapped; ISO is year-month-day")
        if m.isdigit() and d.isdigit() and got != want:
            raise Wrong(f"{source!r} gives {got!r}, expected {want!r}; formats still wrong: {', '.join(wrong)}")
    if isinstance(got, str) and got.replace("-", "").isdigit() and len(got) < 10:
        raise Wrong(f"{source!r} gives {got!r}: pad month and day to two digits (f'{{month:02d}}')")
    raise Wrong(f"{source!r} ({fmt} format) gives {got!r}, expected {want!r}; formats still wrong: {', '.join(wrong)}")


# --- exercise 4: transposing a melody (section 5) -----------------------------------------------------------------


def transpose_reference(tokens: Sequence[str], semitones: int) -> list[str]:
    out = []
    for token in tokens:
        note = music.parse_token(token)
        if note is None or note.pitch is None:
            out.append(token)
        else:
            out.append(music.note_token(music.Note(note.pitch + semitones, note.quarters)))
    return out


@checker
def check_transpose(transpose_fn: Callable[[list[str], int], Any]) -> str:
    """``transpose_fn(tokens, semitones)``: the melody's tokens with every pitch moved, rests and markers unchanged."""
    melody = ["<minor>", "A4_1", "B4_0.5", "C5_0.5", "R_1", "G#4_2", "E5_1.5", "<end>"]
    for shift in (2, -3, 12, 0):
        got = call(transpose_fn, "your function", list(melody), shift)
        not_done(got)
        if not isinstance(got, list) or not all(isinstance(t, str) for t in got):
            raise Wrong(f"return a list of token strings; got {type(got).__name__}")
        want = transpose_reference(melody, shift)
        if got == want:
            continue
        if len(got) != len(want):
            raise Wrong(f"the melody has {len(melody)} tokens and so should its transposition; got {len(got)}")
        if got[0] != melody[0] or got[-1] != melody[-1]:
            raise Wrong("keep '<minor>' and '<end>' as they are: they are not notes")
        if got[4] != melody[4]:
            raise Wrong("a rest ('R_1') has no pitch: leave it unchanged")
        durations = [t.rsplit("_", 1)[-1] for t in got[1:-1]]
        if durations != [t.rsplit("_", 1)[-1] for t in melody[1:-1]]:
            raise Wrong("only the pitch moves: keep each note's duration (the part after '_')")
        bad = next(i for i in range(len(want)) if got[i] != want[i])
        raise Wrong(f"moving {melody[bad]!r} by {shift} semitones gives {want[bad]!r}, not {got[bad]!r}: go through "
                    "MIDI numbers (music.midi_of, music.midi_name), so that B4 + 1 is C5 and the octave follows")
    return "pitches move, durations, rests and markers stay: twelve transpositions of every chorale are free data"
