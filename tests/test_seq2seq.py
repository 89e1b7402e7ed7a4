"""course_utils.seq2seq: the date task, the character tokenizer, the tiny BART and its measurements (notebook 06)."""

from __future__ import annotations

import datetime as dt

import pytest
import torch

from course_utils import seq2seq

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tok():
    return seq2seq.char_tokenizer()


def tiny(tok, seed: int = 0):
    size = seq2seq.TranslatorSize(layers=1, d_model=16, heads=2, ffn=32)
    return seq2seq.make_translator(seq2seq.bart_config(tok, size), seed=seed).eval()


@pytest.mark.parametrize("day, word", [(1, "first"), (2, "second"), (3, "third"), (11, "eleventh"), (12, "twelfth"),
                                       (19, "nineteenth"), (20, "twentieth"), (21, "twenty-first"),
                                       (22, "twenty-second"), (30, "thirtieth"), (31, "thirty-first")])
def test_ordinal_words(day, word):
    assert seq2seq.ordinal_words(day) == word


def test_ordinal_words_rejects_impossible_days():
    with pytest.raises(ValueError, match="1..31"):
        seq2seq.ordinal_words(32)


def test_every_format_of_one_day():
    d = dt.date(2021, 3, 21)
    assert {f: seq2seq.render(d, f) for f in seq2seq.FORMATS} == {
        "spelled": "the twenty-first of March, 2021", "long": "21 March 2021", "us": "March 21, 2021",
        "weekday": "Sunday, 21 March 2021", "short": "21 Mar 2021", "dotted": "21.03.2021",
        "lower": "twenty-first march 2021"}
    with pytest.raises(ValueError, match="unknown date format"):
        seq2seq.render(d, "roman")


def test_held_out_days_never_appear_in_training_draws():
    g = torch.Generator().manual_seed(0)
    train = seq2seq.random_dates(5000, g, split="train")
    test = seq2seq.random_dates(500, g, split="test")
    assert not any(seq2seq.is_held_out(d) for d in train)
    assert all(seq2seq.is_held_out(d) for d in test)
    assert all(seq2seq.FIRST_DAY <= d <= seq2seq.LAST_DAY for d in train + test)
    assert min(d.year for d in test) < 1920 and max(d.year for d in test) > 2080  # spread over the range
    with pytest.raises(ValueError, match="split"):
        seq2seq.random_dates(3, g, split="val")


def test_held_out_years_never_appear_in_training_draws():
    g = torch.Generator().manual_seed(1)
    train = seq2seq.random_dates(5000, g, split="train")
    years = seq2seq.random_dates(500, g, split="years")
    assert not {d.year for d in train} & set(seq2seq.HELD_OUT_YEARS)
    assert {d.year for d in years} == set(seq2seq.HELD_OUT_YEARS)
    assert not any(seq2seq.is_held_out(d) for d in train)


def test_translate_with_beams_and_sources_padded_to_the_batch(tok):
    model = seq2seq.make_translator(seq2seq.bart_config(tok, seq2seq.TranslatorSize(layers=1, d_model=16, heads=2,
                                                                                    ffn=32)), seed=0)
    sources = ["1 May 2001", "the first of May, 2001"]
    batch = seq2seq.encode_sources(tok, sources, length=None)
    assert batch["input_ids"].shape[1] == len(sources[1]) + 1  # the longest source and its end token
    for beams in (1, 3):
        out = seq2seq.translate(model, tok, sources, num_beams=beams, max_new_tokens=4, length=None)
        assert len(out) == 2 and all(isinstance(o, str) for o in out)


def test_pairs_are_seeded_and_targets_are_iso():
    a = seq2seq.make_pairs(50, torch.Generator().manual_seed(3))
    assert a == seq2seq.make_pairs(50, torch.Generator().manual_seed(3))
    for source, target in a:
        assert dt.date.fromisoformat(target).year == int(source[-4:])
    only = seq2seq.make_pairs(20, torch.Generator().manual_seed(3), formats=["dotted"])
    assert all(s[2] == "." and s[5] == "." for s, _ in only)


def test_char_tokenizer_round_trips_every_format(tok):
    assert [tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.unk_token_id] == [0, 1, 2, 3]
    for source, target in seq2seq.make_pairs(100, torch.Generator().manual_seed(1)):
        for s in (source, target):
            ids = tok(s)["input_ids"]
            assert len(ids) == len(s) + 1 and ids[-1] == tok.eos_token_id and tok.unk_token_id not in ids
            assert tok.decode(ids, skip_special_tokens=True) == s


def test_encode_pairs_masks_padding_in_the_labels(tok):
    batch = seq2seq.encode_pairs(tok, [("1 May 2000", "2000-05-01"), ("the first of May, 2000", "2000-05-01")])
    assert batch["input_ids"].shape == (2, seq2seq.SOURCE_LENGTH)
    assert batch["attention_mask"][0].sum() == len("1 May 2000") + 1
    # padded on the left: the year and </s> sit at the same positions in every source
    assert (batch["input_ids"][:, -5:-1] == torch.tensor(tok("2000", add_special_tokens=False)["input_ids"])).all()
    assert (batch["attention_mask"][0, :-11] == 0).all() and (batch["input_ids"][0, :-11] == tok.pad_token_id).all()
    assert batch["labels"].shape == (2, 11) and (batch["labels"] != -100).all()
    ragged = seq2seq.encode_pairs(tok, [("x", "2000-05-01"), ("y", "2000")])
    assert (ragged["labels"][1, 5:] == -100).all() and (ragged["labels"][1, :5] != -100).all()


def test_translator_config_and_generation_ids(tok):
    model = tiny(tok)
    assert model.config.decoder_start_token_id == tok.bos_token_id and model.config.pad_token_id == 0
    assert model.generation_config.forced_bos_token_id is None and model.generation_config.eos_token_id == 2
    out = seq2seq.translate(model, tok, ["1 May 2000", "21.03.2021"], max_new_tokens=5)
    assert len(out) == 2 and all(isinstance(s, str) and len(s) <= 5 for s in out)


def test_cross_attention_rows_are_distributions_over_the_source(tok):
    model = tiny(tok)
    weights = seq2seq.cross_attention(model, tok, "21 March 2021", "2021-03-21")
    assert weights.shape == (11, 14)
    assert torch.allclose(weights.sum(-1), torch.ones(11), atol=1e-5)


def test_exact_match():
    assert seq2seq.exact_match(["2021-03-21", " 2000-01-01 ", "2000-01-02"], ["2021-03-21", "2000-01-01",
                                                                            "2000-01-03"]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="2 predictions for 1"):
        seq2seq.exact_match(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="at least one"):
        seq2seq.exact_match([], [])


def test_training_lowers_the_loss(tok):
    model = tiny(tok)
    g = torch.Generator().manual_seed(9)
    fixed = seq2seq.encode_pairs(tok, seq2seq.make_pairs(64, g, split="test"))
    with torch.no_grad():
        before = model(**fixed).loss.item()
    run = seq2seq.train_translator(model, tok, steps=40, batch_size=32, lr=1e-2, seed=0)
    with torch.no_grad():
        after = model(**fixed).loss.item()
    assert len(run["loss"]) == 40 and after < before - 1.0  # from ~log(51) per character to well below it
    with pytest.raises(ValueError, match="positive"):
        seq2seq.train_translator(model, tok, steps=0)


def test_sources_longer_than_the_encoder_input_are_refused(tok):
    with pytest.raises(ValueError, match="longer than"):
        seq2seq.encode_sources(tok, ["x" * seq2seq.SOURCE_LENGTH])


def test_size_validation():
    with pytest.raises(ValueError, match="multiple"):
        seq2seq.TranslatorSize(d_model=30, heads=4)
    with pytest.raises(ValueError, match="layers"):
        seq2seq.TranslatorSize(layers=0)


def test_bart_config_does_not_scale_embeddings_by_default():
    # BART's sqrt(d_model) scaling of the token embeddings stalled the tiny models of notebook 06 on some seeds
    tok = seq2seq.char_tokenizer()
    assert seq2seq.bart_config(tok).scale_embedding is False
    assert seq2seq.bart_config(tok, scale_embedding=True).scale_embedding is True


def test_year_attention_is_the_year_columns_of_cross_attention(tok):
    model = tiny(tok)
    pairs = [("21 March 2021", "2021-03-21"), ("01.02.1999", "1999-02-01")]
    share, even = seq2seq.year_attention(model, tok, pairs)
    assert share.shape == even.shape == (2,)
    for (source, target), s, e in zip(pairs, share, even, strict=True):
        weights = seq2seq.cross_attention(model, tok, source, target)  # the source's columns, its </s> last
        expected = weights[:4, len(source) - 4:len(source)].sum(-1).mean()
        assert torch.allclose(s, expected, atol=1e-6)
        assert e == pytest.approx(4 / (len(source) + 1))
    with pytest.raises(ValueError, match="end in the year"):
        seq2seq.year_attention(model, tok, [("21 March 2021", "21.03.2021")])
