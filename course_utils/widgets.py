"""Interactive widgets for JupyterLab and Colab (ipywidgets).

Each widget keeps what it computes in a plain method (``update``/``render``)
that takes the control values and returns what is drawn, so the logic is tested
without a browser; the ipywidgets controls only call it. In a saved notebook
or under nbval a widget shows as its text fallback; the browser test of the
workshop kit drives a live kernel.

Sections: the latent explorer of notebook 03 (VAE), the text playground of
notebook 05 (transformers), the rating widgets of notebook 07 (evaluation).
A consumer of the topic modules: the notebooks import it, nothing in
``course_utils`` does.
"""

from __future__ import annotations

import base64
import html
import io
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from course_utils.density import PCA
from course_utils.gpt import generate
from course_utils.human_eval import Rating, RatingsLog, quiz_accuracy, win_rates

# ipywidgets is imported inside each ``widget()`` method: it is optional (the ``lab`` extra), and everything
# else here (the logic every widget draws from) works, and is tested, without it.


# --- notebook 03: the latent explorer -----------------------------------------------------------


class LatentExplorer:
    """Sliders over latent directions that redraw the decoded image (notebook 03, section 5).

    ``decode`` maps codes ``[N, d]`` to images ``[N, 1, H, W]`` in [0, 1]. Slider ``i`` moves the
    code along ``directions[i]`` from ``centre``: ``z = centre + sum_i s_i * directions[i]``. For a
    2-D latent the directions are the two axes (the default); for a bigger latent,
    :meth:`from_codes` takes the main directions of the codes of some images (their principal
    components, scaled to one standard deviation), so every slider is in standard deviations.
    """

    def __init__(
        self, decode: Callable[[torch.Tensor], torch.Tensor], centre: torch.Tensor,
        directions: torch.Tensor | None = None, limit: float = 3.0, scale: int = 6,
    ) -> None:
        centre = torch.as_tensor(centre, dtype=torch.float32).flatten()
        directions = torch.eye(len(centre)) if directions is None else torch.as_tensor(directions, dtype=torch.float32)
        if directions.ndim != 2 or directions.shape[1] != len(centre) or len(directions) == 0:
            raise ValueError(f"directions must be [k, {len(centre)}] with k >= 1, got {tuple(directions.shape)}")
        if limit <= 0 or scale < 1:
            raise ValueError(f"limit must be > 0 and scale >= 1, got {limit} and {scale}")
        self.decode, self.centre, self.directions = decode, centre, directions
        self.limit, self.scale = float(limit), int(scale)

    @classmethod
    def from_codes(
        cls, decode: Callable[[torch.Tensor], torch.Tensor], codes: torch.Tensor, k: int = 3, **kwargs: Any,
    ) -> LatentExplorer:
        """Sliders along the ``k`` main directions of ``codes`` ``[N, d]``, one standard deviation per unit."""
        codes = torch.as_tensor(codes, dtype=torch.float32)
        if codes.ndim != 2 or not 1 <= k <= codes.shape[1]:
            raise ValueError(f"codes must be [N, d] and k between 1 and d; got {tuple(codes.shape)} and k={k}")
        pca = PCA.fit(codes)
        directions = (pca.components[:, :k] * pca.variances[:k].sqrt()).T
        return cls(decode, pca.mean, directions, **kwargs)

    @property
    def k(self) -> int:
        return len(self.directions)

    def latent(self, *values: float) -> torch.Tensor:
        """The code ``[1, d]`` for the slider values (one per direction)."""
        if len(values) != self.k:
            raise ValueError(f"need {self.k} slider values, got {len(values)}")
        s = torch.tensor([float(v) for v in values]).clamp(-self.limit, self.limit)
        return (self.centre + s @ self.directions)[None]

    def render(self, *values: float) -> np.ndarray:
        """The decoded image ``[H, W]`` in [0, 1] for the slider values: what the widget shows."""
        with torch.no_grad():
            image = self.decode(self.latent(*values))
        image = torch.as_tensor(image).detach().float().cpu()
        if image.ndim != 4 or image.shape[:2] != (1, 1):
            raise ValueError(f"decode must return [1, 1, H, W] for one code, got {tuple(image.shape)}")
        return image[0, 0].clamp(0, 1).numpy()

    def png(self, *values: float) -> bytes:
        """:meth:`render` as a PNG, each pixel enlarged to ``scale`` x ``scale`` (sharp, not blurred)."""
        pixels = (self.render(*values) * 255).round().astype(np.uint8)
        big = np.kron(pixels, np.ones((self.scale, self.scale), dtype=np.uint8))
        buffer = io.BytesIO()
        Image.fromarray(big, mode="L").save(buffer, format="PNG")
        return buffer.getvalue()

    def widget(self, names: Sequence[str] | None = None) -> Any:
        """The ipywidgets box: one slider per direction and the image, redrawn whenever a slider moves."""
        import ipywidgets as w  # optional (see the imports above)

        names = list(names) if names is not None else [f"z{i + 1}" for i in range(self.k)]
        if len(names) != self.k:
            raise ValueError(f"need {self.k} slider names, got {len(names)}")
        sliders = [w.FloatSlider(value=0.0, min=-self.limit, max=self.limit, step=0.1, description=name,
                                 continuous_update=True) for name in names]
        image = w.Image(value=self.png(*[s.value for s in sliders]), format="png")

        def redraw(_: Any = None) -> None:
            image.value = self.png(*[s.value for s in sliders])

        for s in sliders:
            s.observe(redraw, names="value")
        box = w.HBox([w.VBox(sliders), image])
        box.sliders, box.image, box.redraw = sliders, image, redraw  # for tests and for scripting
        return box


# --- notebook 05: the text playground -----------------------------------------------------------


class TextPlayground:
    """Prompt a character model and read its continuation; every control change redraws it (05, section 5).

    ``models`` maps a name to ``(model, vocab)``: e.g. the GPT trained in the
    notebook and the shipped one. :meth:`update` is the whole logic (tested
    directly); :meth:`widget` wires ipywidgets controls to it. The text is
    seeded, so the same controls always give the same continuation: a change
    in the text comes from a change of a control, not from chance.
    """

    def __init__(self, models: dict[str, tuple[object, object]], prompt: str = "ROMEO:\n", length: int = 200,
                 temperature: float = 0.8, top_k: int = 0, top_p: float = 1.0, seed: int = 0) -> None:
        if not models:
            raise ValueError("the playground needs at least one (model, vocab) pair")
        self.models, self.seed = dict(models), seed
        self.defaults = {"model": next(iter(self.models)), "prompt": prompt, "length": length,
                         "temperature": temperature, "top_k": top_k, "top_p": top_p}

    def update(self, model: str, prompt: str, length: int, temperature: float, top_k: int = 0,
               top_p: float = 1.0) -> str:
        """The continuation of ``prompt``, or a line saying why there is none.

        ``top_k = 0`` and ``top_p = 1`` switch those filters off (what the
        sliders show at their ends); an empty prompt starts from a newline.
        """
        if model not in self.models:
            return f"unknown model {model!r}; choose one of {', '.join(self.models)}"
        net, vocab = self.models[model]
        unknown = sorted(set(prompt) - set(vocab.itos))
        if unknown:
            return f"the model does not know these characters: {''.join(unknown)!r}; remove them from the prompt"
        if temperature <= 0:
            return "the temperature must be above 0"
        ids = torch.tensor([vocab.encode(prompt or "\n")], device=next(net.parameters()).device)
        out = generate(net, ids, int(length), temperature=float(temperature), top_k=int(top_k) or None,
                       top_p=float(top_p) if top_p < 1 else None, generator=torch.Generator().manual_seed(self.seed))
        return vocab.decode(out[0, ids.shape[1]:].tolist())

    def widget(self) -> object:
        """The controls and the text, as an ipywidgets box (its text fallback shows in a saved notebook)."""
        import ipywidgets as w  # optional (see the imports above)

        d = self.defaults
        controls = {
            "model": w.Dropdown(options=list(self.models), value=d["model"], description="model"),
            "prompt": w.Textarea(value=d["prompt"], description="prompt", layout=w.Layout(width="90%")),
            "length": w.IntSlider(value=d["length"], min=20, max=600, step=20, description="length"),
            "temperature": w.FloatSlider(value=d["temperature"], min=0.1, max=2.0, step=0.05,
                                         description="temperature"),
            "top_k": w.IntSlider(value=d["top_k"], min=0, max=65, description="top-k (0: off)"),
            "top_p": w.FloatSlider(value=d["top_p"], min=0.05, max=1.0, step=0.05, description="top-p (1: off)"),
        }
        for c in controls.values():
            c.style = {"description_width": "110px"}
            if hasattr(c, "continuous_update"):
                c.continuous_update = False  # redraw when a slider is released, not at every pixel of the drag
        output = w.Textarea(layout=w.Layout(width="90%", height="260px"), disabled=True)

        def redraw(_change: object = None) -> None:
            output.value = self.update(**{name: c.value for name, c in controls.items()})

        for c in controls.values():
            c.observe(redraw, names="value")
        redraw()
        box = w.VBox([*controls.values(), output])
        box.controls, box.output, box.redraw = controls, output, redraw  # for tests and for the curious
        return box


# --- notebook 07: rating widgets ------------------------------------------------------------------
# A real-or-generated quiz and a blind pairwise comparison. Each click becomes one
# :class:`course_utils.human_eval.Rating`, appended at once to the rater's CSV file
# (:class:`course_utils.human_eval.RatingsLog`: whole rows, under a lock); the
# sessions below hold the logic (what comes next, what a click records, the reveal)
# and ``widget()`` only wires buttons to it.

QUIZ_BUTTONS = {"real": "real", "generated": "generated"}  # button text -> choice
PAIR_BUTTONS = {"left is better": "left", "tie": "tie", "right is better": "right"}  # in the order shown
_BAD_NAME = set(",\n\r/\\|")


@dataclass(frozen=True, eq=False)
class Sound:
    """A clip to listen to: mono ``samples`` (floats in [-1, 1], e.g. :func:`course_utils.music.synthesise`)."""

    samples: np.ndarray
    rate: int

    def __post_init__(self) -> None:
        samples = np.asarray(self.samples)
        if samples.ndim != 1 or len(samples) == 0 or not np.isfinite(samples).all():
            raise ValueError(f"a sound must be a non-empty 1-D array of finite samples, got shape {samples.shape}")
        if int(self.rate) <= 0:
            raise ValueError(f"the sample rate must be positive, got {self.rate}")

    def wav(self) -> bytes:
        """The clip as a WAV file (IPython's ``Audio`` writes it: 16-bit, scaled to its loudest sample)."""
        from IPython.display import Audio

        return Audio(np.asarray(self.samples, dtype=np.float64), rate=int(self.rate)).data


@dataclass(frozen=True)
class EvalItem:
    """One thing to judge: an image ``[1, H, W]`` (or ``[H, W]``) in [0, 1], a text, or a :class:`Sound`.

    ``id`` names it in the ratings file (the same for every rater in a room);
    ``model`` is who made it (``"real"`` for data) and stays hidden until the
    reveal; ``prompt`` is the text a continuation follows (shown above both sides).
    """

    id: str
    model: str
    content: Any
    prompt: str = ""

    def __post_init__(self) -> None:
        if not self.id or set(self.id) & _BAD_NAME:
            raise ValueError(f"an item id must be non-empty, without , / \\ | or newlines; got {self.id!r}")
        if not self.model or set(self.model) & _BAD_NAME:
            raise ValueError(f"a model name must be non-empty, without , / \\ | or newlines; got {self.model!r}")
        if isinstance(self.content, torch.Tensor):
            if self.content.ndim not in (2, 3) or (self.content.ndim == 3 and self.content.shape[0] != 1):
                raise ValueError(f"an image must be [1, H, W] or [H, W], got {tuple(self.content.shape)}")
        elif not isinstance(self.content, (str, Sound)):
            raise ValueError(f"content must be an image tensor, a str or a Sound, got {type(self.content).__name__}")

    @property
    def kind(self) -> str:
        return "text" if isinstance(self.content, str) else "audio" if isinstance(self.content, Sound) else "image"


def image_png(image: torch.Tensor, scale: int = 4) -> bytes:
    """An image in [0, 1] as a PNG, each pixel enlarged to ``scale`` x ``scale`` (sharp, not blurred)."""
    pixels = (image.detach().float().cpu().reshape(image.shape[-2:]).clamp(0, 1).numpy() * 255).round()
    big = np.kron(pixels.astype(np.uint8), np.ones((scale, scale), dtype=np.uint8))
    buffer = io.BytesIO()
    Image.fromarray(big, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def item_html(item: EvalItem, scale: int = 4) -> str:
    """What a widget shows for ``item``: the image inline, the text (escaped) in a box, or an audio player with
    the clip inline (a WAV, played only when the rater presses play); never its model."""
    if item.kind == "audio":
        data = base64.b64encode(item.content.wav()).decode("ascii")
        return f'<audio controls preload="auto" src="data:audio/wav;base64,{data}"></audio>'
    if item.kind == "image":
        data = base64.b64encode(image_png(item.content, scale)).decode("ascii")
        return f'<img src="data:image/png;base64,{data}" alt="item" style="image-rendering: pixelated">'
    return ('<pre style="white-space: pre-wrap; font-size: 0.9em; width: 26em; border: 1px solid #ccc; '
            f'padding: 0.4em">{html.escape(item.content)}</pre>')


def _check_rater(rater: str) -> str:
    if not isinstance(rater, str) or not rater.strip() or set(rater) & _BAD_NAME:
        raise ValueError(f"the rater name must be non-empty, without , / \\ | or newlines (it names the ratings "
                         f"file); got {rater!r}")
    return rater.strip()


def _grouped_shuffle(things: list[Any], kind: Callable[[Any], str], rng: random.Random) -> list[Any]:
    """Shuffle within each kind: the images first, then the texts, then the sounds."""
    kinds = sorted({kind(t) for t in things}, key=("image", "text", "audio").index)
    out = []
    for k in kinds:
        group = [t for t in things if kind(t) == k]
        rng.shuffle(group)
        out += group
    return out


class _Session:
    """What the two widgets share: the rater, the log, the ratings so far, the buttons."""

    task = ""
    buttons: dict[str, str] = {}

    def __init__(self, rater: str, log: Any, seed: int) -> None:
        self.rater = _check_rater(rater)
        self.log = log if isinstance(log, RatingsLog) else RatingsLog(Path(log))
        self.rng = random.Random(f"{self.task}/{seed}/{self.rater}")  # the same rater always gets the same order
        self.ratings: list[Any] = []
        self._position = 0

    def _resume(self, keys: set[str], key: Callable[[Any], str]) -> set[str]:
        """Ratings this rater already wrote for these items (a crash, a restarted kernel): kept, not asked again."""
        done: dict[str, Any] = {}
        for r in self.log.read():
            if r.rater == self.rater and r.task == self.task and key(r) in keys:
                done[key(r)] = r
        self.ratings = list(done.values())
        return set(done)

    @property
    def total(self) -> int:
        return len(self.ratings) + len(self._queue) - self._position

    @property
    def done(self) -> bool:
        return self._position >= len(self._queue)

    def progress(self) -> str:
        if self.done:
            return f"all {self.total} done, {len(self.ratings)} ratings in {self.log.path}"
        return f"{len(self.ratings) + 1} of {self.total}"

    def _record(self, rating: Any) -> Any:
        self.log.append(rating)  # one whole row, at once: a crash later loses nothing already clicked
        self.ratings.append(rating)
        self._position += 1
        return rating

    def _check_open(self, choice: str, allowed: tuple[str, ...]) -> None:
        if choice not in allowed:
            raise ValueError(f"choice must be one of {allowed}, got {choice!r}")
        if self.done:
            raise ValueError(f"the {self.task} is over: every item has been rated")

    def widget(self) -> Any:
        """Buttons that call :meth:`answer`, the current item(s), the progress, and the reveal at the end."""
        import ipywidgets as w  # optional (see the imports above)

        progress, reveal = w.HTML(), w.HTML()
        shown = self._views(w)
        buttons = [w.Button(description=text, layout=w.Layout(width="auto")) for text in self.buttons]

        def redraw() -> None:
            progress.value = f"<b>{html.escape(self.progress())}</b>"
            self._fill(shown)
            for b in buttons:
                b.disabled = self.done
            reveal.value = f"<pre>{html.escape(self.reveal())}</pre>" if self.done else ""

        def click(button: Any) -> None:
            if not self.done:
                self.answer(self.buttons[button.description])
            redraw()

        for b in buttons:
            b.on_click(click)
        redraw()
        box = w.VBox([progress, *self._layout(w, shown), w.HBox(buttons), reveal])
        box.buttons, box.progress, box.reveal, box.shown = buttons, progress, reveal, shown  # for tests
        return box


class RealOrGeneratedQuiz(_Session):
    """The real-or-generated quiz: items in a shuffled order (images first, then texts), one guess each.

    :meth:`answer` records ``"real"`` or ``"generated"`` for the current item as
    a ``quiz`` rating; :meth:`reveal`, once every item is answered, gives the
    accuracy against the 50% of guessing, with its Wilson interval, and which
    items were which.
    """

    task = "quiz"
    buttons = QUIZ_BUTTONS

    def __init__(self, items: Sequence[EvalItem], rater: str, log: Any, seed: int = 0) -> None:
        super().__init__(rater, log, seed)
        items = list(items)
        if not items or len({it.id for it in items}) != len(items):
            raise ValueError("the quiz needs at least one item, each with its own id")
        self.items = {it.id: it for it in items}
        seen = self._resume(set(self.items), lambda r: r.item_a)
        self._queue = [it for it in _grouped_shuffle(items, lambda it: it.kind, self.rng) if it.id not in seen]

    def current(self) -> EvalItem | None:
        """The item to judge now (None when the quiz is over)."""
        return None if self.done else self._queue[self._position]

    def answer(self, choice: str) -> Any:
        """Record the rater's guess for the current item (one row in the ratings file) and move on."""
        self._check_open(choice, tuple(QUIZ_BUTTONS.values()))
        item = self._queue[self._position]
        return self._record(Rating(rater=self.rater, task="quiz", item_a=item.id, choice=choice, model_a=item.model))

    def reveal(self) -> str:
        """The score and the answers, once the quiz is over (before that: how many items are left)."""
        if not self.done:
            return f"{len(self._queue) - self._position} items left: the answers come at the end"
        if not self.ratings:
            return "no answers"
        q = quiz_accuracy(self.ratings)
        lines = [f"right on {q['right']} of {q['n']} ({q['accuracy']:.0%}; 95% interval {q['low']:.0%} to "
                 f"{q['high']:.0%}); guessing scores 50% (two-sided p = {q['p_value']:.2f})"]
        by_model: dict[str, list[bool]] = {}
        for r in self.ratings:
            by_model.setdefault(r.model_a, []).append((r.choice == "real") == (r.model_a == "real"))
        for model, right in sorted(by_model.items()):
            lines.append(f"  {model:<10} {sum(right)} of {len(right)} right")
        lines.append("answers: " + ", ".join(f"{r.item_a}={'real' if r.model_a == 'real' else r.model_a}"
                                             for r in self.ratings))
        return "\n".join(lines)

    def _views(self, w: Any) -> list[Any]:
        return [w.HTML()]

    def _fill(self, shown: list[Any]) -> None:
        item = self.current()
        shown[0].value = "" if item is None else item_html(item)

    def _layout(self, w: Any, shown: list[Any]) -> list[Any]:
        return [w.HTML("<i>Real data, or made by a model?</i>"), shown[0]]


class PairwiseComparison(_Session):
    """A blind pairwise comparison: two samples side by side, which is better?

    Pairs come in a shuffled order (images first, then texts, then sounds) and each pair's
    sides are drawn at random, both seeded by the rater's name, so the rater
    never learns a side-to-model rule. :meth:`answer` records ``left``,
    ``right`` or ``tie`` as a ``pairwise`` rating naming both items and which
    one was on the left; the models stay hidden until :meth:`reveal`.
    """

    task = "pairwise"
    buttons = PAIR_BUTTONS

    def __init__(self, pairs: Sequence[tuple[EvalItem, EvalItem]], rater: str, log: Any, seed: int = 0) -> None:
        super().__init__(rater, log, seed)
        pairs = [tuple(p) for p in pairs]
        if not pairs:
            raise ValueError("the comparison needs at least one pair")
        for p in pairs:
            if len(p) != 2 or not all(isinstance(x, EvalItem) for x in p) or p[0].id == p[1].id:
                raise ValueError("each pair must be two EvalItems with different ids")
            if p[0].kind != p[1].kind:
                raise ValueError(f"a pair must hold two images, two texts or two sounds: {p[0].id}, {p[1].id}")
        keys = ["|".join(sorted((a.id, b.id))) for a, b in pairs]
        if len(set(keys)) != len(keys):
            raise ValueError("the same pair appears twice")
        seen = self._resume(set(keys), lambda r: "|".join(sorted((r.item_a, r.item_b))))
        order = _grouped_shuffle(pairs, lambda p: p[0].kind, self.rng)
        sided = [(a, b) if self.rng.random() < 0.5 else (b, a) for a, b in order]  # drawn for every pair
        self.pairs = pairs
        self._queue = [(a, b) for a, b in sided if "|".join(sorted((a.id, b.id))) not in seen]
        self._original = {frozenset((a.id, b.id)): (a, b) for a, b in pairs}

    def current(self) -> tuple[EvalItem, EvalItem] | None:
        """``(left, right)``: the pair to judge now (None when it is over)."""
        return None if self.done else self._queue[self._position]

    def answer(self, choice: str) -> Any:
        """Record ``left``, ``right`` or ``tie`` for the current pair (one row in the ratings file) and move on."""
        self._check_open(choice, tuple(PAIR_BUTTONS.values()))
        left, right = self._queue[self._position]
        a, b = self._original[frozenset((left.id, right.id))]
        return self._record(Rating(rater=self.rater, task="pairwise", item_a=a.id, item_b=b.id, shown_left=left.id,
                                   choice=choice, model_a=a.model, model_b=b.model))

    def reveal(self) -> str:
        """Each model's win rate with its Wilson interval and the identity of every pair, once all are rated."""
        if not self.done:
            return f"{len(self._queue) - self._position} pairs left: which model made what is shown at the end"
        if not self.ratings:
            return "no ratings"
        lines = [f"{m:<10} won {s['wins']:g} of {s['n']} ({s['rate']:.0%}; 95% interval {s['low']:.0%} to "
                 f"{s['high']:.0%}; a tie counts half)" for m, s in sorted(win_rates(self.ratings).items())]
        for r in self.ratings:
            left_model, right_model = (r.model_a, r.model_b) if r.shown_left == r.item_a else (r.model_b, r.model_a)
            lines.append(f"  {left_model} | {right_model}: you said {r.choice}")
        return "\n".join(lines)

    def _views(self, w: Any) -> list[Any]:
        return [w.HTML(), w.HTML(), w.HTML()]  # prompt, left, right

    def _fill(self, shown: list[Any]) -> None:
        pair = self.current()
        if pair is None:
            for view in shown:
                view.value = ""
            return
        left, right = pair
        shown[0].value = (f"<i>prompt:</i><pre>{html.escape(left.prompt)}</pre>" if left.prompt
                          else "<i>Listen to both: which is better?</i>" if left.kind == "audio"
                          else "<i>Which is better?</i>")
        shown[1].value, shown[2].value = item_html(left), item_html(right)

    def _layout(self, w: Any, shown: list[Any]) -> list[Any]:
        sides = [w.VBox([w.HTML(f"<b>{name}</b>"), view]) for name, view in (("left", shown[1]), ("right", shown[2]))]
        return [shown[0], w.HBox(sides)]
