"""Reference solutions of notebook 06's exercises (transformers with Hugging Face)."""

import math
from collections import Counter

from course_utils import music, seq2seq


def bpe_merges(words, num_merges):
    """The first ``num_merges`` BPE merges learnt from a list of words, most frequent pair first."""
    counts = Counter(words)
    symbols = {w: list(w) for w in counts}
    merges = []
    for _ in range(num_merges):
        pairs = Counter()
        for w, n in counts.items():
            for pair in zip(symbols[w], symbols[w][1:], strict=False):
                pairs[pair] += n
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))  # most frequent; ties: the pair that sorts first
        merges.append(best)
        for w, s in symbols.items():  # replace the pair everywhere, left to right
            out, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and (s[i], s[i + 1]) == best:
                    out.append(s[i] + s[i + 1])
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            symbols[w] = out
    return merges


def bpe_encode(word, merges):
    """The BPE tokens of one word (a leading space written 'Ġ'), merging the earliest-learnt pair first."""
    rank = {pair: i for i, pair in enumerate(merges)}
    symbols = ["Ġ" if ch == " " else ch for ch in word]
    while True:
        known = [pair for pair in zip(symbols, symbols[1:], strict=False) if pair in rank]
        if not known:
            return symbols
        first = min(known, key=rank.get)  # the pair learnt earliest
        out, i = [], 0
        while i < len(symbols):
            if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == first:
                out.append(symbols[i] + symbols[i + 1])
                i += 2
            else:
                out.append(symbols[i])
                i += 1
        symbols = out


def bits_per_byte(loss_per_token, num_tokens, text):
    """A mean loss in nats per token as bits per UTF-8 byte of ``text``."""
    total_nats = loss_per_token * num_tokens
    return total_nats / math.log(2) / len(text.encode("utf-8"))


def gpt2_parameters(config):
    """The number of parameters of GPT2LMHeadModel(config), counted from the config's fields."""
    d = config.n_embd
    h = config.n_inner or 4 * d  # the MLP's width
    tables = (config.vocab_size + config.n_positions) * d  # the token and position embeddings
    block = (2 * 2 * d  # ln_1 and ln_2: a weight and a bias each
             + d * 3 * d + 3 * d  # attn.c_attn: queries, keys and values in one layer, with biases
             + d * d + d  # attn.c_proj
             + d * h + h + h * d + d)  # the MLP: c_fc and c_proj
    output = 0 if config.tie_word_embeddings else config.vocab_size * d  # tied: the token embedding, counted once
    return tables + config.n_layer * block + 2 * d + output  # 2 * d: the final layer norm, ln_f


def normalise_date(text):
    """Any date of ``seq2seq.FORMATS`` as an ISO date 'YYYY-MM-DD'."""
    year = int(text[-4:])
    if text[2] == "." and text[5] == ".":  # the dotted format: DD.MM.YYYY
        return f"{year}-{text[3:5]}-{text[:2]}"
    words = text[:-4].replace(",", " ").lower().split()
    month = next(i + 1 for i, m in enumerate(seq2seq.MONTHS) if m.lower() in words or m[:3].lower() in words)
    ordinals = {seq2seq.ordinal_words(d): d for d in range(1, 32)}
    day = next(int(w) if w.isdigit() else ordinals[w] for w in words if w.isdigit() or w in ordinals)
    return f"{year}-{month:02d}-{day:02d}"


def transpose(tokens, semitones):
    """The melody's tokens with every pitch moved by ``semitones``; rests, durations and markers unchanged."""
    out = []
    for token in tokens:
        note = music.parse_token(token)  # None for <major>, <minor> and <end>
        if note is None or note.pitch is None:
            out.append(token)
        else:
            out.append(music.note_token(music.Note(note.pitch + semitones, note.quarters)))
    return out


def lm_labels(input_ids, attention_mask, prompt_lengths):
    """Causal-LM labels for padded prompt + answer rows: the input ids, -100 on the padding and the prompt."""
    labels = input_ids.clone()
    labels[attention_mask == 0] = -100  # CrossEntropyLoss's ignore_index: no loss on the padding
    position = attention_mask.cumsum(1)  # 1, 2, ... on the real tokens, wherever the padding sits
    labels[(attention_mask == 1) & (position <= prompt_lengths[:, None])] = -100  # nor on the prompt
    return labels
