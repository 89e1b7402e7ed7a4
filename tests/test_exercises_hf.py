"""course_utils.exercises.hf: notebook 06's checkers say right to a right answer, and hint at each wrong one."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter

import pytest
import torch
from transformers import GPT2LMHeadModel

from course_utils import music, seq2seq
from course_utils.exercises import hf as ex
from course_utils.solutions import hf as sol
from tests.checks import assert_not_done, assert_right, assert_wrong

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: one thread is fastest (conftest.py)


def stub(*args):
    raise NotImplementedError


# --- exercise 1: BPE merges ----------------------------------------------------------------------------


def learner_merges(words, n, first_only=False):
    """A learner's BPE training loop; with ``first_only`` it merges only the first occurrence in each word."""
    counts = Counter(words)
    seqs = {w: list(w) for w in counts}
    merges = []
    for _ in range(n):
        pairs = Counter()
        for w, k in counts.items():
            for pair in zip(seqs[w], seqs[w][1:], strict=False):
                pairs[pair] += k
        best = max(sorted(pairs), key=pairs.__getitem__)
        merges.append(best)
        for w, s in seqs.items():
            out, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and (s[i], s[i + 1]) == best and not (first_only and len(out) < i):
                    out.append(s[i] + s[i + 1])
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
    return merges


def test_bpe_merges_right():
    assert_right(ex.check_bpe_merges(sol.bpe_merges))
    assert_right(ex.check_bpe_merges(learner_merges))


def test_bpe_merges_wrong():
    assert_wrong(ex.check_bpe_merges(lambda w, n: sol.bpe_merges(sorted(set(w)), n)), "count each occurrence")
    assert_wrong(ex.check_bpe_merges(lambda w, n: learner_merges(w, n, first_only=True)), "'aaaa'")
    assert_wrong(ex.check_bpe_merges(lambda w, n: sol.bpe_merges(w, n)[:-1]), "asked for 6 merges")
    assert_wrong(ex.check_bpe_merges(lambda w, n: sol.bpe_merges(w, 3) + [("x", "y")] * (n - 3)), "merge 4 should be")
    assert_wrong(ex.check_bpe_merges(lambda w, n: [("h", "u")] * n), "the first merge should be")
    assert_wrong(ex.check_bpe_merges(lambda w, n: "ug"), "list of pairs")
    assert_wrong(ex.check_bpe_merges(lambda w, n: ["ug"] * n), "pair of two strings")
    assert_not_done(ex.check_bpe_merges(stub))


# --- exercise 2: encoding with learnt merges --------------------------------------------------------------


def learner_encode(word, merges, space="Ġ", order="rank", every=True):
    """A learner's encoder; the arguments switch on the common mistakes."""
    s = [space if ch == " " else ch for ch in word]
    if order == "rank":  # again and again: the earliest-learnt pair present, merged everywhere
        rank = {p: i for i, p in enumerate(merges)}
        while known := [p for p in zip(s, s[1:], strict=False) if p in rank]:
            best = min(known, key=rank.__getitem__)
            i = 0
            while i < len(s) - 1:
                if (s[i], s[i + 1]) == best:
                    s[i:i + 2] = [s[i] + s[i + 1]]
                i += 1
        return s
    if order == "leftmost":  # the first pair from the left that is any merge
        while (i := next((i for i, p in enumerate(zip(s, s[1:], strict=False)) if p in merges), None)) is not None:
            s[i:i + 2] = [s[i] + s[i + 1]]
        return s
    for pair in merges:  # order == "each": every merge once, in the order learnt
        i = 0
        while i < len(s) - 1:
            if (s[i], s[i + 1]) == pair:
                s[i:i + 2] = [s[i] + s[i + 1]]
                if not every:
                    break
            i += 1
    return s


def longest_match(word, merges):
    vocab, rest, out = {a + b for a, b in merges}, word.replace(" ", "Ġ"), []
    while rest:
        k = max(k for k in range(1, len(rest) + 1) if k == 1 or rest[:k] in vocab)
        out, rest = [*out, rest[:k]], rest[k:]
    return out


def test_bpe_encode_right():
    assert_right(ex.check_bpe_encode(sol.bpe_encode))
    assert_right(ex.check_bpe_encode(learner_encode))
    assert_right(ex.check_bpe_encode(lambda w, m: learner_encode(w, m, order="each")))  # the same, for learnt merges


def test_bpe_encode_wrong():
    check = ex.check_bpe_encode
    assert_wrong(check(lambda w, m: learner_encode(w, m, space=" ")), "write a space as 'Ġ'")
    assert_wrong(check(lambda w, m: learner_encode(w.lstrip(), m)), "keep the word's leading space")
    assert_wrong(check(lambda w, m: learner_encode(" " + w.lstrip(), m)), "only a word that starts with a space")
    assert_wrong(check(lambda w, m: learner_encode(w, m[::-1])), "last-learnt first")
    assert_wrong(check(lambda w, m: learner_encode(w, m, order="leftmost")), "leftmost pair", "['a', 'bc']")
    assert_wrong(check(longest_match), "longest known token")
    assert_wrong(check(lambda w, m: learner_encode(w, m, order="each", every=False)), "every occurrence")
    assert_wrong(check(lambda w, m: learner_encode(w, sorted(m))), "smallest index")
    assert_wrong(check(lambda w, m: ["x"]), "spell")
    assert_wrong(check(lambda w, m: " ".join(learner_encode(w, m))), "list of strings")
    assert_not_done(check(stub))


# --- exercise 3: bits per byte ---------------------------------------------------------------------------


def test_bits_per_byte():
    ln2 = math.log(2)
    check = ex.check_bits_per_byte
    assert_right(check(sol.bits_per_byte))
    assert_right(check(lambda loss, t, text: loss * t * math.log2(math.e) / len(bytes(text, "utf-8"))))
    assert_wrong(check(lambda loss, t, text: loss * t / len(text)), "nats per character", "two changes", "bytes)")
    assert_wrong(check(lambda loss, t, text: loss * t / ln2 / len(text)), "count bytes")
    assert_wrong(check(lambda loss, t, text: loss * t / len(text.encode())), "in nats")
    assert_wrong(check(lambda loss, t, text: loss * t * ln2 / len(text.encode())), "wrong way")
    assert_wrong(check(lambda loss, t, text: loss * len(text.encode()) / t / ln2), "upside down")
    assert_wrong(check(lambda loss, t, text: loss / ln2), "total loss")
    assert_wrong(check(lambda loss, t, text: loss / ln2 / len(text.encode())), "total loss")
    assert_wrong(check(lambda loss, t, text: loss), "expected")
    assert_wrong(check(lambda loss, t, text: "1.5"), "number")
    assert_not_done(check(stub))


# --- exercise 4: counting a GPT-2's parameters -------------------------------------------------------------


def counted(config, tied_twice=False, untied_ignored=False, head_bias=False, linear_biases=True, norm_biases=True,
            norms=True, final_norm=True, positions=True, inner=True):
    """A learner's count, each keyword switching one mistake on (the defaults give the right count)."""
    d = config.n_embd
    h = (config.n_inner if inner else None) or 4 * d
    n = config.vocab_size * d + (config.n_positions * d if positions else 0)
    per_block = 4 * d * d + 2 * d * h + (5 * d + h if linear_biases else 0)
    per_block += (2 * d + (2 * d if norm_biases else 0)) if norms else 0
    n += config.n_layer * per_block + ((d + (d if norm_biases else 0)) if norms and final_norm else 0)
    if not config.tie_word_embeddings and not untied_ignored or tied_twice:
        n += config.vocab_size * d
    return n + (config.vocab_size if head_bias else 0)


def test_gpt2_parameters_right():
    assert_right(ex.check_gpt2_parameters(sol.gpt2_parameters))
    assert_right(ex.check_gpt2_parameters(counted))
    assert_right(ex.check_gpt2_parameters(lambda c: float(counted(c))))  # a float of the right value is a count


def test_gpt2_parameters_wrong():
    check = ex.check_gpt2_parameters
    assert_wrong(check(lambda c: counted(c, tied_twice=True)), "tied to the token embedding", "counted once")
    assert_wrong(check(lambda c: counted(c, untied_ignored=True)), "tie_word_embeddings=False", "n_layer=1")
    assert_wrong(check(lambda c: counted(c, head_bias=True)), "no bias")
    assert_wrong(check(lambda c: counted(c, linear_biases=False, norm_biases=False)), "every linear layer and every")
    assert_wrong(check(lambda c: counted(c, linear_biases=False)), "the linear layers have biases")
    assert_wrong(check(lambda c: counted(c, norm_biases=False)), "a bias as well as a weight")
    assert_wrong(check(lambda c: counted(c, norms=False)), "two per block")
    assert_wrong(check(lambda c: counted(c, final_norm=False)), "ln_f")
    assert_wrong(check(lambda c: counted(c, positions=False)), "position table")
    assert_wrong(check(lambda c: counted(c, inner=False)), "n_inner when it is set")
    assert_wrong(check(lambda c: counted(c) * c.n_head // 4), "n_head=2", "you counted")  # grows with the heads
    assert_wrong(check(lambda c: counted(c) + 0.5), "you counted")
    assert_wrong(check(lambda c: str(counted(c))), "number")
    assert_wrong(check(lambda c: sum(p.numel() for p in GPT2LMHeadModel(c).parameters())),
                 "GPT2LMHeadModel(...)", "count each layer")
    assert_not_done(check(stub))


# --- exercise 5: labels for a padded batch -----------------------------------------------------------------


def sft(ids, mask, prompt, fill=-100, count=None):
    count = mask.cumsum(1) if count is None else count
    return ids.masked_fill((mask == 0) | (count <= prompt[:, None]), fill)


def test_lm_labels_right():
    assert_right(ex.check_lm_labels(sol.lm_labels))
    assert_right(ex.check_lm_labels(lambda ids, mask, prompt: sft(ids, mask, prompt)))


def test_lm_labels_wrong():
    check = ex.check_lm_labels

    def in_place(ids, mask, prompt):
        ids[mask == 0] = -100
        return ids

    assert_wrong(check(in_place), "changed input_ids in place")
    assert_wrong(check(lambda ids, mask, prompt: ids.clone()), "padding is still learnt")
    assert_wrong(check(lambda ids, mask, prompt: ids.masked_fill(mask == 0, -100)), "prompt is still learnt")
    assert_wrong(check(lambda ids, mask, prompt: sft(ids, (ids != 0).long(), prompt)), "found the padding by its id")
    assert_wrong(check(lambda ids, mask, prompt: sft(ids, mask, prompt, 0)), "not 0 or the pad id")
    assert_wrong(check(lambda ids, mask, prompt: sft(ids, mask, prompt)[:, 1:]), "one shorter")
    assert_wrong(check(lambda ids, mask, prompt: sft(ids, mask, prompt).roll(-1, dims=1)), "shifted by one")
    assert_wrong(check(lambda ids, mask, prompt: ids.masked_fill(mask == 1, -100)), "wrong way round")
    assert_wrong(check(lambda ids, mask, prompt: sft(ids, mask, prompt, count=torch.arange(1, 7)[None])),
                 "starts after the padding")
    assert_wrong(check(lambda ids, mask, prompt: sft(ids, mask, prompt + 1)), "one token too long")
    assert_wrong(check(lambda ids, mask, prompt: sft(ids, mask, prompt).tolist()), "return a tensor")
    assert_wrong(check(lambda ids, mask, prompt: sft(ids, mask, prompt)[:2]), "shape of input_ids")
    assert_not_done(check(stub))


# --- exercise 6: the rule-based normaliser ---------------------------------------------------------------


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
    assert_right(ex.check_normalise_date(sol.normalise_date))
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
    assert_not_done(ex.check_normalise_date(stub))


# --- exercise 7: transposition -------------------------------------------------------------------------------


def transpose(tokens, k):
    out = []
    for t in tokens:
        note = music.parse_token(t)
        out.append(t if note is None or note.pitch is None else music.note_token(music.Note(note.pitch + k,
                                                                                              note.quarters)))
    return out


def test_transpose_right():
    assert_right(ex.check_transpose(sol.transpose))
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
    assert_wrong(ex.check_transpose(lambda t, k: list(t)), "nothing was transposed", "by 2 semitones")
    assert_not_done(ex.check_transpose(stub))
