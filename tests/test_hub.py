"""course_utils.hub: the Hub switch, the GPT-3 snippet corrected, the chat summariser (notebook 06).

No test here needs the network, a free port or a fast machine: connections are
either to a socket the test holds open, or replaced by a fake.
"""

from __future__ import annotations

import json
import socket
import threading

import pytest

from course_utils import hf, hub
from course_utils.checkpoints import CheckpointError
from tests.hf_support import sample_tokenizer, tiny

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tokenizer():
    return sample_tokenizer()


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tokenizer):
    """A tiny GPT-2 saved as the course saves models: the offline fallback of the snippet."""
    folder = tmp_path_factory.mktemp("hub") / "m"
    hf.save_hf(tiny(tokenizer), tokenizer, folder)
    return folder


@pytest.fixture
def online(monkeypatch):
    """Neither offline switch set."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)


# --- is the Hub there? ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, value, offline", [("HF_HUB_OFFLINE", "1", True), ("TRANSFORMERS_OFFLINE", "yes", True),
                                                  ("HF_HUB_OFFLINE", "0", False), ("HF_HUB_OFFLINE", "", False)])
def test_offline_mode_reads_either_switch(online, monkeypatch, name, value, offline):
    monkeypatch.setenv(name, value)
    assert hub.offline_mode() is offline


def test_offline_mode_answers_without_trying_a_connection(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tried = []
    monkeypatch.setattr(hub.socket, "create_connection", lambda *args, **kwargs: tried.append(args))
    assert hub.hub_reachable(timeout=5) is False
    assert tried == []


def test_reachability_is_a_real_connection(online):
    """A port this test holds: listening answers, bound but not listening refuses. No other process can take it."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        assert hub.hub_reachable(timeout=2, address=server.getsockname())
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # held, so the port stays ours; not listening, so a connection is refused
        assert not hub.hub_reachable(timeout=2, address=closed.getsockname())


def test_a_probe_that_never_answers_is_abandoned_after_the_timeout(online, monkeypatch):
    """A DNS server or a firewall that never answers: the probe's thread is left behind, the answer is False."""
    release, started = threading.Event(), threading.Event()

    def hangs(*args, **kwargs):
        started.set()
        release.wait()
        raise OSError("released by the test")

    monkeypatch.setattr(hub.socket, "create_connection", hangs)
    try:
        assert hub.hub_reachable(timeout=0.01) is False
        assert started.wait(5)  # the probe did start: the answer came from the timeout, not from a skipped probe
    finally:
        release.set()


def test_resolve_model_keeps_a_local_folder_and_verifies_the_fallback(saved, online, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(hub, "hub_reachable", lambda: pytest.fail("a local folder needs no connection"))
    assert hub.resolve_model(str(saved)) == str(saved)
    monkeypatch.setattr(hub, "hub_reachable", lambda: False)
    assert hub.resolve_model("someone/model", fallback=saved) == str(saved)
    assert "not reachable" in capsys.readouterr().out
    with pytest.raises(CheckpointError, match="not found"):
        hub.resolve_model("someone/model", fallback=tmp_path)  # a fallback without a card is refused


def test_use_hub_turns_itself_off_offline_and_says_why(monkeypatch, capsys):
    """06's USE_HUB = True under HF_HUB_OFFLINE=1: False, one line, no connection tried; the notebook runs on."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub.socket, "create_connection", lambda *args, **kwargs: pytest.fail("offline: no connection"))
    assert hub.use_hub(True) is False
    said = capsys.readouterr().out
    assert said.count("\n") == 1 and "USE_HUB = True" in said and "offline mode" in said
    assert hub.use_hub(False) is False and capsys.readouterr().out == ""  # not asked for: nothing to say


def test_use_hub_stays_on_when_the_hub_answers_and_asks_nothing_when_off(online, monkeypatch, capsys):
    monkeypatch.setattr(hub, "hub_reachable", lambda: True)
    assert hub.use_hub(True) is True
    monkeypatch.setattr(hub, "hub_reachable", lambda: pytest.fail("USE_HUB = False tried to connect"))
    assert hub.use_hub(False) is False
    assert capsys.readouterr().out == ""


def test_section_3_runs_on_a_hub_gpt2_and_needs_only_the_imports_and_parameters(monkeypatch, capsys):
    """06's section 3 with USE_HUB = True, the Hub call mocked: the snippet loads "openai-community/gpt2".

    The stand-in is the course's GPT-2 with GPT-2's tokenizer habit (no padding token). The cells run in a
    namespace of the imports and parameters only: a cell that leans on an earlier section's model (as one did,
    whose 05-class copy held the course's weights, not the Hub's) fails here.
    """
    import logging
    import warnings

    import torch
    import transformers

    from course_utils import REPO_ROOT, decoding
    from course_utils.checkpoints import SHIPPED_DIR

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    shipped = SHIPPED_DIR / hf.HF_GPT_NAME
    hf.verify_hf(shipped)
    real_model, real_tok = transformers.AutoModelForCausalLM.from_pretrained, transformers.AutoTokenizer.from_pretrained

    def from_hub(real, name, *args, **kwargs):
        assert name == "openai-community/gpt2", name  # USE_HUB = True: the snippet asks the Hub for GPT-2
        return real(str(shipped), *args, **kwargs)

    def hub_tokenizer(name, *args, **kwargs):
        tok = from_hub(real_tok, name, *args, **kwargs)
        tok.pad_token = None  # as GPT-2's: no padding token
        return tok

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained",
                        lambda name, *a, **k: from_hub(real_model, name, *a, **k))
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", hub_tokenizer)
    cells = json.loads((REPO_ROOT / "notebooks" / "06_transformers_huggingface.ipynb").read_text(encoding="utf-8"))
    ids = [c["id"] for c in cells["cells"]]
    section = (cells["cells"][ids.index("4fbebef0"):ids.index("nb05-039")]  # the snippet to the end of section 3,
               + cells["cells"][ids.index("greedy-md"):ids.index("nb05-076")])  # then its side-trips, 7.6 and 7.7
    namespace = {"torch": torch, "logging": logging, "warnings": warnings, "transformers": transformers,
                 "decoding": decoding, "hf": hf, "USE_HUB": True, "SEED": 0, "DEVICE": torch.device("cpu"),
                 "SAMPLING": {"temperature": 0.7, "top_k": 10, "top_p": 0.9}}
    code = [c for c in section if c["cell_type"] == "code"]
    assert len(code) >= 5
    for cell in code:
        exec(compile("".join(cell["source"]), f"<06 cell {cell['id']}>", "exec"), namespace)  # noqa: S102
    assert namespace["snippet_tokenizer"].pad_token is not None  # the several-prompt cell set one before padding
    assert "same weights, same tokens: True" in capsys.readouterr().out


# --- the GPT-3 snippet ------------------------------------------------------------------------------------


def test_the_learners_snippet_raises_import_error():
    with pytest.raises(ImportError, match="GPT3Tokenizer"):
        exec(hub.GPT3_SNIPPET, {})


def test_the_snippet_is_the_learners_and_the_notebook_shows_it():
    from course_utils import REPO_ROOT

    notebook = (REPO_ROOT / "notebooks" / "06_transformers_huggingface.ipynb").read_text(encoding="utf-8")
    shown = "\n".join("".join(cell["source"]) for cell in json.loads(notebook)["cells"])
    assert hub.GPT3_SNIPPET in shown  # the markdown cell of section 3, as text
    outline = REPO_ROOT.parent / "shared" / "COURSE_OUTLINE.md"
    if outline.exists():  # the course outline lives beside the repository in the authors' checkout
        assert hub.GPT3_SNIPPET in outline.read_text(encoding="utf-8")


def test_online_false_makes_no_connection_and_says_so(saved, online, monkeypatch, capsys):
    """06's USE_HUB = False: no probe of the Hub at all, even outside offline mode."""

    def no_network(*args, **kwargs):
        raise AssertionError("online=False tried to connect")

    monkeypatch.setattr(hub, "hub_reachable", no_network)
    assert hub.resolve_model("openai-community/gpt2", fallback=saved, online=False) == str(saved)
    assert "online=False" in capsys.readouterr().out
    assert hub.summarise("Some text.", "HuggingFaceTB/SmolLM2-360M-Instruct", online=False) is None
    assert "online=False" in capsys.readouterr().out


# --- summaries ----------------------------------------------------------------------------------------------


def test_summarise_skips_offline_and_runs_the_chat_path_on_a_local_model(tokenizer, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.summarise("Some text.", "HuggingFaceTB/SmolLM2-360M-Instruct") is None
    assert capsys.readouterr().out.startswith("skipped:")
    folder = tmp_path / "chat"
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }}\n{% endfor %}"  # a minimal chat template
    try:
        hf.save_hf(tiny(tokenizer, block=128), tokenizer, folder)
    finally:
        tokenizer.chat_template = None
    summary = hub.summarise("First Citizen speaks.", folder, max_new_tokens=4)
    assert isinstance(summary, str)
    with pytest.raises(ValueError, match="empty"):
        hub.summarise("  ", folder)
