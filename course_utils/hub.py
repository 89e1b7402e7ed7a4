"""The Hugging Face Hub, online or not: the GPT-3 snippet corrected, and a chat model's summary (notebook 06).

Taught in notebook 06:

- section 3, the GPT-3 snippet of the learner's notes: :data:`GPT3_SNIPPET`
  (classes ``transformers`` never had, exactly as the notes give it; the
  notebook shows it as text and then the corrected lines as plain
  ``transformers`` code, run on a Hub model or, offline, on the course's own GPT-2);
- :func:`offline_mode` and :func:`hub_reachable` (fast, and ``False`` at once
  under ``HF_HUB_OFFLINE=1``), :func:`use_hub`: 06's ``USE_HUB`` switch, turned
  off with one printed line when the Hub cannot be reached, so that the
  notebook runs on offline; :func:`resolve_model`: a Hub name or the local
  fallback. Every function that could download takes ``online``: 06's
  ``USE_HUB = False`` passes ``online=False`` and no connection is tried;
- section 4.1: :func:`summarise`, a chat model through ``pipeline("text-generation")``.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import Any

from course_utils import REPO_ROOT
from course_utils.checkpoints import SHIPPED_DIR
from course_utils.hf import HF_GPT_NAME, quiet_hf, verify_hf

HUB = ("huggingface.co", 443)
SUMMARISER = "HuggingFaceTB/SmolLM2-360M-Instruct"  # a small open chat model (0.7 GB), Apache-2.0

#: The code the learner's notes hold (``../COURSE_OUTLINE.md``): GPT-3 classes that ``transformers`` never had.
GPT3_SNIPPET = '''\
# Example of generating text using a pretrained GPT-3 model
from transformers import GPT3Tokenizer, GPT3LMHeadModel

tokenizer = GPT3Tokenizer.from_pretrained("gpt3")
model = GPT3LMHeadModel.from_pretrained("gpt3")

input_text = "Once upon a time"
input_ids = tokenizer.encode(input_text, return_tensors='pt')

output = model.generate(input_ids, max_length=50, num_return_sequences=1)
print(tokenizer.decode(output[0], skip_special_tokens=True))
'''


# --- is the Hub there? ------------------------------------------------------------------------------------


def offline_mode() -> bool:
    """True when ``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE`` is 1/true/yes/on."""
    return any(os.environ.get(v, "").strip().lower() in {"1", "true", "yes", "on"}
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_reachable(timeout: float = 2.0, address: tuple[str, int] = HUB) -> bool:
    """Whether the Hugging Face Hub answers a TCP connection within ``timeout`` seconds.

    ``False`` at once in offline mode, without any connection. The name lookup
    and the connection run in a background thread that is abandoned after
    ``timeout``, so a machine with no network (or a DNS server that never
    answers) costs at most ``timeout``.
    """
    if offline_mode():
        return False
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection(address, timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def _why_local(online: bool) -> str:
    """Why a Hub name is not used: the caller said no, offline mode, or no connection."""
    if not online:
        return "the Hub is not used (online=False)"
    return "offline mode (HF_HUB_OFFLINE=1)" if offline_mode() else "the Hugging Face Hub is not reachable"


def use_hub(requested: bool) -> bool:
    """06's ``USE_HUB``: ``True`` only if it was asked for and the Hub answers.

    ``requested=False`` makes no connection. Asked for but unreachable (offline
    mode, no network), it prints one line saying why and returns ``False``: the
    notebook then runs its offline path (the course's GPT-2, no online summary)
    instead of failing in ``from_pretrained``.
    """
    if not requested:
        return False
    if hub_reachable():
        return True
    print(f"USE_HUB = True, but {_why_local(True)}: sections 3 and 4 run offline instead "
          "(the course's GPT-2; no online summary)")
    return False


def _short(path: Path) -> str:
    """``path`` relative to the course checkout when it is inside it."""
    try:
        return str(path.resolve().relative_to(REPO_ROOT.resolve()))
    except ValueError:
        return str(path)


def resolve_model(
    name: str, fallback: str | Path = SHIPPED_DIR / HF_GPT_NAME, verbose: bool = True, online: bool = True,
) -> str:
    """``name`` if it is a local folder or the Hub is used and reachable; else the course's model, with one line.

    ``online=False`` makes no connection at all (06's ``USE_HUB`` opt-in). A
    local fallback is checked against its card's checksums before anything loads it.
    """
    if Path(name).is_dir() or (online and hub_reachable()):
        return name
    fallback = Path(fallback)
    verify_hf(fallback)
    if verbose:
        why = _why_local(online)
        print(f"{why}: running the same code on the course's model in {_short(fallback)} instead of {name!r}")
    return str(fallback)


# --- summarisation through the same pipeline (section 4.1) -------------------------------------------------


def summarise(
    text: str, model: str | Any = SUMMARISER, max_new_tokens: int = 60, verbose: bool = True, online: bool = True,
) -> str | None:
    """A one-sentence summary of ``text`` by a chat model through ``pipeline("text-generation")``.

    ``model`` is a Hub name, a local folder, or a ready pipeline. A Hub name
    with ``online=False`` (no connection is tried) or when the Hub is not
    reachable prints one line and returns ``None`` (there is no offline
    summariser to fall back on). ``transformers`` 5 removed the
    ``"summarization"`` pipeline task; a chat model with an instruction is its
    replacement, and works on ``transformers`` 4 too.
    """
    from transformers import pipeline  # lazy: importing transformers takes seconds

    if not text.strip():
        raise ValueError("nothing to summarise: the text is empty")
    pipe = model
    if isinstance(model, (str, Path)):
        if not Path(model).is_dir() and not (online and hub_reachable()):
            if verbose:
                print(f"skipped: summarising needs {model!r} from the Hugging Face Hub; {_why_local(online)}")
            return None
        with quiet_hf():
            pipe = pipeline("text-generation", model=str(model))
    messages = [{"role": "user", "content": f"Summarise the following text in one sentence.\n\n{text.strip()}"}]
    out = pipe(messages, max_new_tokens=max_new_tokens, do_sample=False)
    reply = out[0]["generated_text"]
    return (reply[-1]["content"] if isinstance(reply, list) else str(reply)).strip()
