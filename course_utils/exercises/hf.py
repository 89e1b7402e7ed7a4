"""The exercise checkers of notebook 06 (transformers with Hugging Face); the references are in solutions/hf.py."""

from __future__ import annotations

import datetime as dt
import functools
import math
import random
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from course_utils import bpe, music, seq2seq
from course_utils.exercises import Wrong, as_number, call, call_refusing, checker, close, not_done

# --- exercise 1: BPE merges by hand (section 1) ---------------------------------------------------------------

BPE_COUNTS = {"hug": 7, "pug": 7, "pun": 1, "bun": 5, "hugs": 9}  # no two pairs tie in the first six merges
BPE_CORPUS = tuple(w for w, n in BPE_COUNTS.items() for _ in range(n))
REPEATS = ("aaaa", "aaaa", "ab")  # a pair that occurs several times inside one word


def _library_merges(words: Sequence[str], num_merges: int) -> list[tuple[str, str]]:
    """The merges that the ``tokenizers`` library's BPE trainer learns from ``words`` (each word its own piece)."""
    alphabet = set("".join(words))
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.train_from_iterator([" ".join(words)],
                            trainers.BpeTrainer(vocab_size=len(alphabet) + num_merges, show_progress=False))
    return bpe.merges(tok)


def _mistaken_merges(words: Sequence[str], num_merges: int, weighted: bool = True,
                     first_only: bool = False) -> list[tuple[str, str]]:
    """BPE training as two common mistakes compute it: distinct words counted once, or one merge per word."""
    counts = Counter(words) if weighted else Counter(set(words))
    seqs = {w: list(w) for w in counts}
    merges: list[tuple[str, str]] = []
    for _ in range(num_merges):
        pairs: Counter = Counter()
        for w, n in counts.items():
            for pair in zip(seqs[w], seqs[w][1:], strict=False):
                pairs[pair] += n
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
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


@checker(solution="bpe_merges")
def check_bpe_merges(merges_fn: Callable[[list[str], int], Any]) -> str:
    """``merges_fn(words, num_merges)``: the first ``num_merges`` BPE merges of a list of words."""
    words, n = list(BPE_CORPUS), 6
    got = _merge_list(call(merges_fn, "your function", list(words), n))
    want = _library_merges(words, n)
    if got == want:
        repeats = _merge_list(call(merges_fn, "your function", list(REPEATS), 2))
        if repeats != _library_merges(REPEATS, 2):
            raise Wrong(f"right on the first corpus, but on {list(REPEATS)} you give {repeats}, not "
                        f"{_library_merges(REPEATS, 2)}: in 'aaaa' the pair ('a', 'a') occurs 3 times "
                        "when counting, and merging every occurrence left to right gives 'aa' 'aa'")
        return (f"{', '.join(a + '+' + b for a, b in got)}: the merges the tokenizers library's BPE trainer "
                "learns from these words")
    if len(got) != n:
        raise Wrong(f"asked for {n} merges, got {len(got)}")
    if got == _mistaken_merges(words, n, weighted=False):
        raise Wrong("count each occurrence of a word: 'hugs' appears 9 times, so its pairs count 9 times "
                    "(you counted each distinct word once)")
    if got == _mistaken_merges(words, n, first_only=True):
        raise Wrong("merge every occurrence of the chosen pair in a word, not only the first one")
    if got[0] == want[0]:
        k = next(i for i in range(n) if got[i] != want[i])
        raise Wrong(f"the first {k} merges are right, merge {k + 1} should be {want[k]}, not {got[k]}: after a "
                    "merge, recount the pairs of the new symbols (a merged symbol like 'es' pairs with its neighbours)")
    raise Wrong(f"the first merge should be {want[0]} (the most frequent adjacent pair over all words), not {got[0]}")


# --- exercise 2: encoding a word with learnt merges (section 1) -----------------------------------------------

ENCODE_TEXT = ("the cat sat on the mat and the rat sat on the hat that the cat had then these three thin cats "
               "ate the rats in the attic as the mother of the mathematicians sat at the theatre\n") * 3
ENCODE_WORDS = (" the", " theses", " mathematician", "heathen", " athletes", " banana", " reread", " thatch")
ABC = ("abc", (("b", "c"), ("a", "b")), ["a", "bc"])  # ('b', 'c') was learnt first: it wins over ('a', 'b')


@functools.lru_cache(maxsize=1)
def _encode_cases() -> tuple[tuple[str, tuple[tuple[str, str], ...], list[str]], ...]:
    """(word, merges, the library's tokens): words drawn (seeded) from a short text and some new ones."""
    tok = bpe.train_bpe(ENCODE_TEXT, vocab_size=300)  # the course's byte-level BPE: 43 merges
    merges = tuple(bpe.merges(tok))
    rng = random.Random(5)
    drawn = [" " * rng.randint(0, 1) + w for w in rng.sample(sorted(set(ENCODE_TEXT.split())), 8)]
    return tuple((w, merges, tok.tokenize(w)) for w in [*drawn, *ENCODE_WORDS])


def _symbols(word: str) -> list[str]:
    return ["Ġ" if ch == " " else ch for ch in word]


def _merged(s: list[str], pair: tuple[str, str]) -> list[str]:
    out, i = [], 0
    while i < len(s):
        if tuple(s[i:i + 2]) == pair:
            out, i = [*out, s[i] + s[i + 1]], i + 2
        else:
            out, i = [*out, s[i]], i + 1
    return out


def _by_rank(word: str, merges: Sequence[tuple[str, str]]) -> list[str]:
    """BPE encoding: merge the adjacent pair learnt earliest, everywhere, until no pair is a merge."""
    rank, s = {pair: i for i, pair in enumerate(merges)}, _symbols(word)
    while known := [p for p in zip(s, s[1:], strict=False) if p in rank]:
        s = _merged(s, min(known, key=rank.__getitem__))
    return s


def _leftmost(word: str, merges: Sequence[tuple[str, str]]) -> list[str]:
    """A mistake: merge the leftmost adjacent pair that is any merge, again and again."""
    known, s = set(merges), _symbols(word)
    while (i := next((i for i, p in enumerate(zip(s, s[1:], strict=False)) if p in known), None)) is not None:
        s = [*s[:i], s[i] + s[i + 1], *s[i + 2:]]
    return s


def _longest_match(word: str, merges: Sequence[tuple[str, str]]) -> list[str]:
    """A mistake: cut the longest known token off the front, again and again (WordPiece's rule)."""
    vocab, rest, out = {a + b for a, b in merges}, "".join(_symbols(word)), []
    while rest:
        k = next(k for k in range(len(rest), 0, -1) if k == 1 or rest[:k] in vocab)
        out, rest = [*out, rest[:k]], rest[k:]
    return out


def _each_merge_once(word: str, merges: Sequence[tuple[str, str]]) -> list[str]:
    """A mistake: go through the merges in order, merging only the first occurrence of each."""
    s = _symbols(word)
    for pair in merges:
        i = next((i for i, p in enumerate(zip(s, s[1:], strict=False)) if p == pair), None)
        if i is not None:
            s = [*s[:i], s[i] + s[i + 1], *s[i + 2:]]
    return s


def _tokens(value: Any, word: str) -> list[str]:
    not_done(value)
    if not isinstance(value, (list, tuple)) or not all(isinstance(t, str) for t in value):
        raise Wrong(f"return the tokens as a list of strings, such as ['Ġthe', 'n']; for {word!r} you return "
                    f"{value!r}")
    return list(value)


@checker(solution="bpe_encode")
def check_bpe_encode(encode_fn: Callable[[str, list[tuple[str, str]]], Any]) -> str:
    """``encode_fn(word, merges)``: the BPE tokens of one word, as the ``tokenizers`` library cuts it."""
    cases = [ABC, *_encode_cases()]
    answers = [(w, m, want, _tokens(call(encode_fn, "your function", w, list(m)), w)) for w, m, want in cases]
    wrong = [a for a in answers if a[3] != a[2]]
    if not wrong:
        example = next(want for w, _, want, _ in answers if w == " mathematician")
        return (f"{len(cases)} words cut exactly as the tokenizers library cuts them, e.g. ' mathematician' -> "
                f"{example}: the merges replayed in the order they were learnt")
    word, merges, want, got = wrong[0]
    marked, spelled = "".join(_symbols(word)), "".join(got)
    if " " in spelled:
        raise Wrong(f"write a space as 'Ġ', as the byte-level alphabet does: the merges know 'Ġ', never ' ' "
                    f"({word!r} starts from {_symbols(word)})")
    if spelled != marked:
        if spelled == marked.removeprefix("Ġ"):
            raise Wrong(f"keep the word's leading space, as the symbol 'Ġ': {word!r} starts from {_symbols(word)}, "
                        "and merges such as ('Ġ', 't') join the space to the word")
        if spelled == "Ġ" + marked:
            raise Wrong(f"only a word that starts with a space gets 'Ġ': {word!r} has none")
        raise Wrong(f"your tokens for {word!r} spell {spelled!r}; merging only joins neighbours, so together they "
                    f"should spell {marked!r}")
    mistakes = (
        (lambda w, m: _by_rank(w, m[::-1]), "you apply the merges last-learnt first; merges[0] was learnt first "
         "and goes first (a pair's index in merges is its rank: the lower, the earlier)"),
        (_longest_match, "you cut the longest known token off the front (WordPiece's greedy longest match); BPE "
         "replays the merges instead, the earliest learnt first"),
        (_leftmost, "you merge the leftmost pair that is a merge; BPE merges the pair learnt earliest, wherever it "
         "is: with merges [('b', 'c'), ('a', 'b')], 'abc' becomes ['a', 'bc'], not ['ab', 'c']"),
        (_each_merge_once, "merge every occurrence of a pair in the word, not only the first one "
         f"({word!r} should give {want}, not {got})"),
    )
    for mistake, hint in mistakes:
        if all(g == mistake(w, m) for w, m, _, g in wrong):
            raise Wrong(hint)
    raise Wrong(f"{word!r} should give {want}, not {got}: again and again, find the adjacent pair with the smallest "
                "index in merges and merge it everywhere in the word; stop when no adjacent pair is a merge")


# --- exercise 3: a loss per token in bits per byte (section 1) ------------------------------------------------

BYTE_CASES = ((3.1, 14, "Zwölf Boxkämpfer jagen Viktor quer über den großen Sylter Deich"),
              (4.2, 1000, "ROMEO:\nBut, soft! what light through yonder window breaks?\n" * 40),
              (2.5, 9, "naïve café, 東京 and Zürich"))


@checker(solution="bits_per_byte")
def check_bits_per_byte(fn: Callable[[float, int, str], Any]) -> str:
    """``fn(loss_per_token, num_tokens, text)``: the same loss in bits per UTF-8 byte of the text."""
    ln2 = math.log(2)
    for loss, tokens, text in BYTE_CASES:
        got = as_number(call(fn, "your function", loss, tokens, text), "your bits per byte")
        chars, nbytes, total = len(text), len(text.encode("utf-8")), loss * tokens
        if close(got, total / ln2 / nbytes, 1e-6):
            continue
        case = f"for {loss} nats/token over {tokens} tokens of {text[:24]!r}... ({chars} characters, {nbytes} bytes)"
        if close(got, total / chars, 1e-6):
            raise Wrong(f"that is nats per character, the formula above; make two changes, nats to bits and "
                        f"characters to bytes ({case})")
        if close(got, total / ln2 / chars, 1e-6):
            raise Wrong(f"count bytes, not characters: {case}; 'ö' is one character but two bytes in UTF-8 "
                        "(len(text.encode('utf-8')))")
        if close(got, total / nbytes, 1e-6):
            raise Wrong("that is in nats; one bit is log 2 nats, so divide the nats by math.log(2)")
        if close(got, total * ln2 / nbytes, 1e-6):
            raise Wrong("multiplying by log 2 goes the wrong way: a bit is smaller than a nat (1 bit = 0.693 nats), "
                        "so the same loss is more bits than nats: divide by math.log(2)")
        if close(got, loss * nbytes / tokens / ln2, 1e-6):
            raise Wrong("the ratio is upside down: the total is loss_per_token * num_tokens; spread it over the bytes")
        if close(got, loss / ln2, 1e-6) or close(got, loss / ln2 / nbytes, 1e-6):
            raise Wrong("first the total loss of the text, loss_per_token * num_tokens nats; then spread it over the "
                        "bytes, in bits")
        raise Wrong(f"{case} expected {total / ln2 / nbytes:.4f} bits per byte, got {got:.4f}")
    return ("bits/byte = nats/token x tokens / log 2 / bytes: a unit that compares any two tokenizers, and the "
            "size an ideal coder driven by the model would compress the text to, in bits per byte")


# --- exercise 4: counting a GPT-2's parameters (section 2) ---------------------------------------------------

COUNT_CASES = (  # GPT2Config fields: the sizes of section 2's model, an MLP of its own width, an untied output
    {"vocab_size": 500, "n_positions": 32, "n_layer": 2, "n_head": 4, "n_embd": 64},
    {"vocab_size": 97, "n_positions": 16, "n_layer": 3, "n_head": 2, "n_embd": 24, "n_inner": 40},
    {"vocab_size": 300, "n_positions": 24, "n_layer": 1, "n_head": 8, "n_embd": 32, "tie_word_embeddings": False},
    {"vocab_size": 500, "n_positions": 32, "n_layer": 2, "n_head": 16, "n_embd": 64},  # the first, other heads
)


def _count_parts(config: Any) -> dict[str, int]:
    """The parts of ``GPT2LMHeadModel(config)``'s parameter count that a mistaken formula leaves out or adds."""
    d, v, p, layers = config.n_embd, config.vocab_size, config.n_positions, config.n_layer
    h = config.n_inner or 4 * d  # the MLP's width
    return {"positions": p * d, "vocab": v, "linear biases": layers * (5 * d + h),
            "norm weights": layers * 2 * d + d, "norm biases": layers * 2 * d + d, "final norm": 2 * d,
            "output": 0 if config.tie_word_embeddings else v * d, "embedding": v * d,
            "mlp if 4d": layers * (2 * d * 4 * d + 4 * d) - layers * (2 * d * h + h)}


def _count_mistake(got: int, config: Any, right: int) -> str | None:
    """The hint for a count that is off in a way a learner's formula typically is, or None."""
    part = _count_parts(config)
    tied = config.tie_word_embeddings
    known = [
        (right + part["embedding"] if tied else None, "the output layer is tied to the token embedding "
         "(tie_word_embeddings=True): one matrix, counted once"),
        (right - part["output"] if not tied else None, "this config has tie_word_embeddings=False: the output layer is "
         "a matrix of its own, vocab_size x n_embd, beside the token embedding"),
        (right + part["vocab"], "the output layer has no bias in GPT-2 (print the model: lm_head has bias=False)"),
        (right - part["linear biases"] - part["norm biases"], "GPT-2 has biases: in every linear layer and every layer "
         "norm (05's bias=False is the switch section 2 turns on)"),
        (right - part["linear biases"], "the linear layers have biases too: c_attn, c_proj, c_fc and the MLP's c_proj "
         "(05's bias=False is the switch section 2 turns on)"),
        (right - part["norm biases"], "a layer norm has a bias as well as a weight, n_embd numbers each"),
        (right - part["norm weights"] - part["norm biases"], "the layer norms: two per block (ln_1, ln_2) and one "
         "at the end (ln_f), each a weight and a bias of n_embd numbers"),
        (right - part["final norm"], "the final layer norm, ln_f, after the last block"),
        (right - part["positions"], "the position table: GPT-2 learns one vector per position, n_positions x n_embd"),
        (right + part["mlp if 4d"] if config.n_inner else None, "the MLP's width is config.n_inner when it is set; "
         "4 * n_embd only when it is None"),
    ]
    return next((hint for count, hint in known if count is not None and got == count), None)


@checker(solution="gpt2_parameters")
def check_gpt2_parameters(count_fn: Callable[[Any], Any]) -> str:
    """``count_fn(config)``: the number of parameters of ``GPT2LMHeadModel(config)``, from the config alone."""
    import transformers  # lazy: importing transformers takes seconds
    from transformers import GPT2Config

    shortcuts = [(transformers.GPT2LMHeadModel, "__init__", "GPT2LMHeadModel(...)"),
                 (transformers.GPT2Model, "__init__", "GPT2Model(...)")]
    for fields in COUNT_CASES:
        config = GPT2Config(**fields, bos_token_id=0, eos_token_id=0, pad_token_id=0)
        got = as_number(call_refusing(shortcuts, "count from the config's fields", count_fn, "your function", config,
                                      advice="count each layer's weights and biases from the config"),
                        "the count")
        right = sum(p.numel() for p in transformers.GPT2LMHeadModel(config).parameters())  # tied: counted once
        if got != right:
            case = ", ".join(f"{k}={v}" for k, v in fields.items())
            hint = _count_mistake(int(got), config, right) if float(got).is_integer() else None
            raise Wrong(f"for GPT2Config({case}): {hint}" if hint else
                        f"for GPT2Config({case}) the model has {right:,} parameters; you counted {got:,.0f} "
                        f"({got - right:+,.0f}); print a model built from it to see its layers")
    return ("right on every config: the count grows with n_embd squared in the blocks and with vocab_size in the "
            "tables, and the number of heads does not change it (n_head=4 and n_head=16 give the same count)")


# --- exercise 5: labels for a padded batch (section 2.6) -----------------------------------------------------

END_ID = 0  # the end-of-text token, which is also the padding token (as in GPT-2)
LABEL_BATCHES = (
    # three prompt + answer rows, each ending with its end token, padded on the right with the same id
    (torch.tensor([[5, 9, 3, 0, 0, 0], [7, 2, 8, 4, 6, 0], [3, 3, 0, 0, 0, 0]]),
     torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]]), torch.tensor([2, 3, 1])),
    # the same, padded on the left: each prompt starts after its row's padding
    (torch.tensor([[0, 0, 5, 9, 3, 0], [7, 2, 8, 4, 6, 0], [0, 0, 0, 3, 3, 0]]),
     torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1]]), torch.tensor([2, 3, 1])),
)


def _sft_labels(ids: torch.Tensor, mask: torch.Tensor, prompt: torch.Tensor, fill: int = -100) -> torch.Tensor:
    """The reference: ``fill`` on the padding and on the first ``prompt[i]`` real tokens of row ``i``."""
    return ids.masked_fill((mask == 0) | (mask.cumsum(1) <= prompt[:, None]), fill)


@checker(solution="lm_labels")
def check_lm_labels(labels_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], Any]) -> str:
    """``labels_fn(input_ids, attention_mask, prompt_lengths)``: -100 on the padding and the prompt, not shifted."""
    for ids, mask, prompt in LABEL_BATCHES:
        ids, mask, prompt = ids.clone(), mask.clone(), prompt.clone()  # the function may change them in place
        before = ids.clone()
        got = call(labels_fn, "your function", ids, mask, prompt)
        not_done(got)
        if not torch.equal(ids, before):
            raise Wrong("your function changed input_ids in place: the model reads them too. Start from "
                        "input_ids.clone()")
        if not isinstance(got, torch.Tensor):
            raise Wrong(f"return a tensor of the same shape as input_ids; got {type(got).__name__}")
        want = _sft_labels(ids, mask, prompt)
        if torch.equal(got, want):
            continue
        if got.shape != ids.shape:
            if got.shape[-1] == ids.shape[-1] - 1:
                raise Wrong("your labels are one shorter: do not shift them. A Hugging Face causal LM compares "
                            "the logits at t with the labels at t + 1 itself")
            raise Wrong(f"labels have the shape of input_ids, {tuple(ids.shape)}; got {tuple(got.shape)}")
        pad_only = ids.masked_fill(mask == 0, -100)
        if torch.equal(got, ids) or torch.equal(got, ids.masked_fill(mask.cumsum(1) <= prompt[:, None], -100)):
            raise Wrong("the padding is still learnt: where attention_mask is 0 the label must be -100, which the "
                        "loss ignores")
        if torch.equal(got, pad_only):
            raise Wrong("the padding is right, but the prompt is still learnt: its first prompt_lengths[i] real "
                        "tokens must be -100 too, so that the loss is on the answer only")
        if torch.equal(got, _sft_labels(ids, (ids != END_ID).long(), prompt)):
            raise Wrong("you found the padding by its id; here the pad id is also the end token (as in GPT-2), so "
                        "every row's real end token was dropped too. Use attention_mask == 0")
        if torch.equal(got, _sft_labels(ids, mask, prompt, END_ID)):  # END_ID is 0: the pad id and 0 at once
            raise Wrong("the ignored label is -100 (CrossEntropyLoss's ignore_index), not 0 or the pad id")
        if torch.equal(got[:, :-1], want[:, 1:]) or torch.equal(got[:, 1:], want[:, :-1]):
            raise Wrong("your labels are shifted by one: do not shift them, the model does it itself")
        if torch.equal(got, ids.masked_fill(mask == 1, -100)):
            raise Wrong("the mask is the wrong way round: attention_mask is 1 on real tokens and 0 on the padding")
        from_zero = torch.arange(ids.shape[1])[None] < prompt[:, None]
        if torch.equal(got, ids.masked_fill((mask == 0) | from_zero, -100)):
            raise Wrong("on a row padded on the left the prompt starts after the padding, not at position 0: "
                        "count the real tokens (attention_mask.cumsum(1) numbers them 1, 2, ...)")
        for shift in (-1, 1):
            if torch.equal(got, _sft_labels(ids, mask, prompt + shift)):
                raise Wrong(f"your prompt is one token {'too short' if shift < 0 else 'too long'}: row i's prompt "
                            f"is exactly its first prompt_lengths[i] real tokens")
        row, col = (got != want).nonzero()[0].tolist()
        raise Wrong(f"row {row}, position {col}: expected {int(want[row, col])}, got {int(got[row, col])}")
    return ("padding and prompts ignored (-100), every answer token learnt, each row's end token included; the "
            "model shifts the labels itself")


# --- exercise 6: a rule-based date normaliser (section 4) -----------------------------------------------------


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


@checker(solution="normalise_date")
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


# --- exercise 7: transposing a melody (section 5) -------------------------------------------------------------


def _transposed(tokens: Sequence[str], semitones: int) -> list[str]:
    """The expected answer, computed on the token strings: the pitch name moves, the rest stays."""
    out = []
    for token in tokens:
        head, _, duration = token.partition("_")
        kept = token.startswith("<") or head == music.REST
        out.append(token if kept else f"{music.midi_name(music.midi_of(head) + semitones)}_{duration}")
    return out


@checker(solution="transpose")
def check_transpose(transpose_fn: Callable[[list[str], int], Any]) -> str:
    """``transpose_fn(tokens, semitones)``: the melody's tokens with every pitch moved, rests and markers unchanged."""
    melody = ["<minor>", "A4_1", "B4_0.5", "C5_0.5", "R_1", "G#4_2", "E5_1.5", "<end>"]
    for shift in (2, -3, 12, 0):
        got = call(transpose_fn, "your function", list(melody), shift)
        not_done(got)
        if not isinstance(got, list) or not all(isinstance(t, str) for t in got):
            raise Wrong(f"return a list of token strings; got {type(got).__name__}")
        want = _transposed(melody, shift)
        if got == want:
            continue
        if got == melody and shift:
            raise Wrong(f"your tokens come back unchanged: nothing was transposed (asked to move the pitches by "
                        f"{shift} semitones)")
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
    return ("pitches move, durations, rests and markers stay: the transposition that augments music data, one "
            "version of a melody in each of the twelve keys")
