"""course_utils.bpe: byte-level BPE with ``tokenizers``, its merges, and losses per character (notebook 06)."""

from __future__ import annotations

from collections import Counter

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from course_utils import bpe
from course_utils.exercises import hf as ex
from course_utils.solutions.hf import bpe_encode, bpe_merges
from tests.hf_support import SAMPLE, sample_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return sample_tokenizer()


def test_bpe_is_deterministic_round_trips_and_puts_the_special_token_first(tokenizer):
    again = bpe.train_bpe(SAMPLE, vocab_size=300)
    assert tokenizer.get_vocab() == again.get_vocab() and len(tokenizer) == 300
    assert tokenizer.convert_tokens_to_ids(bpe.SPECIAL) == 0 == tokenizer.pad_token_id == tokenizer.eos_token_id
    ids = bpe.encode(tokenizer, SAMPLE)
    assert tokenizer.decode(ids.tolist()) == SAMPLE  # byte-level: every text comes back exactly
    assert tokenizer.decode(bpe.encode(tokenizer, "Zwölf £ ünseen").tolist()) == "Zwölf £ ünseen"
    # 256 bytes + the special token + 43 merges; the text repeats, so a token covers several characters
    assert len(bpe.merges(tokenizer)) == 300 - 257
    assert bpe.chars_per_token(tokenizer, SAMPLE) > 2


def test_bpe_rejects_bad_input():
    with pytest.raises(ValueError, match="vocab_size"):
        bpe.train_bpe(SAMPLE, vocab_size=100)
    with pytest.raises(ValueError, match="needs some text"):
        bpe.train_bpe([""], vocab_size=300)
    with pytest.raises(ValueError, match="non-empty"):
        bpe.chars_per_token(sample_tokenizer(), "")


def test_wrap_tokenizer_needs_the_special_token():
    tok = Tokenizer(models.BPE())
    with pytest.raises(ValueError, match="endoftext"):
        bpe.wrap_tokenizer(tok)


def test_the_first_bpe_merge_is_the_most_frequent_pair(tokenizer):
    pairs = Counter()
    for word in SAMPLE.replace("\n", " ").split(" "):  # the byte-level pre-tokenizer splits at spaces too
        pairs.update(zip(word, word[1:], strict=False))
    assert bpe.merges(tokenizer)[0] == pairs.most_common(1)[0][0]


def test_the_exercise_reference_learns_the_merges_of_the_tokenizers_library():
    alphabet = sorted(set("".join(ex.BPE_CORPUS)))
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.train_from_iterator([" ".join(ex.BPE_CORPUS)],
                            trainers.BpeTrainer(vocab_size=len(alphabet) + 6, show_progress=False))
    assert bpe.merges(tok) == bpe_merges(list(ex.BPE_CORPUS), 6)


def test_the_exercise_reference_encodes_words_as_the_tokenizers_library_does(tokenizer):
    merges = bpe.merges(tokenizer)
    words = {w for w, _ in tokenizer.backend_tokenizer.pre_tokenizer.pre_tokenize_str(SAMPLE)
             if w.removeprefix("Ġ").isascii() and w.removeprefix("Ġ").isalpha()}
    words |= {"Ġspeaking", "Ġfurthest", "Ġproceeds", "hearken"}  # new words, cut by the same merges
    assert len(words) > 10
    for word in sorted(words):
        assert bpe_encode(word.replace("Ġ", " "), merges) == tokenizer.tokenize(word.replace("Ġ", " ")), word
    word, pairs, tokens = ex.ABC  # the hand-made case of the checker: the earliest-learnt pair wins
    rule_book = Tokenizer(models.BPE({"a": 0, "b": 1, "c": 2, "bc": 3, "ab": 4}, list(pairs)))
    assert rule_book.encode(word).tokens == tokens == bpe_encode(word, pairs)


def test_nats_per_char_is_the_same_total_over_characters():
    assert bpe.nats_per_char(4.0, 100, 250) == pytest.approx(1.6)
    with pytest.raises(ValueError, match="positive"):
        bpe.nats_per_char(4.0, 0, 250)


def test_a_wrapped_tokenizer_gives_a_gpt2_no_token_type_ids():
    """transformers 4.x adds token_type_ids unless told; GPT-2 would add the embedding of token 0 to every position."""
    assert set(sample_tokenizer()("To be")) == set(bpe.MODEL_INPUTS)
