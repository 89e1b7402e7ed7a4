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
