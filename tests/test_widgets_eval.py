"""Notebook 07's rating widgets without a browser: what comes next, what a click records, the reveal at the end."""

from __future__ import annotations

import base64
import csv
import io
import re
import wave

import numpy as np
import pytest
import torch

from course_utils import human_eval
from course_utils.widgets import (
    PAIR_BUTTONS,
    QUIZ_BUTTONS,
    EvalItem,
    PairwiseComparison,
    RealOrGeneratedQuiz,
    Sound,
    image_png,
    item_html,
)


def image(seed: int) -> torch.Tensor:
    return torch.rand(1, 28, 28, generator=torch.Generator().manual_seed(seed))


def quiz_items() -> list[EvalItem]:
    images = [EvalItem(f"real-{i}", "real", image(i)) for i in range(4)]
    images += [EvalItem(f"gan-{i}", "gan", image(10 + i)) for i in range(4)]
    texts = [EvalItem("text-real-0", "real", "To be, or not to be"), EvalItem("text-gpt-0", "gpt", "To bee or nat")]
    return texts[:1] + images + texts[1:]  # the texts come last in the quiz whatever the order given


def pairs() -> list[tuple[EvalItem, EvalItem]]:
    out = [(EvalItem(f"gan-{i}", "gan", image(i)), EvalItem(f"vae-{i}", "vae", image(20 + i))) for i in range(12)]
    out.append((EvalItem("c-0", "char-gpt", "and so", prompt="ROMEO:"), EvalItem("h-0", "hf-gpt", "the the",
                                                                                  prompt="ROMEO:")))
    return out


def rows(path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open(encoding="utf-8")))


# --- items and what is shown ----------------------------------------------------------------------------------


def test_items_check_their_fields():
    with pytest.raises(ValueError, match="item id"):
        EvalItem("a,b", "gan", image(0))
    with pytest.raises(ValueError, match="model name"):
        EvalItem("a", "", image(0))
    with pytest.raises(ValueError, match=r"\[1, H, W\]"):
        EvalItem("a", "gan", torch.rand(3, 28, 28))
    with pytest.raises(ValueError, match="content"):
        EvalItem("a", "gan", 3)
    assert EvalItem("a", "gan", image(0)).kind == "image" and EvalItem("b", "gpt", "hi").kind == "text"


def test_what_is_shown_never_names_the_model():
    img = EvalItem("gan-7", "gan", image(0))
    shown = item_html(img, scale=3)
    assert "gan" not in shown and shown.startswith('<img src="data:image/png;base64,')
    png = base64.b64decode(re.search(r"base64,([^\"]+)", shown).group(1))
    from PIL import Image

    assert Image.open(io.BytesIO(png)).size == (84, 84) and png == image_png(img.content, 3)
    text = item_html(EvalItem("t", "gpt", "a <b> & c"))
    assert "a &lt;b&gt; &amp; c" in text and "gpt" not in text


# --- the quiz ------------------------------------------------------------------------------------------------


def test_quiz_order_is_shuffled_per_rater_images_first_and_reproducible(tmp_path):
    a1 = RealOrGeneratedQuiz(quiz_items(), "ana", tmp_path / "ana.csv")
    a2 = RealOrGeneratedQuiz(quiz_items(), "ana", tmp_path / "ana2.csv")
    b = RealOrGeneratedQuiz(quiz_items(), "bo", tmp_path / "bo.csv")
    order = [it.id for it in a1._queue]
    assert order == [it.id for it in a2._queue] and order != [it.id for it in b._queue]
    assert [a1._queue[i].kind for i in range(10)] == ["image"] * 8 + ["text"] * 2
    assert order[:8] != [it.id for it in quiz_items()[1:9]]  # shuffled, not as given


def test_quiz_answer_records_one_row_and_moves_on(tmp_path):
    path = tmp_path / "ana.csv"
    quiz = RealOrGeneratedQuiz(quiz_items(), "ana", path)
    first = quiz.current()
    assert quiz.progress() == "1 of 10"
    rating = quiz.answer("generated")
    assert rating.item_a == first.id and rating.model_a == first.model and rating.task == "quiz"
    assert quiz.current() is not first and quiz.progress() == "2 of 10"
    (row,) = rows(path)
    assert row["rater"] == "ana" and row["item_a"] == first.id and row["choice"] == "generated" and row["time"]
    with pytest.raises(ValueError, match="choice"):
        quiz.answer("fake")
    assert len(rows(path)) == 1  # a refused answer writes nothing


def test_quiz_reveal_comes_at_the_end_with_the_score(tmp_path):
    quiz = RealOrGeneratedQuiz(quiz_items(), "ana", tmp_path / "ana.csv")
    while not quiz.done:
        before = quiz.reveal()
        assert "left" in before and "gan" not in before and "real-" not in before
        item = quiz.current()
        right = "real" if item.model == "real" else "generated"
        wrong = "generated" if right == "real" else "real"
        quiz.answer(right if item.kind == "image" else wrong)  # right on the 8 images, wrong on the 2 texts
    text = quiz.reveal()
    assert text.startswith("right on 8 of 10 (80%") and "gan-0=gan" in text
    q = human_eval.quiz_accuracy(quiz.ratings)
    assert f"{q['low']:.0%} to {q['high']:.0%}" in text
    with pytest.raises(ValueError, match="over"):
        quiz.answer("real")


def test_a_restarted_quiz_resumes_where_the_rater_stopped(tmp_path):
    path = tmp_path / "ana.csv"
    quiz = RealOrGeneratedQuiz(quiz_items(), "ana", path)
    answered = [quiz.answer("real").item_a for _ in range(3)]
    again = RealOrGeneratedQuiz(quiz_items(), "ana", path)  # a new kernel, the same file
    assert len(again.ratings) == 3 and again.progress() == "4 of 10"
    remaining = []
    while not again.done:
        remaining.append(again.current().id)
        again.answer("real")
    assert not set(answered) & set(remaining) and len(answered) + len(remaining) == 10
    assert len(rows(path)) == 10 and "of 10" in again.reveal()
    other = RealOrGeneratedQuiz(quiz_items(), "bo", path)  # another rater in the same file starts afresh
    assert other.progress() == "1 of 10"


def test_rater_names_that_cannot_name_a_file_are_refused(tmp_path):
    for bad in ("", "a/b", "a,b", "a|b"):
        with pytest.raises(ValueError, match="rater name"):
            RealOrGeneratedQuiz(quiz_items(), bad, tmp_path / "x.csv")
    with pytest.raises(ValueError, match="own id"):
        RealOrGeneratedQuiz(quiz_items() * 2, "ana", tmp_path / "x.csv")


# --- the pairwise comparison ----------------------------------------------------------------------------------


def test_pairwise_sides_are_random_and_a_click_records_the_winner(tmp_path):
    path = tmp_path / "ana.csv"
    comparison = PairwiseComparison(pairs(), "ana", path)
    lefts = []
    while not comparison.done:
        left, right = comparison.current()
        lefts.append(left.model)
        rating = comparison.answer("left")
        assert rating.shown_left == left.id and rating.winner() == left.model
        assert {rating.item_a, rating.item_b} == {left.id, right.id}
    assert 0 < lefts.count("gan") < 12  # both sides occur (seeded: the same for every run)
    assert lefts[-1] in ("char-gpt", "hf-gpt")  # the text pair comes after the images
    recorded = rows(path)
    assert len(recorded) == 13 and all(r["task"] == "pairwise" for r in recorded)
    wins = human_eval.win_rates(comparison.ratings)
    assert wins["gan"]["wins"] == lefts.count("gan") and wins["gan"]["n"] == 12


def test_pairwise_reveal_hides_the_models_until_the_end(tmp_path):
    comparison = PairwiseComparison(pairs(), "ana", tmp_path / "ana.csv")
    for choice in ["tie"] * 13:
        assert "gan" not in comparison.reveal() and "vae" not in comparison.reveal()
        comparison.answer(choice)
    text = comparison.reveal()
    assert "gan        won 6 of 12 (50%" in text and "you said tie" in text
    with pytest.raises(ValueError, match="over"):
        comparison.answer("left")


def test_pairwise_refuses_bad_pairs(tmp_path):
    a, b = EvalItem("a", "gan", image(0)), EvalItem("b", "vae", image(1))
    with pytest.raises(ValueError, match="different ids"):
        PairwiseComparison([(a, a)], "ana", tmp_path / "x.csv")
    with pytest.raises(ValueError, match="two images, two texts or two sounds"):
        PairwiseComparison([(a, EvalItem("t", "gpt", "hi"))], "ana", tmp_path / "x.csv")
    with pytest.raises(ValueError, match="twice"):
        PairwiseComparison([(a, b), (b, a)], "ana", tmp_path / "x.csv")
    with pytest.raises(ValueError, match="at least one pair"):
        PairwiseComparison([], "ana", tmp_path / "x.csv")


# --- the ipywidgets wiring: a click is an answer -------------------------------------------------------------------


def test_pairwise_widget_buttons_append_one_row_per_click(tmp_path):
    pytest.importorskip("ipywidgets")
    path = tmp_path / "ratings" / "ana.csv"
    comparison = PairwiseComparison(pairs()[:2], "ana", path)
    box = comparison.widget()
    assert [b.description for b in box.buttons] == list(PAIR_BUTTONS) == ["left is better", "tie", "right is better"]
    left_id = comparison.current()[0].id
    assert "1 of 2" in box.progress.value and box.shown[1].value.startswith("<img")
    box.buttons[0].click()
    (row,) = rows(path)
    assert row["choice"] == "left" and row["shown_left"] == left_id
    assert "2 of 2" in box.progress.value and box.reveal.value == ""
    box.buttons[2].click()
    assert [r["choice"] for r in rows(path)] == ["left", "right"]
    assert all(b.disabled for b in box.buttons) and "won" in box.reveal.value
    box.buttons[1].click()  # a click after the end records nothing
    assert len(rows(path)) == 2


def test_quiz_widget_buttons(tmp_path):
    pytest.importorskip("ipywidgets")
    quiz = RealOrGeneratedQuiz(quiz_items()[:3], "ana", tmp_path / "ana.csv")
    box = quiz.widget()
    assert [b.description for b in box.buttons] == list(QUIZ_BUTTONS) == ["real", "generated"]
    for _ in range(3):
        box.buttons[1].click()
    assert [r["choice"] for r in rows(tmp_path / "ana.csv")] == ["generated"] * 3
    assert all(b.disabled for b in box.buttons) and "right on" in box.reveal.value


# --- listening: melodies in the pairwise comparison ------------------------------------------------------------


def tone(pitch: int, seconds: float = 0.5, rate: int = 8000) -> Sound:
    from course_utils import music

    return Sound(music.synthesise([music.Note(pitch, 1.0)], bpm=60 / seconds, sample_rate=rate), rate)


def test_sounds_check_their_samples():
    with pytest.raises(ValueError, match="1-D"):
        Sound(np.zeros((2, 10)), 8000)
    with pytest.raises(ValueError, match="1-D"):
        Sound(np.array([0.0, np.nan]), 8000)
    with pytest.raises(ValueError, match="rate"):
        Sound(np.zeros(10), 0)
    assert EvalItem("m", "bigram", tone(60)).kind == "audio"


def test_an_audio_item_renders_as_a_player_with_its_wav_inline_and_no_model_name():
    item = EvalItem("mel0-bigram", "bigram", tone(69, seconds=0.5, rate=8000))
    shown = item_html(item)
    assert shown.startswith("<audio controls") and "autoplay" not in shown  # the rater presses play
    assert "bigram" not in shown and "mel0" not in shown
    data = base64.b64decode(re.search(r'src="data:audio/wav;base64,([^"]+)"', shown).group(1))
    with wave.open(io.BytesIO(data)) as wav:  # a real WAV file: mono, the clip's rate and length
        assert (wav.getnchannels(), wav.getframerate(), wav.getnframes()) == (1, 8000, 4000)
        frames = np.frombuffer(wav.readframes(4000), dtype="<i2")
    spectrum = np.abs(np.fft.rfft(frames))
    assert abs(spectrum.argmax() * 8000 / 4000 - 440) <= 2  # A4 comes out at 440 Hz


def test_melody_pairs_come_after_the_images_and_texts_and_record_like_any_pair(tmp_path):
    melodies = [(EvalItem(f"mel{i}-chorale", "chorale", tone(60 + i)), EvalItem(f"mel{i}-bigram", "bigram",
                                                                                   tone(64 + i))) for i in range(2)]
    comparison = PairwiseComparison(melodies + pairs(), "ana", tmp_path / "ana.csv")
    kinds = []
    while not comparison.done:
        left, right = comparison.current()
        kinds.append(left.kind)
        comparison.answer("right")
    assert kinds == ["image"] * 12 + ["text"] + ["audio"] * 2
    wins = human_eval.win_rates(comparison.ratings)
    assert wins["chorale"]["n"] == wins["bigram"]["n"] == 2 and wins["chorale"]["wins"] + wins["bigram"]["wins"] == 2
    with pytest.raises(ValueError, match="two sounds"):
        PairwiseComparison([(melodies[0][0], EvalItem("t", "gpt", "hi"))], "ana", tmp_path / "x.csv")


def test_pairwise_widget_plays_the_melodies_of_the_current_pair(tmp_path):
    pytest.importorskip("ipywidgets")
    pair = (EvalItem("mel0-chorale", "chorale", tone(60)), EvalItem("mel0-bigram", "bigram", tone(67)))
    comparison = PairwiseComparison([pair], "ana", tmp_path / "ana.csv")
    box = comparison.widget()
    assert "Listen" in box.shown[0].value
    assert all(view.value.startswith("<audio controls") for view in box.shown[1:])
    box.buttons[0].click()
    assert rows(tmp_path / "ana.csv")[0]["shown_left"] == comparison.ratings[0].shown_left
