"""Music from a language model: Bach chorale melodies as tokens, baselines, metrics, sound and piano rolls.

Taught in notebook 06, section 5:

- the data: :func:`chorale_paths` (the MusicXML Bach chorales that ship inside
  ``music21``, no download), :func:`melody_tokens` (one chorale's soprano line
  as note tokens, transposed to the key signature without sharps or flats),
  :func:`load_chorales` (all of them, parsed once and cached, checksummed, in
  the data cache) and :func:`split` (train and validation chorales);
- tokens: ``<major>`` or ``<minor>`` starts a melody, then one token per note,
  ``PITCH_DURATION`` (``"E5_1"`` is an E above middle C for a quarter note,
  ``"R_2"`` a half-note rest), and ``<end>``: :func:`parse_token`,
  :func:`notes_of`, :func:`word_tokenizer` (a ``tokenizers`` word-level
  tokenizer, so the GPT-2 of sections 1-2 trains on music unchanged);
- baselines and metrics: :func:`ngram_nll` (unigram and bigram NLL per note),
  :func:`sample_ngram`, :func:`in_key_share` and :func:`pitch_class_distance`;
- listening and looking: :func:`synthesise` (additive sine tones with an
  envelope, for ``IPython.display.Audio``) and :func:`piano_roll`.
"""

from __future__ import annotations

import functools
import json
import math
import re
import sys
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from course_utils.data import data_dir
from course_utils.files import sha256_of, write_bytes_atomic, write_text_atomic
from course_utils.progress import progress

CACHE_FORMAT = 1  # bump when the tokenisation changes: the cache file name carries it
START = {"major": "<major>", "minor": "<minor>"}
END = "<end>"
REST = "R"
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
SCALE = frozenset({0, 2, 4, 5, 7, 9, 11})  # pitch classes of the key signature without sharps or flats
SAMPLE_RATE = 16_000  # samples per second of the synthesised audio
# The held-out chorales that notebook 06 draws and plays labelled "Bach" (its first validation chorale, val_ch[0]):
# notebook 07's blind listening test starts after them and asserts that it plays none of them, nor their tunes.
LABELLED_CHORALES = ("bwv102.7",)
_TOKEN = re.compile(r"^(R|[A-G]#?-?\d+)_(\d+(?:/\d+)?(?:\.\d+)?)$")


# --- tokens ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Note:
    """One note of a melody: a MIDI pitch (``None`` for a rest) and a duration in quarter notes."""

    pitch: int | None
    quarters: float

    def __post_init__(self) -> None:
        if self.pitch is not None and not 0 <= self.pitch <= 127:
            raise ValueError(f"MIDI pitch must be in 0..127, got {self.pitch}")
        if not self.quarters > 0:
            raise ValueError(f"a duration must be positive, got {self.quarters}")


def midi_name(pitch: int) -> str:
    """``60 -> 'C4'`` (middle C), ``69 -> 'A4'``; sharps, never flats."""
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


def midi_of(name: str) -> int:
    """``'C4' -> 60``, ``'F#5' -> 78``."""
    m = re.fullmatch(r"([A-G]#?)(-?\d+)", name)
    if not m:
        raise ValueError(f"{name!r} is not a note name such as 'C4' or 'F#5'")
    return NOTE_NAMES.index(m.group(1)) + 12 * (int(m.group(2)) + 1)


def duration_text(quarters: float | Fraction) -> str:
    """A duration as it appears in a token: ``1``, ``0.5``, ``1.5``, ``1/3`` (a triplet eighth)."""
    q = Fraction(quarters).limit_denominator(48)
    if q <= 0:
        raise ValueError(f"a duration must be positive, got {quarters}")
    if q.denominator == 1:
        return str(q.numerator)
    if 48 % q.denominator == 0 and q.denominator in (2, 4, 8, 16):
        return f"{float(q):g}"
    return f"{q.numerator}/{q.denominator}"


def note_token(note: Note) -> str:
    """``Note(76, 1.0) -> 'E5_1'``; a rest is ``'R_<duration>'``."""
    pitch = REST if note.pitch is None else midi_name(note.pitch)
    return f"{pitch}_{duration_text(note.quarters)}"


@functools.lru_cache(maxsize=4096)  # a corpus has a few hundred distinct tokens; Note is frozen, so sharing is safe
def parse_token(token: str) -> Note | None:
    """The :class:`Note` of a note token, ``None`` for ``<major>``, ``<minor>`` and ``<end>``."""
    if token in (END, *START.values()):
        return None
    m = _TOKEN.match(token)
    if not m:
        raise ValueError(f"{token!r} is not a note token such as 'E5_1' or 'R_0.5'")
    pitch = None if m.group(1) == REST else midi_of(m.group(1))
    return Note(pitch, float(Fraction(m.group(2))))


def notes_of(tokens: Iterable[str]) -> list[Note]:
    """The notes of a token sequence, up to its first ``<end>``; start tokens are skipped."""
    notes = []
    for token in tokens:
        if token == END:
            break
        note = parse_token(token)
        if note is not None:
            notes.append(note)
    return notes


# --- the corpus ----------------------------------------------------------------------------------------


def chorale_paths() -> list[Path]:
    """The MusicXML Bach chorales in ``music21``'s corpus, sorted by name (410 files in music21 10.5).

    The corpus also holds three Humdrum copies of chorales that are there in
    MusicXML too and 20 Roman-numeral analyses: those are left out.
    """
    # imported here: music21 is optional (pip install music21) and slow to import; only the corpus needs it
    from music21 import corpus

    return sorted((Path(p) for p in corpus.getComposer("bach") if Path(p).suffix in (".mxl", ".xml")),
                  key=lambda p: p.name)


def _melody_part(score: Any) -> Any:
    """The soprano part (by name), else the part with the highest mean pitch."""
    parts = list(score.parts)
    if not parts:
        raise ValueError("the score has no parts")
    for part in parts:
        if (part.partName or "").strip().lower().startswith("soprano"):
            return part

    def mean_pitch(part: Any) -> float:
        ps = [p.midi for n in part.flatten().notes for p in n.pitches]
        return sum(ps) / len(ps) if ps else -1.0

    return max(parts, key=mean_pitch)


def _key_signature(score: Any, part: Any) -> tuple[int, str]:
    """(sharps, mode) of the melody's first key signature; the mode from music21's key analysis if not written."""
    # imported here: music21 is optional (pip install music21) and slow to import; only the corpus needs it
    from music21 import key

    found = list(part.recurse().getElementsByClass(key.KeySignature))
    sharps = found[0].sharps if found else 0
    mode = getattr(found[0], "mode", None) if found else None
    if mode not in ("major", "minor"):
        mode = score.analyze("key").mode
    return sharps, mode if mode in ("major", "minor") else "major"


def transposition(sharps: int) -> int:
    """Semitones that move a key signature of ``sharps`` (flats negative) to none: the smallest move, -6..+5.

    The major key of ``s`` sharps has its tonic ``7 s`` semitones above C
    (mod 12); its relative minor shares the signature, so one shift serves both.
    """
    shift = -(7 * sharps) % 12
    return shift - 12 if shift > 5 else shift


def melody_tokens(score: Any) -> dict[str, Any]:
    """One chorale's melody as tokens: ``{"mode", "sharps", "shift", "tokens"}``.

    The soprano line, tied notes merged, grace notes dropped, transposed by
    :func:`transposition` so that every melody uses the key signature without
    sharps or flats (C major or A minor).
    """
    part = _melody_part(score)
    sharps, mode = _key_signature(score, part)
    shift = transposition(sharps)
    notes: list[Note] = []
    tied = False
    for n in part.flatten().notesAndRests:
        quarters = float(n.quarterLength)
        if quarters <= 0:
            continue  # grace notes have no duration
        if n.isChord:
            pitch = max(p.midi for p in n.pitches) + shift  # the top note of a divided soprano
        else:
            pitch = None if n.isRest else n.pitch.midi + shift
        if tied and notes and notes[-1].pitch == pitch:
            notes[-1] = Note(pitch, notes[-1].quarters + quarters)
        else:
            notes.append(Note(pitch, quarters))
        tied = n.tie is not None and n.tie.type in ("start", "continue")
    while notes and notes[0].pitch is None:
        notes.pop(0)  # a rest before the first note says nothing about the melody
    return {"mode": mode, "sharps": sharps, "shift": shift,
            "tokens": [START[mode], *(note_token(n) for n in notes), END]}


def tokenise_files(paths: Sequence[Path], desc: str = "chorales") -> list[dict[str, Any]]:
    """:func:`melody_tokens` of each file (music21 parses each one), with its name."""
    # imported here: music21 is optional (pip install music21) and slow to import; only the corpus needs it
    from music21 import converter

    out = []
    for path in progress(list(paths), desc=desc):
        entry = melody_tokens(converter.parse(str(path)))
        out.append({"name": Path(path).stem, **entry})
    return out


def cache_path() -> Path:
    """Where the token cache lives: ``bach_chorales/melodies-v{CACHE_FORMAT}.json`` in the data cache."""
    return data_dir() / "bach_chorales" / f"melodies-v{CACHE_FORMAT}.json"


def write_cache(chorales: list[dict[str, Any]], path: Path) -> Path:
    """Write the tokens and, beside them, their sha256 (``.sha256``); each whole or not at all."""
    # imported here: music21 is optional (pip install music21) and slow to import; only the corpus needs it
    import music21

    payload = json.dumps({"format": CACHE_FORMAT, "music21": music21.__version__, "count": len(chorales),
                          "chorales": chorales}, separators=(",", ":")).encode("utf-8")
    write_bytes_atomic(path, payload)
    write_text_atomic(path.with_suffix(".sha256"), sha256_of(path)[0])
    return path


def read_cache(path: Path) -> list[dict[str, Any]] | None:
    """The cached chorales, or ``None`` if the cache is missing, of another format, or fails its checksum."""
    sums = path.with_suffix(".sha256")
    if not path.exists() or not sums.exists():
        return None
    if sha256_of(path)[0] != sums.read_text(encoding="ascii").strip():
        print(f"{path.name}: checksum mismatch, the cache is not used (load_chorales() rebuilds it)")
        return None
    content = json.loads(path.read_bytes())
    if content.get("format") != CACHE_FORMAT:
        return None
    return content["chorales"]


def load_chorales(refresh: bool = False, path: Path | None = None) -> list[dict[str, Any]]:
    """Every chorale's melody tokens: from the checksummed cache, or parsed once with ``music21`` and cached.

    Parsing all of them takes music21 a while (a progress bar shows it); every
    later call reads the cache, whose sha256 is checked each time.
    """
    path = path or cache_path()
    cached = None if refresh else read_cache(path)
    if cached is not None:
        return cached
    chorales = tokenise_files(chorale_paths(), desc="parsing the chorales once")
    write_cache(chorales, path)
    return chorales


def prepare_chorales() -> int:
    """Parse the chorales once into the token cache: what ``python -m course_utils.data fetch`` runs for them.

    The data registry names this function for ``bach-chorales`` (its ``prepare``),
    so ``fetch`` (and ``make data``) does the slow parse once instead of the
    notebook's first run. No download: the chorales ship inside ``music21``.
    Returns the number of failures (0 or 1).
    """
    try:
        chorales = load_chorales()
    except ImportError as exc:
        print(f"error: bach-chorales needs music21 ({exc}); pip install music21", file=sys.stderr)
        return 1
    print(f"  {'bach-chorales':<26} ok  {cache_path()} ({len(chorales)} melodies)")
    return 0


def group_of(name: str) -> str:
    """The chorale a file belongs to: ``'bwv248.9-s' -> 'bwv248.9'`` (versions of one chorale share a group)."""
    return name.split("-", 1)[0]


OPENING = 12  # notes of a melody's opening that identify its hymn tune


def opening(tokens: Sequence[str], n: int = OPENING) -> tuple[int, ...]:
    """The intervals between the first ``n`` pitches of a melody (rests skipped): its tune, whatever the octave."""
    first = [note.pitch for note in notes_of(tokens) if note.pitch is not None][:n]
    return tuple(b - a for a, b in zip(first, first[1:], strict=False))


def tune_groups(chorales: Sequence[dict[str, Any]]) -> list[str]:
    """For every chorale, the name of its tune: the smallest :func:`group_of` among the chorales linked to it.

    Two chorales are linked when they are versions of one chorale (same BWV number) or when their
    openings (:func:`opening`) coincide: Bach set the same hymn tune under many BWV numbers, and the
    melody *is* the tune, so those settings must stay on one side of a split.
    """
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    first_with: dict[tuple[int, ...], str] = {}
    for c in chorales:
        group = find(group_of(c["name"]))
        key = opening(c.get("tokens", ()))
        if key:
            other = find(first_with.setdefault(key, group))
            low, high = sorted((group, other))
            parent[high] = low
    return [find(group_of(c["name"])) for c in chorales]


def split(chorales: Sequence[dict[str, Any]], val_every: int = 10) -> tuple[list[dict], list[dict]]:
    """Training and validation chorales: a tune is for validation when its name's CRC-32 divides by ``val_every``.

    The choice hashes the tune's name (:func:`tune_groups`), so it does not depend on the order of the
    files; it falls like a die of ``val_every`` faces thrown once per tune, so the share of tunes (and of
    chorales) in validation is near ``1 / val_every``, not exactly it; and two versions or settings of one
    tune never sit on both sides.
    """
    if val_every < 2:
        raise ValueError(f"val_every must be at least 2, got {val_every}")
    is_val = [zlib.crc32(g.encode()) % val_every == 0 for g in tune_groups(chorales)]
    return ([c for c, v in zip(chorales, is_val, strict=True) if not v],
            [c for c, v in zip(chorales, is_val, strict=True) if v])


# --- a tokenizer for the GPT-2 --------------------------------------------------------------------------


def vocabulary(chorales: Iterable[dict[str, Any]]) -> list[str]:
    """The special tokens, then every note token of ``chorales``, sorted."""
    specials = [END, *START.values()]
    notes = sorted({t for c in chorales for t in c["tokens"]} - set(specials))
    return specials + notes


def word_tokenizer(vocab: Sequence[str]) -> Any:
    """A ``transformers`` fast tokenizer whose tokens are the space-separated words of ``vocab``.

    ``<end>`` (id 0) is its end and padding token, so the GPT-2 helpers of
    :mod:`course_utils.hf` work on melodies unchanged.
    """
    # imported here: transformers adds seconds to start-up, and only this function needs it
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    if len(set(vocab)) != len(vocab) or not vocab or vocab[0] != END:
        raise ValueError(f"the vocabulary must start with {END!r} and hold each token once")
    tok = Tokenizer(models.WordLevel({t: i for i, t in enumerate(vocab)}, unk_token=END))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with spaces
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=END, pad_token=END, bos_token=END, unk_token=END)


def ids_of(chorales: Iterable[dict[str, Any]], vocab: Sequence[str]) -> list[torch.Tensor]:
    """Each chorale's tokens as a tensor of ids (a token outside ``vocab`` is an error, never a silent unk)."""
    index = {t: i for i, t in enumerate(vocab)}
    out = []
    for c in chorales:
        missing = [t for t in c["tokens"] if t not in index]
        if missing:
            raise ValueError(f"{c['name']}: tokens {missing[:3]} are not in the vocabulary")
        out.append(torch.tensor([index[t] for t in c["tokens"]], dtype=torch.long))
    return out


# --- baselines and metrics ----------------------------------------------------------------------------------


def ngram_counts(sequences: Iterable[torch.Tensor], vocab_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Unigram counts ``[V]`` of the predicted tokens and bigram counts ``[V, V]`` (previous, next)."""
    sequences = list(sequences)
    if not sequences:
        return torch.zeros(vocab_size), torch.zeros(vocab_size, vocab_size)
    # one bincount over all the pairs (no pair crosses two sequences): the same counts as one per sequence, faster
    prev = torch.cat([ids[:-1] for ids in sequences]).long()
    nxt = torch.cat([ids[1:] for ids in sequences]).long()
    uni = torch.bincount(nxt, minlength=vocab_size).float()
    bi = torch.bincount(prev * vocab_size + nxt, minlength=vocab_size ** 2).float().view(vocab_size, -1)
    return uni, bi


def ngram_nll(
    train: Sequence[torch.Tensor], val: Sequence[torch.Tensor], vocab_size: int, order: int, alpha: float = 0.1,
) -> float:
    """Mean NLL in nats per predicted token (every note and the end) of an add-``alpha`` n-gram, ``order`` 1 or 2.

    The first note of each melody is predicted from the start token, as the
    transformer predicts it; the unigram ignores the context altogether.
    """
    if order not in (1, 2):
        raise ValueError(f"order must be 1 (unigram) or 2 (bigram), got {order}")
    if alpha <= 0:
        raise ValueError(f"alpha must be positive (a zero count would give an infinite NLL), got {alpha}")
    uni, bi = ngram_counts(train, vocab_size)
    total, n = 0.0, 0
    for ids in val:
        prev, nxt = ids[:-1], ids[1:]
        if order == 1:
            logp = ((uni + alpha) / (uni.sum() + alpha * vocab_size)).log()[nxt]
        else:
            rows = bi[prev] + alpha
            logp = (rows / rows.sum(1, keepdim=True)).log().gather(1, nxt[:, None])[:, 0]
        total, n = total - float(logp.sum()), n + len(nxt)
    return total / n


def ngram_probs(
    train: Sequence[torch.Tensor], val: Sequence[torch.Tensor], vocab_size: int, alpha: float = 0.1,
) -> torch.Tensor:
    """``[N, 3]``: the unigram, bigram and trigram probability of every predicted token of ``val``.

    The tokens predicted are those of :func:`ngram_nll` (every note and the end).
    The unigram is add-``alpha``; the bigram and the trigram are the training
    frequencies of the token after its context, and fall back on the order
    below where the context never occurs in training (the first note, with one
    token of context, takes the bigram's). Weights summing to 1, the unigram's
    above 0, mix them into an interpolated trigram (Jelinek & Mercer, 1980) that
    gives every token a probability above 0.
    """
    if alpha <= 0:
        raise ValueError(f"alpha must be positive (a zero count would give an infinite NLL), got {alpha}")
    uni, bi = ngram_counts(train, vocab_size)
    p_uni, seen = ((uni + alpha) / (uni.sum() + alpha * vocab_size)).tolist(), bi.sum(1).tolist()
    tri: dict[tuple[int, int, int], int] = {}
    pairs: dict[tuple[int, int], int] = {}
    for ids in train:
        t = ids.tolist()
        for key in zip(t, t[1:], t[2:], strict=False):
            tri[key] = tri.get(key, 0) + 1
            pairs[key[:2]] = pairs.get(key[:2], 0) + 1
    rows = []
    for ids in val:
        t = ids.tolist()
        for i in range(1, len(t)):
            p1 = p_uni[t[i]]
            p2 = float(bi[t[i - 1], t[i]]) / seen[t[i - 1]] if seen[t[i - 1]] else p1
            n = pairs.get((t[i - 2], t[i - 1]), 0) if i >= 2 else 0
            rows.append((p1, p2, tri.get((t[i - 2], t[i - 1], t[i]), 0) / n if n else p2))
    return torch.tensor(rows, dtype=torch.float64)


def sample_ngram(
    train: Sequence[torch.Tensor], vocab_size: int, order: int, start: int, end: int, n: int,
    max_len: int = 200, alpha: float = 0.0, generator: torch.Generator | None = None,
) -> list[torch.Tensor]:
    """``n`` sequences drawn from the unigram or bigram model of ``train``, each from ``start`` until ``end``."""
    uni, bi = ngram_counts(train, vocab_size)
    out = []
    for _ in range(n):
        ids = [start]
        while len(ids) < max_len and (len(ids) == 1 or ids[-1] != end):
            row = (uni if order == 1 else bi[ids[-1]]) + alpha
            if row.sum() == 0:
                row = uni + 1e-9  # a token never followed by anything in train: fall back on the unigram
            ids.append(int(torch.multinomial(row / row.sum(), 1, generator=generator)))
        out.append(torch.tensor(ids))
    return out


def pitches(melodies: Iterable[Sequence[str]]) -> list[int]:
    """The MIDI pitches of every note (rests skipped) of token sequences."""
    return [n.pitch for tokens in melodies for n in notes_of(tokens) if n.pitch is not None]


def in_key_share(melodies: Iterable[Sequence[str]]) -> float:
    """The share of notes whose pitch class belongs to the key signature's scale (:data:`SCALE`).

    Every melody is transposed to the signature without sharps or flats, so
    that scale is C major's and A natural minor's seven pitch classes; the
    raised leading tone of a minor key (G sharp) counts as outside.
    """
    ps = pitches(melodies)
    if not ps:
        raise ValueError("no notes to measure")
    return sum(p % 12 in SCALE for p in ps) / len(ps)


def pitch_class_histogram(melodies: Iterable[Sequence[str]]) -> np.ndarray:
    """How often each of the 12 pitch classes (C = 0) occurs, as shares that sum to 1."""
    ps = pitches(melodies)
    if not ps:
        raise ValueError("no notes to measure")
    counts = np.bincount(np.array(ps) % 12, minlength=12).astype(float)
    return counts / counts.sum()


def pitch_class_distance(melodies: Iterable[Sequence[str]], reference: Iterable[Sequence[str]]) -> float:
    """Total-variation distance between two pitch-class histograms: half the L1 distance, in [0, 1]."""
    return float(0.5 * np.abs(pitch_class_histogram(melodies) - pitch_class_histogram(reference)).sum())


# --- listening and looking -------------------------------------------------------------------------------


def frequency(pitch: int) -> float:
    """Equal temperament: A4 (MIDI 69) is 440 Hz, each semitone a factor 2^(1/12)."""
    return 440.0 * 2 ** ((pitch - 69) / 12)


def synthesise(
    notes: Sequence[Note], bpm: float = 90.0, sample_rate: int = SAMPLE_RATE,
    harmonics: Sequence[float] = (1.0, 0.4, 0.2),
) -> np.ndarray:
    """A melody as sound: float32 samples in [-1, 1] for ``IPython.display.Audio(..., rate=sample_rate)``.

    Each note is a sum of sine waves at the pitch's frequency and its
    multiples (``harmonics`` are their amplitudes), shaped by an envelope that
    rises in 10 ms, decays slowly while the note lasts and falls to 0 in its
    last 30 ms, so consecutive notes do not click. A rest is silence.
    """
    if bpm <= 0 or sample_rate <= 0:
        raise ValueError("bpm and sample_rate must be positive")
    seconds_per_quarter = 60.0 / bpm
    parts = []
    for note in notes:
        n = max(1, round(note.quarters * seconds_per_quarter * sample_rate))
        if note.pitch is None:
            parts.append(np.zeros(n))
            continue
        t = np.arange(n) / sample_rate
        f = frequency(note.pitch)
        wave = sum(a * np.sin(2 * np.pi * f * (k + 1) * t)
                   for k, a in enumerate(harmonics) if f * (k + 1) < sample_rate / 2)  # none above Nyquist
        attack, release = min(n, int(0.01 * sample_rate)), min(n, int(0.03 * sample_rate))
        env = np.exp(-1.5 * t)
        env[:attack] *= np.linspace(0, 1, attack, endpoint=False)
        env[n - release:] *= np.linspace(1, 0, release)
        parts.append(wave * env)
    audio = np.concatenate(parts) if parts else np.zeros(0)
    peak = np.abs(audio).max() if len(audio) else 0.0
    return (audio / peak * 0.9 if peak > 0 else audio).astype(np.float32)


def roll(notes: Sequence[Note], steps_per_quarter: int = 4) -> tuple[np.ndarray, int]:
    """A piano roll as a boolean matrix ``[pitches, time steps]`` and the MIDI pitch of its row 0."""
    pitched = [n.pitch for n in notes if n.pitch is not None]
    if not pitched:
        raise ValueError("a piano roll needs at least one pitched note")
    low, high = min(pitched), max(pitched)
    length = sum(round(n.quarters * steps_per_quarter) for n in notes)
    grid = np.zeros((high - low + 1, max(length, 1)), dtype=bool)
    t = 0
    for n in notes:
        d = round(n.quarters * steps_per_quarter)
        if n.pitch is not None:
            grid[n.pitch - low, t:t + max(d, 1)] = True
        t += d
    return grid, low


def piano_roll(melodies: dict[str, Sequence[Note]], ax_height: float = 1.8) -> Any:
    """One piano-roll panel per melody (time in quarter notes across, pitch up), as a matplotlib figure."""
    import matplotlib.pyplot as plt  # imported here: only the figure needs it, and it is slow to import

    fig, axes = plt.subplots(len(melodies), 1, figsize=(10, ax_height * len(melodies)), squeeze=False)
    for ax, (title, notes) in zip(axes[:, 0], melodies.items(), strict=True):
        t = 0.0
        for n in notes:
            if n.pitch is not None:
                ax.broken_barh([(t, n.quarters * 0.95)], (n.pitch - 0.4, 0.8), color="#1f77b4")
            t += n.quarters
        pitched = [n.pitch for n in notes if n.pitch is not None] or [60]
        ticks = [p for p in range(min(pitched), max(pitched) + 1) if p % 12 in (0, 4, 7)]
        ax.set(yticks=ticks, yticklabels=[midi_name(p) for p in ticks], xlim=(0, max(t, 1)), title=title)
        ax.set_ylim(min(pitched) - 1, max(pitched) + 1)
    axes[-1, 0].set_xlabel("time (quarter notes)")
    fig.tight_layout()
    return fig


def melody_seconds(notes: Sequence[Note], bpm: float = 90.0) -> float:
    """How long a melody lasts at ``bpm`` quarter notes per minute."""
    return sum(n.quarters for n in notes) * 60.0 / bpm


def nats_to_bits(nats: float) -> float:
    return nats / math.log(2)
