"""course_utils.exercises.hf: notebook 05's checkers say right to a right answer, and hint at each wrong one."""

from __future__ import annotations

import datetime as dt
import math

from course_utils import music, seq2seq
from course_utils.exercises import NOT_DONE
from course_utils.exercises import hf as ex
from tests.checks import assert_right, assert_wrong


def stub(*args):
    raise NotImplementedError


# --- exercise 1: BPE merges ----------------------------------------------------------------------------


def merges(words, n, weighted=True, first_only=False):
    # A learner's answer and its common mistakes. bpe_reference itself is checked against the tokenizers
    # library's BPE trainer (tests/test_hf.py), so these answers are right or wrong independently of the checker.
    return ex.bpe_reference(words, n, weighted=weighted, first_only=first_only)


def test_bpe_merges_right():
    assert_right(ex.check_bpe_merges(merges))


def test_bpe_merges_wrong():
    assert_wrong(ex.check_bpe_merges(lambda w, n: merges(w, n, weighted=False)), "count each occurrence")
    assert_wrong(ex.check_bpe_merges(lambda w, n: merges(w, n, first_only=True)), "'aaaa'")
    assert_wrong(ex.check_bpe_merges(lambda w, n: merges(w, n)[:-1]), "asked for 6 merges")
    assert_wrong(ex.check_bpe_merges(lambda w, n: merges(w, n)[:3] + [("x", "y")] * (n - 3)), "merge 4 should be")
    assert_wrong(ex.check_bpe_merges(lambda w, n: [("h", "u")] * n), "the first merge should be")
    assert_wrong(ex.check_bpe_merges(lambda w, n: "ug"), "list of pairs")
    assert_wrong(ex.check_bpe_merges(lambda w, n: ["ug"] * n), "pair of two strings")
    assert_wrong(ex.check_bpe_merges(stub), NOT_DONE)


# --- exercise 2: per character ---------------------------------------------------------------------------


def test_per_char():
    assert_right(ex.check_per_char(lambda loss, t, c: loss * t / c))
    assert_wrong(ex.check_per_char(lambda loss, t, c: loss * c / t), "upside down")
    assert_wrong(ex.check_per_char(lambda loss, t, c: loss * t / c / math.log(2)), "bits")
    assert_wrong(ex.check_per_char(lambda loss, t, c: loss * t), "total loss")
    assert_wrong(ex.check_per_char(lambda loss, t, c: loss / c), "loss_per_token * num_tokens")
    assert_wrong(ex.check_per_char(lambda loss, t, c: loss), "expected")
    assert_wrong(ex.check_per_char(lambda loss, t, c: "1.5"), "number")
    assert_wrong(ex.check_per_char(stub), NOT_DONE)


# --- exercise 3: the rule-based normaliser ---------------------------------------------------------------


def normalise(text):
    year = int(text[-4:])
    if text[2] == "." and text[5] == ".":
        return f"{year}-{text[3:5]}-{text[:2]}"
    lower = text[:-4].replace(",", " ").lower().split()
    month = next(i + 1 for i, m in enumerate(seq2seq.MONTHS) if m.lower() in lower or m[:3].lower() in lower)
    ordinals = {seq2seq.ordinal_words(d): d for d in range(1, 32)}
    day = next(int(w) if w.isdigit() else ordinals[w] for w in lower if w.isdigit() or w in ordinals)
    return f"{year}-{month:02d}-{day:02d}"


def test_normalise_date_right():
    assert_right(ex.check_normalise_date(normalise))


def test_normalise_date_wrong():
    def swapped(text):
        y, m, d = normalise(text).split("-")
        return f"{y}-{d}-{m}"

    def unpadded(text):
        y, m, d = normalise(text).split("-")
        return f"{y}-{int(m)}-{int(d)}"

    def no_ordinals(text):
        if any(ch.isdigit() for ch in text[:-4]):
            return normalise(text)
        return "2000-01-01"

    assert_wrong(ex.check_normalise_date(swapped), "swapped")
    assert_wrong(ex.check_normalise_date(unpadded), "two digits")
    result = ex.check_normalise_date(no_ordinals)
    assert_wrong(result, "spelled", "lower")
    assert_wrong(ex.check_normalise_date(lambda t: None), "spelled format")
    assert_wrong(ex.check_normalise_date(lambda t: dt.date(2000, 1, 1)), "expected")
    assert_wrong(ex.check_normalise_date(stub), NOT_DONE)


# --- exercise 4: transposition -------------------------------------------------------------------------------


def transpose(tokens, k):
    out = []
    for t in tokens:
        note = music.parse_token(t)
        out.append(t if note is None or note.pitch is None else music.note_token(music.Note(note.pitch + k,
                                                                                              note.quarters)))
    return out


def test_transpose_right():
    assert_right(ex.check_transpose(transpose))


def test_transpose_wrong():
    def naive_letters(tokens, k):  # moves the letter name, not the pitch
        names = "CDEFGAB"
        out = []
        for t in tokens:
            note = music.parse_token(t)
            if note is None or note.pitch is None:
                out.append(t)
            else:
                head, dur = t.split("_")
                out.append(names[(names.index(head[0]) + k) % 7] + head[1:] + "_" + dur)
        return out

    def shifts_rests(tokens, k):
        return [t if t.startswith("<") else transpose([t.replace("R_", "C4_")], k)[0] for t in tokens]

    def keeps_markers_badly(tokens, k):
        return transpose(tokens[1:], k)

    def changes_durations(tokens, k):
        return [t if t.startswith(("<", "R")) else t.split("_")[0] + "_1" for t in transpose(tokens, k)]

    def drops_specials(tokens, k):
        return ["<major>"] + transpose(tokens, k)[1:]

    assert_wrong(ex.check_transpose(naive_letters), "MIDI numbers")
    assert_wrong(ex.check_transpose(shifts_rests), "rest")
    assert_wrong(ex.check_transpose(keeps_markers_badly), "tokens")
    assert_wrong(ex.check_transpose(changes_durations), "duration")
    assert_wrong(ex.check_transpose(drops_specials), "'<minor>'")
    assert_wrong(ex.check_transpose(lambda t, k: " ".join(t)), "list of token strings")
    assert_wrong(ex.check_transpose(stub), NOT_DONE)
