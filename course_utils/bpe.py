"""Byte-level BPE: the tokenizer of GPT-2, trained with ``tokenizers`` (notebook 06, section 1).

- :func:`train_bpe` learns the merges from a text and returns a ``transformers``
  fast tokenizer (:func:`wrap_tokenizer`); :func:`merges` lists what it learnt,
  in order; :func:`encode` turns a whole text into token ids;
- :func:`chars_per_token` and :func:`nats_per_char`: how many characters a token
  covers, and the conversion that puts a loss per BPE token beside notebook
  05's loss per character.

The GPT-2 that reads these tokens is in :mod:`course_utils.hf`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

SPECIAL = "<|endoftext|>"  # GPT-2's one special token: start, end and padding


def train_bpe(texts: str | Iterable[str], vocab_size: int = 2000, min_frequency: int = 2) -> Any:
    """A byte-level BPE tokenizer trained on ``texts``, as a ``transformers`` fast tokenizer.

    The special token ``<|endoftext|>`` (GPT-2's start, end and padding token)
    is id 0, the 256 byte symbols come next, then one token per merge, most
    frequent pair first, until ``vocab_size``. Deterministic: the same texts
    give the same vocabulary.
    """
    if not isinstance(vocab_size, int) or vocab_size < 258:
        raise ValueError(f"vocab_size must be an int of at least 258 (256 bytes, the special token, one merge), "
                         f"got {vocab_size!r}")
    texts = [texts] if isinstance(texts, str) else list(texts)
    if not any(texts):
        raise ValueError("train_bpe needs some text")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[SPECIAL],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return wrap_tokenizer(tok)


#: What a GPT-2 takes from its tokenizer. ``transformers`` 4.x's ``PreTrainedTokenizerFast`` also returns
#: ``token_type_ids`` unless told otherwise, and ``GPT2LMHeadModel`` adds the embedding of token 0 at every
#: position for them: ``generate(**tokenizer(prompt))`` then writes nonsense (seen under 4.46).
MODEL_INPUTS = ("input_ids", "attention_mask")


def wrap_tokenizer(tok: Tokenizer, max_length: int | None = None) -> Any:
    """A ``tokenizers.Tokenizer`` as a ``transformers`` fast tokenizer with bos = eos = pad = ``<|endoftext|>``."""
    from transformers import PreTrainedTokenizerFast  # lazy: importing transformers takes seconds

    if tok.token_to_id(SPECIAL) is None:
        raise ValueError(f"the tokenizer has no {SPECIAL!r} token")
    kwargs = {"model_max_length": max_length} if max_length else {}
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=SPECIAL, eos_token=SPECIAL, pad_token=SPECIAL,
                                   unk_token=SPECIAL, model_input_names=list(MODEL_INPUTS), **kwargs)


def _backend(tokenizer: Any) -> Tokenizer:
    """The ``tokenizers.Tokenizer`` inside a ``transformers`` tokenizer (or the tokenizer itself)."""
    return getattr(tokenizer, "backend_tokenizer", tokenizer)


def encode(tokenizer: Any, text: str) -> torch.Tensor:
    """``text`` as a 1-D tensor of token ids (the whole text at once, with no length warning)."""
    return torch.tensor(_backend(tokenizer).encode(text, add_special_tokens=False).ids, dtype=torch.long)


def merges(tokenizer: Any) -> list[tuple[str, str]]:
    """The BPE merges in the order they were learnt (a pair of symbols each, in byte-level characters)."""
    model = json.loads(_backend(tokenizer).to_str())["model"]
    return [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]


def chars_per_token(tokenizer: Any, text: str) -> float:
    """How many characters one token covers on average in ``text``."""
    n = len(encode(tokenizer, text))
    if n == 0:
        raise ValueError("chars_per_token needs a non-empty text")
    return len(text) / n


def nats_per_char(loss_per_token: float, num_tokens: int, num_chars: int) -> float:
    """A mean loss per token as a mean loss per character: the same total, over characters.

    nats/char = nats/token x (number of tokens) / (number of characters)

    so a BPE model and a character model of notebook 05 can be compared on the same text.
    """
    if num_tokens <= 0 or num_chars <= 0:
        raise ValueError(f"num_tokens and num_chars must be positive, got {num_tokens} and {num_chars}")
    return loss_per_token * num_tokens / num_chars
