"""Translation with a tiny encoder-decoder: dates in words and formats -> ISO dates (notebook 06, section 4).

- the task: :func:`random_dates`, :data:`FORMATS` and :func:`render` (the
  same day written seven ways, e.g. ``"the twenty-first of March, 2021"``,
  ``"21.03.2021"``), :func:`make_pairs` (source, ISO target) and
  :func:`ordinal_words`;
- the model: :func:`char_tokenizer` (one token per character, from
  ``tokenizers``), :func:`bart_config` and :func:`make_translator` (a
  ``BartForConditionalGeneration`` of about 0.2M parameters);
- training and measuring: :func:`encode_pairs`, :func:`train_seq2seq` (any
  task that draws fresh pairs, such as :mod:`course_utils.summaries`),
  :func:`train_translator`, :func:`translate` (greedy or beam ``generate``),
  :func:`exact_match`, :func:`cross_attention` (which source characters
  each output character looked at) and :func:`year_attention` (how much the
  steps that write the year look at the source's year, over many dates);
- the held-out splits: every tenth day (:func:`is_held_out`) and ten whole
  years (:data:`HELD_OUT_YEARS`), never seen in training in any format.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors

from course_utils.configs import require_multiple, require_positive
from course_utils.progress import progress
from course_utils.runtime import seed_everything
from course_utils.training import evaluating, lr_at

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
FIRST_DAY, LAST_DAY = dt.date(1900, 1, 1), dt.date(2099, 12, 31)
PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
_UNITS = ("", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
          "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth", "eighteenth",
          "nineteenth")


def ordinal_words(day: int) -> str:
    """``1 -> 'first'``, ``21 -> 'twenty-first'``, ``30 -> 'thirtieth'`` (days of the month, 1..31)."""
    if not 1 <= day <= 31:
        raise ValueError(f"a day of the month is 1..31, got {day}")
    if day < 20:
        return _UNITS[day]
    tens = {2: "twenty", 3: "thirty"}[day // 10]
    return f"{tens[:-1]}ieth" if day % 10 == 0 else f"{tens}-{_UNITS[day % 10]}"


FORMATS: dict[str, Callable[[dt.date], str]] = {
    "spelled": lambda d: f"the {ordinal_words(d.day)} of {MONTHS[d.month - 1]}, {d.year}",
    "long": lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}",
    "us": lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}",
    "weekday": lambda d: f"{WEEKDAYS[d.weekday()]}, {d.day} {MONTHS[d.month - 1]} {d.year}",
    "short": lambda d: f"{d.day} {MONTHS[d.month - 1][:3]} {d.year}",
    "dotted": lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",
    "lower": lambda d: f"{ordinal_words(d.day)} {MONTHS[d.month - 1].lower()} {d.year}",
}


def render(date: dt.date, fmt: str) -> str:
    """``date`` written in the format ``fmt`` (a key of :data:`FORMATS`)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown date format {fmt!r}; known: {', '.join(FORMATS)}")
    return FORMATS[fmt](date)


HELD_OUT_EVERY = 10  # every 10th day of the range is never used for training: the test set's days
# whole years never used for training, in any format: every digit is seen at every position, the year never
HELD_OUT_YEARS = (1913, 1938, 1956, 1977, 1984, 2002, 2029, 2041, 2066, 2093)
SPLITS = ("all", "train", "test", "years")


def is_held_out(date: dt.date) -> bool:
    """True for the test days: every tenth day counted from 1900-01-01."""
    return (date - FIRST_DAY).days % HELD_OUT_EVERY == 0


def random_dates(n: int, generator: torch.Generator | None = None, split: str = "all") -> list[dt.date]:
    """``n`` days drawn uniformly: training days, held-out test days, days of the held-out years, or all.

    The range is 1900-01-01 .. 2099-12-31. A training draw that lands on a
    held-out day or in a held-out year moves forward to the next training day,
    so no test day and no held-out year is ever seen in training, in any format.
    ``"test"`` draws every tenth day (in any year); ``"years"`` any day of
    :data:`HELD_OUT_YEARS`.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    span = (LAST_DAY - FIRST_DAY).days + 1
    if split == "test":
        k = torch.randint((span - 1) // HELD_OUT_EVERY + 1, (n,), generator=generator) * HELD_OUT_EVERY
    elif split == "years":
        years = torch.randint(len(HELD_OUT_YEARS), (n,), generator=generator)
        offsets = torch.randint(365, (n,), generator=generator)  # 1 January .. 31 December (30 Dec in a leap year)
        return [dt.date(HELD_OUT_YEARS[int(y)], 1, 1) + dt.timedelta(days=int(o)) for y, o in zip(years, offsets,
                                                                                                   strict=True)]
    else:
        k = torch.randint(span, (n,), generator=generator)
    days = [FIRST_DAY + dt.timedelta(days=int(i)) for i in k]
    if split == "train":
        for i, d in enumerate(days):
            while is_held_out(d) or d.year in HELD_OUT_YEARS:
                d = d + dt.timedelta(days=1)
            days[i] = d
    return days


def make_pairs(
    n: int, generator: torch.Generator | None = None, formats: Sequence[str] | None = None, split: str = "all",
) -> list[tuple[str, str]]:
    """``n`` (source, target) pairs: a random date of ``split`` in a random format of ``formats``, and its ISO form."""
    formats = list(formats or FORMATS)
    dates = random_dates(n, generator, split)
    picks = torch.randint(len(formats), (n,), generator=generator)
    return [(render(d, formats[int(k)]), d.isoformat()) for d, k in zip(dates, picks, strict=True)]


# --- the model ---------------------------------------------------------------------------------------


def char_tokenizer(extra: str = "") -> Any:
    """A character-level ``transformers`` tokenizer for the date task (and any characters in ``extra``).

    Ids 0-3 are ``<pad>``, ``<s>``, ``</s>``, ``<unk>``; every character of
    the formats follows. Encoding appends ``</s>``; decoding glues the
    characters back together.
    """
    from transformers import PreTrainedTokenizerFast  # lazy: importing transformers takes seconds

    words = [ordinal_words(d) for d in range(1, 32)] + list(WEEKDAYS) + list(MONTHS) + [m.lower() for m in MONTHS]
    sample = "".join(render(d, f) for d in (dt.date(2000, m, 28) for m in range(1, 13)) for f in FORMATS)
    chars = sorted(set(sample + "0123456789-" + "".join(words) + extra))
    vocab = {t: i for i, t in enumerate([PAD, BOS, EOS, UNK, *chars])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.post_processor = processors.TemplateProcessing(single=f"$A {EOS}", special_tokens=[(EOS, vocab[EOS])])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, bos_token=BOS, eos_token=EOS, unk_token=UNK,
                                   padding_side="left")


@dataclass(frozen=True)
class TranslatorSize:
    """The encoder-decoder's sizes: ``layers`` each side, ``d_model`` wide, ``heads`` heads, ``ffn`` hidden units."""

    layers: int = 2  # BartConfig's encoder_layers and decoder_layers
    d_model: int = 64  # the width of every position's vector
    heads: int = 4  # attention heads, in self- and cross-attention
    ffn: int = 128  # hidden units of each block's feed-forward layer
    max_positions: int = 64  # the longest source or target, in tokens

    def __post_init__(self) -> None:
        require_positive(self, "layers", "d_model", "heads", "ffn", "max_positions")
        require_multiple(self, "d_model", of="heads")


def bart_config(tokenizer: Any, size: TranslatorSize = TranslatorSize(), scale_embedding: bool = False) -> Any:
    """A small ``BartConfig`` for ``tokenizer``: its special ids, no dropout, eager attention (so it can be drawn).

    ``scale_embedding=False`` (``BartConfig``'s default; a config may turn it on):
    BART multiplies the token embeddings by sqrt(d_model) but not the position
    embeddings, so at d_model 64 a position weighs 8 times less than a token at
    the start. With the scaling on, the date translator and the headline
    writer of notebook 06 stalled on a loss plateau for some seeds at the ci
    budget (the date translator near 0.9 nats per character); with it off,
    seeds 0, 1 and 2 all trained.
    """
    from transformers import BartConfig  # lazy: importing transformers takes seconds

    config = BartConfig(
        vocab_size=len(tokenizer), d_model=size.d_model, encoder_layers=size.layers, decoder_layers=size.layers,
        encoder_attention_heads=size.heads, decoder_attention_heads=size.heads, encoder_ffn_dim=size.ffn,
        decoder_ffn_dim=size.ffn, max_position_embeddings=size.max_positions, dropout=0.0, attention_dropout=0.0,
        activation_dropout=0.0, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.bos_token_id,
        forced_eos_token_id=None, forced_bos_token_id=None, scale_embedding=scale_embedding,
    )
    config._attn_implementation = "eager"  # returns attention weights (sdpa does not); as fast at this size
    return config


def make_translator(config: Any, seed: int | None = None) -> Any:
    """A fresh ``BartForConditionalGeneration`` from ``config``, seeded if ``seed`` is given."""
    from transformers import BartForConditionalGeneration  # lazy: importing transformers takes seconds

    if seed is not None:
        torch.manual_seed(seed)
    model = BartForConditionalGeneration(config)
    gen = model.generation_config
    gen.decoder_start_token_id, gen.bos_token_id = config.decoder_start_token_id, config.bos_token_id
    gen.eos_token_id, gen.pad_token_id = config.eos_token_id, config.pad_token_id
    gen.forced_bos_token_id = gen.forced_eos_token_id = None
    gen.num_beams, gen.do_sample = 1, False
    return model


SOURCE_LENGTH = 40  # every source is padded on the left to this many tokens: its year sits at fixed positions


def encode_sources(
    tokenizer: Any, sources: Sequence[str], length: int | None = SOURCE_LENGTH,
) -> dict[str, torch.Tensor]:
    """Sources padded on the tokenizer's side (the left, here) to ``length`` tokens, with their attention mask.

    Every date format ends with the year, so with left padding to a fixed
    length the year's digits always sit at the same positions, which a small
    model finds much faster than a year that moves with the length of the
    text. ``length=None`` pads to the longest source of the batch.
    """
    batch = tokenizer(list(sources), padding="longest" if length is None else "max_length", max_length=length,
                      return_tensors="pt")
    if length is not None and batch["input_ids"].shape[1] > length:
        raise ValueError(f"a source is longer than {length} tokens (with its end token)")
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}  # no token_type_ids


def encode_pairs(
    tokenizer: Any, pairs: Sequence[tuple[str, str]], length: int | None = SOURCE_LENGTH,
) -> dict[str, torch.Tensor]:
    """A padded batch: ``input_ids``, ``attention_mask`` and ``labels`` (padding is -100, ignored by the loss)."""
    sources, targets = zip(*pairs, strict=True)
    batch = encode_sources(tokenizer, sources, length)
    labels = tokenizer(list(targets), padding=True, padding_side="right", return_tensors="pt")["input_ids"]
    labels[labels == tokenizer.pad_token_id] = -100
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], "labels": labels}


def _to(batch: Any, model: Any) -> dict[str, torch.Tensor]:
    """A batch of tensors on the model's device."""
    device = next(model.parameters()).device
    return {k: v.to(device) for k, v in dict(batch).items()}


def train_seq2seq(
    model: Any, tokenizer: Any, draw: Callable[[int, torch.Generator], list[tuple[str, str]]], steps: int,
    batch_size: int = 64, lr: float = 3e-3, seed: int = 0, length: int | None = SOURCE_LENGTH, desc: str = "seq2seq",
) -> dict[str, Any]:
    """Train on ``draw(batch_size, generator)``, fresh pairs at every step; return the loss curve and seconds.

    AdamW with a short warm-up and a cosine decay to a tenth of ``lr``
    (:func:`course_utils.training.lr_at`); ``length``: as :func:`encode_sources`.
    """
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be positive, got {steps} and {batch_size}")
    rng = seed_everything(seed)
    # foreach: the multi-tensor update, the same numbers as the per-tensor loop a CPU runs by default (checked
    # bit for bit on both of notebook 06's tasks), and faster for these models' many small tensors
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, foreach=True)
    warmup = max(1, steps // 20)
    losses, start = [], time.perf_counter()
    model.train()
    bar = progress(range(steps), desc=desc)
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, lr=lr, min_lr=lr / 10, warmup=warmup, steps=steps)
        batch = _to(encode_pairs(tokenizer, draw(batch_size, rng), length), model)
        loss = model(**batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    return {"loss": losses, "seconds": round(time.perf_counter() - start, 1)}


def train_translator(
    model: Any, tokenizer: Any, steps: int, batch_size: int = 64, lr: float = 3e-3, seed: int = 0,
    formats: Sequence[str] | None = None, desc: str = "dates",
) -> dict[str, Any]:
    """:func:`train_seq2seq` on random dates of the training split (fresh at every step: unlimited data)."""
    return train_seq2seq(model, tokenizer, lambda n, g: make_pairs(n, g, formats, split="train"), steps, batch_size,
                         lr, seed, desc=desc)


def translate(model: Any, tokenizer: Any, sources: Sequence[str], batch_size: int = 256,
              max_new_tokens: int = 12, num_beams: int = 1, length: int | None = SOURCE_LENGTH) -> list[str]:
    """``generate`` for each source text (in eval mode): greedy, or beam search with ``num_beams`` > 1.

    Returns the decoded outputs without special tokens.
    """
    out: list[str] = []
    with evaluating(model):
        for i in range(0, len(sources), batch_size):
            batch = _to(encode_sources(tokenizer, sources[i:i + batch_size], length), model)
            ids = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False, num_beams=num_beams)
            out.extend(tokenizer.batch_decode(ids, skip_special_tokens=True))
    return out


def exact_match(predictions: Sequence[str], targets: Sequence[str]) -> float:
    """The share of predictions equal to their target, after stripping surrounding whitespace."""
    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} predictions for {len(targets)} targets")
    if not targets:
        raise ValueError("exact_match needs at least one example")
    return sum(p.strip() == t.strip() for p, t in zip(predictions, targets, strict=True)) / len(targets)


@torch.no_grad()
def cross_attention(model: Any, tokenizer: Any, source: str, target: str, layer: int = -1) -> torch.Tensor:
    """``[len(target) + 1, len(source) + 1]``: how much each output step attends to each source character.

    Teacher-forced on ``target`` (the row of output ``i`` is the step that
    predicts character ``i``; the last row predicts ``</s>``), averaged over
    the heads of decoder layer ``layer``; the last column is the source's ``</s>``.
    """
    batch = _to(encode_pairs(tokenizer, [(source, target)]), model)
    out = model(**batch, output_attentions=True)
    weights = out.cross_attentions[layer][0].mean(0)
    return weights[:, batch["attention_mask"][0].bool()].cpu()  # the source's columns, without the padding


@torch.no_grad()
def year_attention(model: Any, tokenizer: Any, pairs: Sequence[tuple[str, str]], layer: int = -1,
                   batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """``(share, positions)`` per ``(source, ISO date)`` pair: how much the year's output steps look at the year.

    ``share``: the cross-attention that the four steps writing the year's
    digits (teacher-forced on the ISO target) put on the source's last four
    characters, its year, averaged over those steps and over the heads of
    decoder layer ``layer``. ``positions``: the year's share of the source's
    positions (four of its characters and ``</s>``), what attention spread
    evenly would give. Sources are padded on the left (:data:`SOURCE_LENGTH`),
    so the year is the four tokens before the final ``</s>`` in every row.
    """
    shares, positions = [], []
    with evaluating(model):
        for i in range(0, len(pairs), batch_size):
            chunk = pairs[i:i + batch_size]
            if any(not s.endswith(t[:4]) or len(t) != 10 for s, t in chunk):
                raise ValueError("year_attention needs sources that end in the year and ISO-date targets")
            batch = _to(encode_pairs(tokenizer, chunk), model)
            weights = model(**batch, output_attentions=True).cross_attentions[layer].mean(1)  # [B, out, source]
            shares.append(weights[:, :4, -5:-1].sum(-1).mean(-1).cpu())
            positions.append(4 / batch["attention_mask"].sum(-1).float().cpu())
    return torch.cat(shares), torch.cat(positions)
