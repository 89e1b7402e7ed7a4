"""course_utils.summaries: match reports, lead-k, ROUGE against rouge-score, hallucinations (notebook 06)."""

from __future__ import annotations

import pytest
import sacrebleu
import torch
from rouge_score import rouge_scorer

from course_utils import seq2seq, summaries


def pairs(n: int = 400, split: str = "all", seed: int = 0) -> list[tuple[str, str]]:
    return summaries.make_pairs(n, torch.Generator().manual_seed(seed), split)


def test_reports_are_seeded_and_state_their_headline():
    a, b = pairs(50), pairs(50)
    assert a == b
    for _ in range(200):
        r = summaries.make_report(torch.Generator().manual_seed(_))
        hs, as_ = r["facts"]["score"]
        winner = r["facts"]["home"] if hs >= as_ else r["facts"]["away"]
        assert r["headline"].startswith(winner) and f"{max(hs, as_)}-{min(hs, as_)}" in r["headline"]
        assert len(summaries.sentences(r["report"])) in (4, 5)
        assert r["facts"]["result_position"] < len(summaries.sentences(r["report"])) - 1  # never the last sentence
        assert not summaries.hallucinated(r["headline"], r["report"])  # every fact of the reference is in the report


def test_held_out_fixtures_never_appear_in_training():
    def held(split: str, seed: int) -> bool:
        f = summaries.make_report(torch.Generator().manual_seed(seed), split)["facts"]
        return summaries.is_held_out(summaries.TEAMS.index(f["home"]), summaries.TEAMS.index(f["away"]))

    assert 0 < sum(summaries.is_held_out(h, a) for h in range(12) for a in range(12)) < 20
    assert all(held("test", s) for s in range(100))
    assert not any(held("train", s) for s in range(300))
    with pytest.raises(ValueError, match="split"):
        summaries.make_report(torch.Generator(), "val")


def test_the_tokenizer_knows_every_word():
    tok = summaries.word_tokenizer()
    for source, headline in pairs(500):
        assert tok.unk_token_id not in tok(source)["input_ids"]
        ids = tok(headline)["input_ids"]
        assert ids[-1] == tok.eos_token_id and tok.decode(ids, skip_special_tokens=True) == headline


def test_lead_takes_the_first_sentences():
    text = "A beat B 1-0 on Sunday . rain fell all afternoon . 4000 fans watched the game ."
    assert summaries.lead(text, 1) == "A beat B 1-0 on Sunday"
    assert summaries.lead(text, 2) == "A beat B 1-0 on Sunday rain fell all afternoon"


def test_rouge_equals_the_rouge_score_package():
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
    data = pairs(300)
    for k, (source, headline) in enumerate(data):
        prediction = summaries.lead(source, 1 + k % 3)
        ref = scorer.score(headline, prediction)
        assert summaries.rouge_n(prediction, headline, 1) == pytest.approx(ref["rouge1"].fmeasure, abs=1e-12)
        assert summaries.rouge_n(prediction, headline, 2) == pytest.approx(ref["rouge2"].fmeasure, abs=1e-12)
        assert summaries.rouge_l(prediction, headline) == pytest.approx(ref["rougeL"].fmeasure, abs=1e-12)
    assert summaries.rouge_n("City beat Rovers 3-1", "Rovers beat City 3-1") == 1.0  # ROUGE-1 cannot see who won
    assert summaries.rouge_l("", "Rovers beat City") == 0.0
    mean = summaries.rouge(["a b c"], ["a b d"])
    assert mean["rouge1"] == pytest.approx(2 / 3) and mean["rouge2"] == pytest.approx(1 / 2)


def test_lcs_length():
    assert summaries.lcs_length(list("ABCBDAB"), list("BDCABA")) == 4
    assert summaries.lcs_length([], ["a"]) == 0


def test_hallucinations_are_entities_missing_from_the_source():
    source = "Rovers beat City 3-1 on Sunday . Smith scored twice for Rovers . 9000 fans watched the game ."
    assert summaries.entities("Smith fires Rovers past City 3-1") == {"Smith", "Rovers", "City", "3", "1"}
    assert summaries.hallucinated("Rovers beat City 3-1", source) == set()
    assert summaries.hallucinated("Rovers beat Town 4-1", source) == {"Town", "4"}
    assert summaries.hallucination_rate(["Rovers beat City 3-1", "Rovers beat Town 3-1"], [source, source]) == 0.5
    with pytest.raises(ValueError):
        summaries.hallucination_rate(["x"], [])


def test_a_tiny_headline_writer_learns(one_thread):
    tok = summaries.word_tokenizer()
    model = seq2seq.make_translator(seq2seq.bart_config(tok, seq2seq.TranslatorSize(layers=1, d_model=32, heads=2,
                                                                                    ffn=64)), seed=0)
    run = seq2seq.train_seq2seq(model, tok, lambda n, g: summaries.make_pairs(n, g, "train"), 40, 32, seed=0,
                                length=None, desc="test")
    assert sum(run["loss"][-5:]) / 5 < run["loss"][0] - 1.5  # 5.1 -> 3.2 nats per word in 40 steps
    test = pairs(8, "test")
    out = seq2seq.translate(model, tok, [s for s, _ in test], num_beams=2, max_new_tokens=8, length=None)
    assert len(out) == 8 and all(isinstance(o, str) for o in out)


def test_sacrebleu_on_dates_gives_partial_credit():
    refs = ["2021-03-21", "1999-12-31"]
    exact = sacrebleu.corpus_chrf(refs, [refs]).score
    one_digit = sacrebleu.corpus_chrf(["2021-03-22", "1999-12-31"], [refs]).score
    assert exact == pytest.approx(100) and 60 < one_digit < 100
    assert sacrebleu.corpus_bleu(refs, [refs]).score == pytest.approx(100)
    assert seq2seq.exact_match(["2021-03-22", "1999-12-31"], refs) == 0.5
