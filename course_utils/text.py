"""Text as characters: a vocabulary, bigram counts, sampling from logits, and measuring generated text.

- :class:`Vocab` and :func:`build_vocab`: characters and their indices, with an
  optional **boundary token** at index 0 that starts and ends every word
  (notebook 01's names use ``'.'``; a vocabulary of Shakespeare, which contains
  ``'.'``, has none: notebook 05).
- The bigram helpers (:func:`bigram_pairs`, :func:`bigram_counts`,
  :func:`counts_to_probs`, :func:`nll_per_char`, :func:`sample_names`, and
  :func:`ngram_nll` for longer contexts) and
  :class:`NeuralBigram`: the simplest autoregressive model (01, section 3), the
  baseline of the transformer notebooks.
- Sampling from **logits** with a temperature, top-k and top-p
  (:func:`filter_logits`, :func:`sample_logits`): one implementation, used by
  the bigram of 01 and the transformers of 05 and 06.
- Measuring generated text (05, sections 3.1 and 4.3; 07, section 3): :func:`distinct_n`
  and :func:`repetition_rate` on :func:`words` or any token sequence
  (:func:`ngrams`), their character-level forms :func:`char_distinct_n` and
  :func:`char_repetition_rate`, :func:`token_log_probs` and :func:`mean_log_prob`, the
  memorisation checks :func:`ngram_overlap` (with :func:`ngram_set`) and
  :func:`longest_copied_span`, and :func:`known_word_share` (with :func:`word_set`),
  a cheap check of spelling.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

# --- the vocabulary ------------------------------------------------------------------------


@dataclass(frozen=True)
class Vocab:
    """Characters and their indices.

    With a ``boundary`` token it is ``itos[0]``, and :meth:`encode_word` wraps a
    word in it (``'.emma.'``): the start and the end of a word become
    predictions like any other.
    """

    itos: tuple[str, ...]
    boundary: str | None = None

    def __post_init__(self) -> None:
        if not self.itos:
            raise ValueError("a vocabulary needs at least one symbol")
        if len(set(self.itos)) != len(self.itos):
            raise ValueError("symbols must be distinct")
        if self.boundary is not None and self.itos[0] != self.boundary:
            raise ValueError(f"the boundary token {self.boundary!r} must be the first symbol")

    @property
    def stoi(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        """The indices of ``text``'s characters."""
        stoi = self.stoi
        try:
            return [stoi[c] for c in text]
        except KeyError as exc:
            raise ValueError(f"{text[:40]!r} holds {exc.args[0]!r}, which is not in the vocabulary") from None

    def encode_word(self, word: str) -> list[int]:
        """``boundary + word + boundary`` as indices: the start token, the characters, the end token."""
        if self.boundary is None:
            raise ValueError("this vocabulary has no boundary token: use encode(), or build_vocab(..., boundary='.')")
        if self.boundary in word:
            raise ValueError(f"{word!r} contains the boundary token {self.boundary!r}")
        return self.encode(self.boundary + word + self.boundary)

    def decode(self, indices: Iterable[int]) -> str:
        return "".join(self.itos[int(i)] for i in indices)


def build_vocab(texts: str | Iterable[str], boundary: str | None = None) -> Vocab:
    """Every character of ``texts`` (a string or strings), sorted; ``boundary`` first if given."""
    chars = sorted(set("".join(texts) if not isinstance(texts, str) else texts))
    if boundary is not None:
        if len(boundary) != 1:
            raise ValueError(f"the boundary token must be one character, got {boundary!r}")
        if boundary in chars:
            raise ValueError(f"the texts may not contain the boundary token {boundary!r}")
        chars = [boundary, *chars]
    return Vocab(tuple(chars), boundary)


# --- bigrams (notebook 01, section 3) -----------------------------------------------------------


def bigram_pairs(words: Sequence[str], vocab: Vocab) -> tuple[torch.Tensor, torch.Tensor]:
    """(current, next) index pairs, ``L + 1`` per word of ``L`` characters: boundary → first … last → boundary."""
    xs: list[int] = []
    ys: list[int] = []
    for word in words:
        ids = vocab.encode_word(word)
        xs.extend(ids[:-1])
        ys.extend(ids[1:])
    return torch.tensor(xs, dtype=torch.long), torch.tensor(ys, dtype=torch.long)


def bigram_counts(words: Sequence[str], vocab: Vocab) -> torch.Tensor:
    """``[V, V]`` float counts: entry ``[i, j]`` is how often symbol ``j`` follows symbol ``i``."""
    return pair_counts(*bigram_pairs(words, vocab), len(vocab))


def pair_counts(xs: torch.Tensor, ys: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """``[V, V]`` float counts of (current, next) index pairs."""
    if xs.shape != ys.shape or xs.ndim != 1:
        raise ValueError(f"xs and ys must be 1-D and of the same length, got {tuple(xs.shape)}, {tuple(ys.shape)}")
    if len(xs) and (min(xs.min(), ys.min()) < 0 or max(xs.max(), ys.max()) >= vocab_size):
        raise ValueError(f"indices must lie in 0..{vocab_size - 1}")
    v = vocab_size
    return torch.bincount(xs * v + ys, minlength=v * v).reshape(v, v).float()


def stream_pairs(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(current, next) pairs of one running text (no boundary token): the bigram baseline of notebook 05."""
    if ids.ndim != 1 or len(ids) < 2:
        raise ValueError(f"need a 1-D sequence of at least two indices, got shape {tuple(ids.shape)}")
    return ids[:-1], ids[1:]


def counts_to_probs(counts: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Add-$\\alpha$ smoothed, row-normalised probabilities.

    $P[i, j] = (N_{ij} + \\alpha) / \\sum_{j'} (N_{ij'} + \\alpha)$; row ``i`` is p(next | current = i).
    """
    if alpha < 0:
        raise ValueError(f"alpha must be non-negative, got {alpha}")
    smoothed = counts.float() + alpha
    return smoothed / smoothed.sum(dim=1, keepdim=True)


def nll_per_char(probs: torch.Tensor, words: Sequence[str], vocab: Vocab) -> float:
    """Mean negative log-likelihood in nats per predicted symbol (every character and the end token).

    ``inf`` when the model gives some pair of the words probability 0.
    """
    xs, ys = bigram_pairs(words, vocab)
    p = probs.detach().float().cpu()[xs, ys]
    return float(-p.log().mean())


def ngram_nll(train_words: Sequence[str], val_words: Sequence[str], vocab: Vocab, n: int, alpha: float = 1.0) -> float:
    """Held-out NLL in nats per symbol of an add-``alpha`` n-gram model: each symbol from the ``n - 1`` before it.

    Every word is padded with ``n - 1`` boundary tokens in front and one at the end, so a word of ``L``
    characters makes ``L + 1`` predictions; ``n = 2`` is the bigram of :func:`counts_to_probs` and
    :func:`nll_per_char`.
    """
    if n < 1 or vocab.boundary is None or alpha <= 0:
        raise ValueError("ngram_nll needs n >= 1, a vocabulary with a boundary token, and alpha > 0")

    def grams(words: Sequence[str]) -> Iterable[tuple[str, str]]:
        """(context, next symbol) for every prediction."""
        for word in words:
            padded = vocab.boundary * (n - 1) + word + vocab.boundary
            for i in range(len(word) + 1):
                yield padded[i:i + n - 1], padded[i + n - 1]

    pairs = Counter(grams(train_words))
    contexts = Counter()
    for (context, _), count in pairs.items():
        contexts[context] += count
    nll = [-math.log((pairs[g] + alpha) / (contexts[g[0]] + alpha * len(vocab))) for g in grams(val_words)]
    return sum(nll) / len(nll)


class NeuralBigram(nn.Module):
    """The bigram as a one-layer network: the logits for the next symbol are row ``x`` of a ``[V, V]`` weight.

    ``W[x]`` is the same as ``one_hot(x) @ W``, without building the one-hot matrix.
    Initialised at zero, it starts as the uniform model (loss $\\log V$).
    """

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(vocab_size, vocab_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight[x]

    def probs(self) -> torch.Tensor:
        """The ``[V, V]`` table of next-symbol probabilities, comparable with :func:`counts_to_probs`."""
        return F.softmax(self.weight, dim=1)


# --- sampling from logits (01, 05, 06) --------------------------------------------------------


def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """Set to ``-inf`` every logit outside the top ``k`` and outside the nucleus of mass ``p`` (last dim).

    - **top-k** keeps the ``k`` largest logits (ties with the ``k``-th are kept);
    - **top-p** (nucleus) keeps the most likely tokens until their probability
      reaches ``p``: a token is dropped when the tokens above it already hold
      ``p`` of the mass, so the most likely token always stays.

    Applied in that order, as Hugging Face's ``generate`` does (notebook 06 checks it).
    """
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        k = min(top_k, logits.shape[-1])
        kth = torch.topk(logits, k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        mass_before = probs.cumsum(dim=-1) - probs
        drop_sorted = mass_before >= top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def logits_to_probs(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
) -> torch.Tensor:
    """The sampling distribution: ``softmax(filter(logits / T))``. ``T < 1`` sharpens, ``T > 1`` flattens."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive (use greedy decoding for T -> 0), got {temperature}")
    return filter_logits(logits.float() / temperature, top_k, top_p).softmax(dim=-1)


def sample_logits(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One draw per row of ``[..., V]`` logits (``[...]`` indices), after temperature, top-k and top-p.

    The draw is made on ``generator``'s device (the CPU for a seeded
    ``torch.Generator()``), so a seed gives the same text on every device.
    """
    probs = logits_to_probs(logits, temperature, top_k, top_p)
    flat = probs.reshape(-1, probs.shape[-1])
    if generator is not None:
        flat = flat.to(generator.device)
    picks = torch.multinomial(flat, 1, generator=generator).reshape(probs.shape[:-1])
    return picks.to(logits.device)


def apply_temperature(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """Rows of $p^{1/T}$, renormalised: :func:`logits_to_probs` on ``log p`` (01, section 3.6)."""
    return logits_to_probs(probs.float().log(), temperature)


def sample_names(
    probs: torch.Tensor, vocab: Vocab, n: int, generator: torch.Generator | None = None,
    temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None, max_len: int = 50,
) -> list[str]:
    """Sample ``n`` words from a bigram table: start at the boundary, draw the next symbol until it comes again."""
    if vocab.boundary is None:
        raise ValueError("sampling words needs a vocabulary with a boundary token")
    logits = probs.detach().float().cpu().log()
    words = []
    for _ in range(n):
        ids: list[int] = []
        current = 0
        while len(ids) < max_len:
            current = int(sample_logits(logits[current], temperature, top_k, top_p, generator))
            if current == 0:
                break
            ids.append(current)
        words.append(vocab.decode(ids))
    return words


# --- measuring generated text (notebooks 05 and 07) ---------------------------------------------------------------


def words(text: str) -> list[str]:
    """``text`` split on whitespace: the tokens of the word-level text metrics."""
    if not isinstance(text, str):
        raise ValueError(f"words() takes a string, got {type(text).__name__}")
    return text.split()


def _as_tokens(tokens: str | Sequence[Any]) -> list[Any]:
    """A string becomes its words; any other sequence (characters, indices) is used as it is."""
    if isinstance(tokens, str):
        return words(tokens)
    if isinstance(tokens, torch.Tensor):
        return tokens.flatten().tolist()
    return list(tokens)


def ngrams(tokens: str | Sequence[Any], n: int) -> list[tuple[Any, ...]]:
    """The ``n``-grams of ``tokens`` (a string: of its words), in order, overlapping."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    t = _as_tokens(tokens)
    return [tuple(t[i:i + n]) for i in range(len(t) - n + 1)]


def _ngrams_or_raise(tokens: str | Sequence[Any], n: int) -> list[tuple[Any, ...]]:
    grams = ngrams(tokens, n)
    if not grams:
        raise ValueError(f"the text has fewer than {n} tokens: no {n}-grams to measure")
    return grams


def distinct_n(tokens: str | Sequence[Any], n: int) -> float:
    """Distinct-n (Li et al., 2016): distinct ``n``-grams / all ``n``-grams, from 1 (no repeat) down towards 0.

    A string is measured on its words. Compare texts of similar length only:
    longer texts repeat more by chance, so distinct-n falls with length.
    """
    grams = _ngrams_or_raise(tokens, n)
    return len(set(grams)) / len(grams)


def repetition_rate(tokens: str | Sequence[Any], n: int = 4) -> float:
    """The share of ``n``-grams that already occurred earlier in the same text (seq-rep-n; Welleck et al., 2020).

    It equals ``1 - distinct_n(tokens, n)``; at ``n = 4`` (four words) natural
    prose is close to 0, and a text caught in a loop close to 1.
    """
    grams = _ngrams_or_raise(tokens, n)
    seen: set[tuple[Any, ...]] = set()
    repeats = 0
    for g in grams:
        repeats += g in seen
        seen.add(g)
    return repeats / len(grams)


def char_distinct_n(text: str, n: int) -> float:
    """Distinct-n over the *characters* of ``text``: distinct ``n``-character sequences / all of them.

    On short generated texts (a hundred characters, some twenty words),
    word-level distinct-n separates greedy and beam search (whose loops repeat
    word pairs) from sampling, but sits at about 1 for every sampler, so it
    cannot rank temperatures; three-character pieces repeat often enough to
    (notebook 05, section 4.5).
    """
    if not isinstance(text, str):
        raise ValueError(f"char_distinct_n measures a string, got {type(text).__name__}")
    return distinct_n(list(text), n)


def char_repetition_rate(text: str, n: int = 8) -> float:
    """The share of ``n``-character sequences of ``text`` already seen earlier in it (a loop scores near 1)."""
    if not isinstance(text, str):
        raise ValueError(f"char_repetition_rate measures a string, got {type(text).__name__}")
    return repetition_rate(list(text), n)


def token_log_probs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``log softmax(logits)[..., target]``: the log-probability, in nats, of each target token.

    ``logits`` ``[..., V]`` are a model's predictions for the positions of ``targets`` ``[...]``.
    """
    if logits.shape[:-1] != targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} must be targets {tuple(targets.shape)} plus a vocabulary "
                         "dimension")
    if targets.is_floating_point():
        raise ValueError("targets must be token indices (an integer tensor)")
    return logits.float().log_softmax(dim=-1).gather(-1, targets.long()[..., None])[..., 0]


def mean_log_prob(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """The mean log-probability per token of ``targets`` under ``logits`` (nats; minus the cross-entropy)."""
    return token_log_probs(logits, targets).mean().item()


# --- memorisation and vocabulary in text (notebook 07) ------------------------------------------------------


def ngram_set(tokens: str | Sequence[Any], n: int) -> frozenset[tuple[Any, ...]]:
    """Every distinct ``n``-gram of ``tokens`` (a string: of its words): the index :func:`ngram_overlap` looks in.

    Build it once for a training text and pass it to :func:`ngram_overlap` for each sample.
    """
    return frozenset(ngrams(tokens, n))


def ngram_overlap(
    tokens: str | Sequence[Any], training: str | Sequence[Any] | frozenset[tuple[Any, ...]], n: int,
) -> float:
    """The share of the ``n``-grams of ``tokens`` that also occur in ``training``: the memorisation check for text.

    ``training`` is the training text (a string, measured on its words), a
    token sequence, or a set from :func:`ngram_set` (much faster when many
    samples are checked against one training text). Held-out real text sets the
    baseline: it shares common phrases with the training text too, so a model
    that copies shows as an overlap well *above* real text's, and as long
    copied spans (:func:`longest_copied_span`).
    """
    grams = _ngrams_or_raise(tokens, n)
    if isinstance(training, (set, frozenset)):
        index = training
        probe = next(iter(index), None)
        if probe is not None and (not isinstance(probe, tuple) or len(probe) != n):
            raise ValueError(f"the training index holds no {n}-grams: build it with ngram_set(training, {n})")
    else:
        index = ngram_set(training, n)
    return sum(g in index for g in grams) / len(grams)


def longest_copied_span(text: str, training: str) -> str:
    """The longest piece of ``text`` (characters) that occurs verbatim somewhere in ``training``.

    Scanning ``text`` once, it only ever tries to beat the best span so far, so
    it needs about ``len(text)`` substring searches of ``training``.
    """
    if not isinstance(text, str) or not isinstance(training, str):
        raise ValueError("longest_copied_span compares two strings")
    best = ""
    for start in range(len(text)):
        end = start + len(best) + 1
        while end <= len(text) and text[start:end] in training:
            best = text[start:end]
            end += 1
        if len(text) - start <= len(best):
            break
    return best


_PUNCTUATION = "\"'.,;:!?()[]-_&`"


def normalise_word(word: str) -> str:
    """Lower case, punctuation stripped from both ends: ``"Thee,"`` -> ``"thee"``."""
    return word.strip(_PUNCTUATION).lower()


def word_set(text: str) -> frozenset[str]:
    """The distinct :func:`normalise_word` words of ``text``: e.g. the vocabulary of a training text."""
    return frozenset(w for w in (normalise_word(t) for t in words(text)) if w)


def known_word_share(text: str, vocabulary: frozenset[str] | set[str]) -> float:
    """The share of the words of ``text`` found in ``vocabulary`` (e.g. :func:`word_set` of the training text).

    Real held-out text scores close to 1 (a few rare words are new); a
    character model's invented words pull it down: a cheap, automatic check of
    spelling.
    """
    if not isinstance(vocabulary, (set, frozenset)) or not vocabulary:
        raise ValueError("vocabulary must be a non-empty set of words (word_set(training_text))")
    found = [w for w in (normalise_word(t) for t in words(text)) if w]
    if not found:
        raise ValueError("the text has no words to check")
    return sum(w in vocabulary for w in found) / len(found)
