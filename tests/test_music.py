"""course_utils.music: note tokens, the chorale cache, baselines and metrics, sound and piano rolls (notebook 06).

Only two real chorales are parsed here (music21 takes a while per file); the rest uses hand-made melodies.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from course_utils import music

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: one thread is fastest (conftest.py)


@pytest.mark.parametrize("pitch, name", [(60, "C4"), (69, "A4"), (61, "C#4"), (71, "B4"), (72, "C5"), (0, "C-1")])
def test_midi_names(pitch, name):
    assert music.midi_name(pitch) == name and music.midi_of(name) == pitch


def test_every_midi_pitch_round_trips():
    assert all(music.midi_of(music.midi_name(p)) == p for p in range(128))
    with pytest.raises(ValueError, match="note name"):
        music.midi_of("H4")


@pytest.mark.parametrize("quarters, text", [(1, "1"), (0.5, "0.5"), (1.5, "1.5"), (0.25, "0.25"), (0.75, "0.75"),
                                            (4, "4"), (1 / 3, "1/3"), (2 / 3, "2/3")])
def test_durations_and_tokens_round_trip(quarters, text):
    assert music.duration_text(quarters) == text
    token = music.note_token(music.Note(76, quarters))
    assert token == f"E5_{text}"
    parsed = music.parse_token(token)
    assert parsed.pitch == 76 and parsed.quarters == pytest.approx(quarters)


def test_parse_token_specials_rests_and_errors():
    assert music.parse_token("<end>") is None and music.parse_token("<minor>") is None
    assert music.parse_token("R_2") == music.Note(None, 2.0)
    with pytest.raises(ValueError, match="note token"):
        music.parse_token("E5")
    with pytest.raises(ValueError, match="positive"):
        music.Note(60, 0)
    assert music.notes_of(["<major>", "C4_1", "R_1", "<end>", "D4_1"]) == [music.Note(60, 1.0), music.Note(None, 1.0)]


@pytest.mark.parametrize("sharps, shift", [(0, 0), (1, 5), (-1, -5), (2, -2), (3, 3), (-3, -3), (6, -6), (-6, -6),
                                           (4, -4), (-2, 2)])
def test_transposition_to_no_sharps_or_flats(sharps, shift):
    assert music.transposition(sharps) == shift
    tonic = 7 * sharps % 12  # pitch class of the major tonic of that signature
    assert (tonic + shift) % 12 == 0


def _score(sharps: int, mode: str):
    from music21 import key, note, stream, tie

    part = stream.Part()
    part.partName = "Soprano"
    part.append(key.Key(key.sharpsToPitch(sharps).name if mode == "major" else
                        key.sharpsToPitch(sharps + 3).name.lower()))
    part.append(note.Rest(quarterLength=1))
    a, b = note.Note("D5", quarterLength=1), note.Note("D5", quarterLength=1)
    a.tie, b.tie = tie.Tie("start"), tie.Tie("stop")
    part.append([a, b, note.Note("F#5", quarterLength=0.5), note.Rest(quarterLength=0.5),
                 note.Note("A4", quarterLength=2)])
    alto = stream.Part()
    alto.partName = "Alto"
    alto.append(note.Note("D4", quarterLength=6))
    return stream.Score([part, alto])


def test_melody_tokens_of_a_hand_made_score():
    # D major (2 sharps) moves down 2 semitones to C major; the leading rest goes, the tied D5s merge
    out = music.melody_tokens(_score(2, "major"))
    assert (out["mode"], out["sharps"], out["shift"]) == ("major", 2, -2)
    assert out["tokens"] == ["<major>", "C5_2", "E5_0.5", "R_0.5", "G4_2", "<end>"]
    minor = music.melody_tokens(_score(2, "minor"))  # B minor shares D major's signature, and its shift
    assert minor["mode"] == "minor" and minor["tokens"][1:] == out["tokens"][1:]


def test_two_real_chorales():
    paths = music.chorale_paths()
    assert len(paths) >= 400 and all(p.suffix in (".mxl", ".xml") for p in paths)
    first = music.tokenise_files(paths[:2])
    assert [c["name"] for c in first] == [paths[0].stem, paths[1].stem]
    bwv1 = first[0]  # BWV 1.6 is in F major: F4 C5 A4 F4 moved down 5 semitones
    assert bwv1["name"] == "bwv1.6" and bwv1["mode"] == "major" and bwv1["shift"] == -5
    assert bwv1["tokens"][:5] == ["<major>", "C4_1", "G4_1", "E4_1", "C4_1"]
    assert all(c["tokens"][-1] == "<end>" for c in first)
    assert music.in_key_share([c["tokens"] for c in first]) > 0.85


def test_cache_round_trip_checksum_and_format(tmp_path, monkeypatch, capsys):
    chorales = [{"name": "a", "mode": "major", "sharps": 0, "shift": 0, "tokens": ["<major>", "C4_1", "<end>"]}]
    path = tmp_path / "bach" / "melodies.json"
    music.write_cache(chorales, path)
    assert music.read_cache(path) == chorales
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".part")]
    monkeypatch.setattr(music, "tokenise_files", lambda *a, **k: pytest.fail("the cache should have been used"))
    assert music.load_chorales(path=path) == chorales
    data = bytearray(path.read_bytes())
    data[10] ^= 1
    path.write_bytes(bytes(data))
    capsys.readouterr()
    assert music.read_cache(path) is None  # a changed byte fails the checksum: the cache is not used
    message = "melodies.json: checksum mismatch, the cache is not used (load_chorales() rebuilds it)\n"
    assert capsys.readouterr().out == message
    monkeypatch.setattr(music, "tokenise_files", lambda *a, **k: chorales)
    monkeypatch.setattr(music, "chorale_paths", lambda: [])
    assert music.load_chorales(path=path) == chorales and music.read_cache(path) == chorales  # as the message says
    monkeypatch.setattr(music, "CACHE_FORMAT", music.CACHE_FORMAT + 1)
    assert music.read_cache(path) is None


def test_split_keeps_versions_together_and_is_stable():
    names = [f"bwv{i}.{j}" for i in range(1, 60) for j in range(1, 3)]
    chorales = [{"name": n} for n in names] + [{"name": n + "-a"} for n in names]
    train, val = music.split(chorales)
    val_groups = {music.group_of(c["name"]) for c in val}
    assert val and not val_groups & {music.group_of(c["name"]) for c in train}
    assert 0.03 < len(val) / len(chorales) < 0.2
    assert music.split(chorales[::-1])[1] == val[::-1]  # the same chorales, whatever the order
    with pytest.raises(ValueError, match="val_every"):
        music.split(chorales, 1)


def test_split_keeps_settings_of_one_tune_together():
    tune = ["C4_1", "D4_1", "E4_1", "C4_1", "G4_2", "F4_1", "E4_1", "D4_1", "C4_2", "E4_1", "D4_1", "C4_4"]
    octave_up = [t.replace("4_", "5_") for t in tune]  # the same tune an octave higher
    other = ["E4_1", "E4_1", "D4_1", "C4_1"] + tune[4:]  # another opening
    chorales = [{"name": f"bwv{i}.{j}", "tokens": ["<major>", *melody, "<end>"]}
                for i in range(1, 60) for j, melody in ((1, tune if i % 3 == 0 else other[:4] + [f"A{i % 7}_1"]),
                                                         (2, octave_up if i == 7 else ["R_1", f"B{i % 7}_1"]))]
    assert music.opening(["<major>", "R_1", *tune, "<end>"]) == music.opening(octave_up)
    assert music.opening(other) != music.opening(tune)
    groups = music.tune_groups(chorales)
    same_tune = {g for c, g in zip(chorales, groups, strict=True) if music.opening(c["tokens"]) == music.opening(tune)}
    assert same_tune == {"bwv12.1"}  # bwv3.1 ... bwv57.1 and bwv7.2: one tune, named by its smallest group
    train, val = music.split(chorales)
    train_openings = {music.opening(c["tokens"]) for c in train} - {()}  # () : a single note, no tune
    assert val and not any(music.opening(c["tokens"]) in train_openings for c in val)
    assert music.split(chorales[::-1])[1] == val[::-1]


def test_word_tokenizer_and_ids():
    chorales = [{"name": "a", "tokens": ["<major>", "C4_1", "E4_1", "<end>"]},
                {"name": "b", "tokens": ["<minor>", "A3_2", "<end>"]}]
    vocab = music.vocabulary(chorales)
    assert vocab[:3] == ["<end>", "<major>", "<minor>"] and sorted(vocab[3:]) == vocab[3:]
    tok = music.word_tokenizer(vocab)
    ids = music.ids_of(chorales, vocab)
    assert tok(" ".join(chorales[0]["tokens"]))["input_ids"] == ids[0].tolist()
    assert tok.decode(ids[1].tolist()) == "<minor> A3_2 <end>" and tok.eos_token_id == 0
    with pytest.raises(ValueError, match="not in the vocabulary"):
        music.ids_of([{"name": "c", "tokens": ["<major>", "B9_1"]}], vocab)
    with pytest.raises(ValueError, match="start with"):
        music.word_tokenizer(["C4_1", "<end>"])


def test_ngram_probs_known_answers():
    train = [torch.tensor([0, 1, 2, 1, 2])]  # bigrams 0->1, 1->2 twice, 2->1; trigrams 012, 121, 212
    probs = music.ngram_probs(train, [torch.tensor([0, 2, 1]), torch.tensor([0, 1, 2])], 3, 1.0)
    p2 = (2 + 1) / (4 + 3)  # add-1 unigram over the 4 predicted tokens: 1 and 2 twice each
    expected = [(p2, 0.0, 0.0),  # 2 after 0: no bigram 0->2; the first note's trigram is its bigram
                (p2, 1.0, 1.0),  # 1 after 2 (seen once, always 1); context 0, 2 never seen: the bigram's
                (p2, 1.0, 1.0),  # 1 after 0
                (p2, 1.0, 1.0)]  # 2 after 0, 1: trigram 012 seen once, context 01 once
    assert torch.allclose(probs, torch.tensor(expected, dtype=torch.float64))
    mixed = probs @ torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
    assert mixed.min() > 0  # the unigram's share keeps every probability above 0
    assert music.ngram_probs(train, [torch.tensor([1, 2, 1])], 3, 1.0)[1, 2] == pytest.approx(1.0)  # 121: 1 of 1
    with pytest.raises(ValueError, match="alpha"):
        music.ngram_probs(train, train, 3, 0.0)

def test_ngram_nll_known_answers():
    train = [torch.tensor([0, 1, 2]), torch.tensor([0, 1, 1, 2])]
    val = [torch.tensor([0, 1, 2])]
    # bigram counts: 0->1: 2, 1->2: 2, 1->1: 1; alpha = 1 over 3 tokens
    p01, p12 = (2 + 1) / (2 + 3), (2 + 1) / (3 + 3)
    assert music.ngram_nll(train, val, 3, 2, 1.0) == pytest.approx(-(math.log(p01) + math.log(p12)) / 2)
    # unigram counts of predicted tokens: 1: 3, 2: 2 (token 0 is never predicted)
    u1, u2 = (3 + 1) / (5 + 3), (2 + 1) / (5 + 3)
    assert music.ngram_nll(train, val, 3, 1, 1.0) == pytest.approx(-(math.log(u1) + math.log(u2)) / 2)
    with pytest.raises(ValueError, match="order"):
        music.ngram_nll(train, val, 3, 3)
    with pytest.raises(ValueError, match="alpha"):
        music.ngram_nll(train, val, 3, 2, 0.0)


def test_sampling_a_deterministic_bigram_reproduces_it():
    train = [torch.tensor([1, 3, 4, 2, 0])]
    out = music.sample_ngram(train, 5, 2, start=1, end=0, n=3, generator=torch.Generator().manual_seed(0))
    assert [s.tolist() for s in out] == [[1, 3, 4, 2, 0]] * 3


def test_in_key_share_and_pitch_class_distance():
    melody = ["<major>", "C4_1", "F#4_1", "G4_1", "R_1", "<end>"]
    assert music.in_key_share([melody]) == pytest.approx(2 / 3)
    assert music.pitch_class_distance([melody], [melody]) == 0
    assert music.pitch_class_distance([["C4_1"]], [["D4_1"]]) == 1
    assert music.pitch_class_distance([["C4_1", "D4_1"]], [["C5_1"]]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="no notes"):
        music.in_key_share([["<major>", "R_1"]])


def test_synthesised_a4_is_440_hz_and_lasts_its_beat():
    rate = 8000
    audio = music.synthesise([music.Note(69, 1.0)], bpm=60, sample_rate=rate, harmonics=(1.0,))
    assert audio.dtype == np.float32 and len(audio) == rate and np.abs(audio).max() <= 0.9 + 1e-6
    spectrum = np.abs(np.fft.rfft(audio))
    assert np.fft.rfftfreq(len(audio), 1 / rate)[spectrum.argmax()] == pytest.approx(440, abs=1)
    assert abs(audio[0]) < 1e-3 and abs(audio[-1]) < 1e-3  # the envelope starts and ends at silence
    with_rest = music.synthesise([music.Note(None, 0.5), music.Note(60, 0.5)], bpm=60, sample_rate=rate)
    assert len(with_rest) == rate and np.all(with_rest[: rate // 2] == 0)


def test_frequency_and_seconds():
    assert music.frequency(81) == pytest.approx(880) and music.frequency(57) == pytest.approx(220)
    assert music.melody_seconds([music.Note(60, 2.0), music.Note(None, 1.0)], bpm=120) == pytest.approx(1.5)


def test_roll_and_piano_roll():
    notes = [music.Note(60, 1.0), music.Note(None, 0.5), music.Note(62, 0.5)]
    grid, low = music.roll(notes, steps_per_quarter=2)
    assert low == 60 and grid.shape == (3, 4)
    assert grid.astype(int).tolist() == [[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]]
    import matplotlib

    matplotlib.use("Agg")
    fig = music.piano_roll({"a": notes, "b": notes[:1]})
    assert len(fig.axes) == 2 and fig.axes[0].get_title() == "a"
    with pytest.raises(ValueError, match="pitched"):
        music.roll([music.Note(None, 1.0)])


def test_prepare_chorales_fills_the_cache_or_names_the_missing_package(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(music, "load_chorales", lambda: calls.append(1) or [{"name": "bwv1.6"}] * 3)
    assert music.prepare_chorales() == 0 and calls == [1]
    out = capsys.readouterr().out
    assert "bach-chorales" in out and "(3 melodies)" in out

    def missing():
        raise ImportError("No module named 'music21'")

    monkeypatch.setattr(music, "load_chorales", missing)
    assert music.prepare_chorales() == 1
    assert "pip install music21" in capsys.readouterr().err
