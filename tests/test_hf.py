"""course_utils.hf: BPE, the GPT-2 helpers, training, saving/loading with checksums, the Hub switch (notebook 05)."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import socket
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import torch

from course_utils import hf, text, train
from course_utils.checkpoints import CheckpointError
from course_utils.exercises import hf as ex
from course_utils.solutions.hf import bpe_encode, bpe_merges

SAMPLE = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n" * 20


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tokenizer():
    return hf.train_bpe(SAMPLE, vocab_size=300)


def tiny(tokenizer, seed: int = 0, block: int = 16):
    recipe = hf.LMRecipe(n_layer=1, n_embd=16, n_head=2, block_size=block, batch_size=4, steps=4, warmup=1)
    return hf.make_gpt2(hf.gpt2_config(tokenizer, recipe), seed=seed).eval()


# --- tokenisation ---------------------------------------------------------------------------------------


def test_bpe_is_deterministic_round_trips_and_puts_the_special_token_first(tokenizer):
    again = hf.train_bpe(SAMPLE, vocab_size=300)
    assert tokenizer.get_vocab() == again.get_vocab() and len(tokenizer) == 300
    assert tokenizer.convert_tokens_to_ids(hf.SPECIAL) == 0 == tokenizer.pad_token_id == tokenizer.eos_token_id
    ids = hf.encode(tokenizer, SAMPLE)
    assert tokenizer.decode(ids.tolist()) == SAMPLE  # byte-level: every text comes back exactly
    assert tokenizer.decode(hf.encode(tokenizer, "Zwölf £ ünseen").tolist()) == "Zwölf £ ünseen"
    # 256 bytes + the special token + 43 merges; the text repeats, so a token covers several characters
    assert len(hf.merges(tokenizer)) == 300 - 257
    assert hf.chars_per_token(tokenizer, SAMPLE) > 2


def test_bpe_rejects_bad_input():
    with pytest.raises(ValueError, match="vocab_size"):
        hf.train_bpe(SAMPLE, vocab_size=100)
    with pytest.raises(ValueError, match="needs some text"):
        hf.train_bpe([""], vocab_size=300)


def test_the_first_bpe_merge_is_the_most_frequent_pair(tokenizer):
    pairs = Counter()
    for word in SAMPLE.replace("\n", " ").split(" "):  # the byte-level pre-tokenizer splits at spaces too
        pairs.update(zip(word, word[1:], strict=False))
    assert hf.merges(tokenizer)[0] == pairs.most_common(1)[0][0]


def test_the_exercise_reference_learns_the_merges_of_the_tokenizers_library():
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    alphabet = sorted(set("".join(ex.BPE_CORPUS)))
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.train_from_iterator([" ".join(ex.BPE_CORPUS)],
                            trainers.BpeTrainer(vocab_size=len(alphabet) + 6, show_progress=False))
    assert hf.merges(tok) == bpe_merges(list(ex.BPE_CORPUS), 6)


def test_the_exercise_reference_encodes_words_as_the_tokenizers_library_does(tokenizer):
    from tokenizers import Tokenizer, models

    merges = hf.merges(tokenizer)
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
    assert hf.nats_per_char(4.0, 100, 250) == pytest.approx(1.6)
    with pytest.raises(ValueError, match="positive"):
        hf.nats_per_char(4.0, 0, 250)


def test_split_text_cuts_at_a_line_break():
    train_text, val_text = hf.split_text(SAMPLE)
    assert train_text + val_text == SAMPLE and train_text.endswith("\n")
    assert abs(len(val_text) / len(SAMPLE) - 0.1) < 0.05
    with pytest.raises(ValueError, match="val_fraction"):
        hf.split_text(SAMPLE, 1.5)


# --- the model ----------------------------------------------------------------------------------------


def test_config_puts_the_special_ids_inside_the_vocabulary(tokenizer):
    from transformers import GPT2Config

    assert GPT2Config().eos_token_id == 50256  # the default points outside a small vocabulary
    config = hf.gpt2_config(tokenizer, hf.RECIPES["test"])
    assert config.vocab_size == 300
    assert config.bos_token_id == config.eos_token_id == config.pad_token_id == 0


@pytest.mark.parametrize("bad, message", [(dict(n_embd=30, n_head=4), "multiple"), (dict(steps=0), "steps"),
                                          (dict(dropout=1.0), "dropout"), (dict(lr=0.0), "lr")])
def test_recipe_rejects_bad_values(bad, message):
    with pytest.raises(ValueError, match=message):
        hf.LMRecipe(**bad)


@contextlib.contextmanager
def transformers_log() -> Iterator[list[logging.LogRecord]]:
    """Every record the ``transformers`` logger emits inside the block (its own handlers bypass caplog)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("transformers")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def test_the_loss_runs_without_the_loss_type_warning(tokenizer):
    model = tiny(tokenizer)
    with transformers_log() as records:
        x = hf.encode(tokenizer, SAMPLE)[:16][None]
        loss = model(input_ids=x, labels=x).loss
    assert torch.isfinite(loss)
    assert not [r for r in records if "loss_type" in r.getMessage()]


def test_token_nll_predicts_every_token_once_from_its_window(tokenizer):
    model = tiny(tokenizer, block=8)
    ids = hf.encode(tokenizer, SAMPLE)[:30]
    nll = hf.token_nll(model, ids, block_size=8)
    assert nll.shape == (29,)
    # windows start at 0, 7, 14, 21, 28: token t is predicted from the start of its window up to t - 1
    for t in (1, 7, 8, 15, 29):
        s = (t - 1) // 7 * 7
        logits = model(input_ids=ids[s:t][None]).logits[0, -1]
        assert nll[t - 1].item() == pytest.approx(-torch.log_softmax(logits, -1)[ids[t]].item(), abs=1e-5)
    short = ids[:8]
    assert hf.token_nll(model, short, 8).mean().item() == pytest.approx(
        model(input_ids=short[None], labels=short[None]).loss.item(), abs=1e-5)


def test_evaluate_lm_divides_one_total_two_ways(tokenizer):
    result = hf.evaluate_lm(tiny(tokenizer), tokenizer, SAMPLE[:400])
    assert result["nats_per_char"] * result["chars"] == pytest.approx(result["nats_per_token"] * result["tokens"])
    assert result["chars"] == len(SAMPLE[:400]) - len(tokenizer.decode(hf.encode(tokenizer, SAMPLE[:400])[:1]))


def test_learning_rate_schedule():
    r = hf.LMRecipe(steps=100, warmup=10, lr=1e-3)
    assert hf.lr_at(0, r) == pytest.approx(1e-4)
    assert hf.lr_at(9, r) == pytest.approx(1e-3)
    assert hf.lr_at(10, r) == pytest.approx(1e-3)
    assert hf.lr_at(100, r) == pytest.approx(1e-4)
    assert hf.lr_at(55, r) == pytest.approx(1e-4 + 0.9e-3 / 2)
    # a time budget half spent at step 10 puts the cosine half-way; it never holds the decay back
    assert hf.lr_at(10, r, done=0.5) == pytest.approx(1e-4 + 0.9e-3 / 2)
    assert hf.lr_at(55, r, done=0.0) == hf.lr_at(55, r) and hf.lr_at(20, r, done=1.0) == pytest.approx(1e-4)
    assert hf.lr_at(3, r, done=1.0) == pytest.approx(4e-4)  # the warm-up is by steps


def test_train_lm_learns_a_periodic_text(tokenizer):
    ids = torch.arange(10).repeat(60) + 10  # a text of period 10: perfectly predictable from one token back
    recipe = hf.LMRecipe(n_layer=1, n_embd=32, n_head=2, block_size=16, batch_size=8, steps=80, lr=1e-2, warmup=5,
                         dropout=0.0)
    model = hf.make_gpt2(hf.gpt2_config(tokenizer, recipe), seed=0)
    before = hf.token_nll(model, ids[:100]).mean().item()
    run = hf.train_lm(model, ids, recipe, val_ids=ids[:100], eval_every=40, seed=0)
    assert run["steps"] == 80 and run["history"]["step"] == [40, 80]
    assert before > math.log(300) - 0.5  # an untrained model is about uniform over the 300 tokens
    assert run["history"]["val"][-1] < 0.2  # and the trained one nearly certain of every next token


def test_make_optimizer_decays_matrices_only(tokenizer):
    model = tiny(tokenizer)
    decay, rest = hf.make_optimizer(model, hf.RECIPES["test"]).param_groups
    assert decay["weight_decay"] > 0 and rest["weight_decay"] == 0
    assert all(p.ndim >= 2 for p in decay["params"]) and any(p.ndim == 1 for p in rest["params"])
    assert sum(p.numel() for g in (decay, rest) for p in g["params"]) == hf.num_parameters(model)


# --- saving and loading ----------------------------------------------------------------------------------


@pytest.fixture()
def saved(tmp_path, tokenizer):
    model = tiny(tokenizer)
    folder = tmp_path / "m"
    hf.save_hf(model, tokenizer, folder, {"val": {"nats_per_char": 9.9}})
    return model, folder


def test_save_and_load_round_trip(saved, tokenizer):
    model, folder = saved
    written = {p.name for p in folder.iterdir()}  # transformers 4 also writes special_tokens_map.json
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
            hf.CARD_NAME} <= written and not any(name.endswith((".bin", ".pt")) for name in written)
    loaded, tok, card = hf.load_hf(folder)
    x = hf.encode(tokenizer, SAMPLE)[:16][None]
    assert torch.equal(loaded(input_ids=x).logits, model(input_ids=x).logits)
    assert tok.decode(x[0].tolist()) == tokenizer.decode(x[0].tolist()) and tok.pad_token_id == 0
    assert card["val"]["nats_per_char"] == 9.9 and card["weights_sha256"] == card["sha256"]["model.safetensors"]
    assert loaded.generation_config.pad_token_id == 0 and loaded.generation_config.eos_token_id == 0
    assert (folder.stat().st_mode & 0o777) == 0o755
    # transformers 5 would write "TokenizersBackend", a class transformers 4.x does not have
    assert json.loads((folder / "tokenizer_config.json").read_text())["tokenizer_class"] == "PreTrainedTokenizerFast"


def test_load_refuses_a_changed_file(saved):
    _, folder = saved
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match"):
        hf.load_hf(folder)


def test_load_refuses_pickles_and_folders_without_a_card(saved, tmp_path):
    _, folder = saved
    (folder / "pytorch_model.bin").write_bytes(b"not really")
    with pytest.raises(CheckpointError, match="pickled"):
        hf.load_hf(folder)
    with pytest.raises(CheckpointError, match="not found"):
        hf.load_hf(tmp_path)
    card = json.loads((folder / hf.CARD_NAME).read_text())
    del card["sha256"]
    (folder / hf.CARD_NAME).write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="sha256"):
        hf.read_card(folder)


def test_train_command_writes_a_loadable_model(tmp_path):
    assert train.main(["hf-gpt", "--recipe", "test", "--limit", "20000", "--max-minutes", "5",
                       "--out", str(tmp_path)]) == 0
    model, tok, card = hf.load_hf(tmp_path / hf.HF_GPT_NAME)
    assert card["recipe"]["steps"] == 4  # four steps take far less than five minutes
    assert card["command"] == "python -m course_utils.train hf-gpt --recipe test --steps 4 --seed 0 " \
                              "--max-minutes 5 --limit 20000"
    assert card["val"]["chars"] > 100_000 and card["val"]["nats_per_char"] > 0
    assert len(card["curve"]["val"]) == 1 and card["hardware"]


# --- generate's filters --------------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature, top_k, top_p", [(0.8, 5, 0.9), (1.0, None, 0.5), (1.3, 20, None)])
def test_generate_filters_like_the_course_sampler(tokenizer, temperature, top_k, top_p):
    model = tiny(tokenizer, block=32)
    prompt = hf.encode(tokenizer, SAMPLE)[:5][None]
    logits, scores = hf.generate_filters(model, prompt, 6, temperature, top_k, top_p)
    assert logits.shape[1:] == (1, 300) and scores.shape == logits.shape
    ours = text.filter_logits(logits / temperature, top_k, top_p)
    assert torch.equal(torch.isinf(ours), torch.isinf(scores))
    assert torch.allclose(ours[~torch.isinf(ours)], scores[~torch.isinf(scores)])
    assert torch.isinf(scores).any()  # something was filtered, or the comparison says little


# --- the Hub switch, the snippet, summaries -------------------------------------------------------------------


def test_offline_mode_answers_at_once(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    assert hf.hub_reachable(timeout=5) is False
    assert time.perf_counter() - start < 0.1


def test_reachability_is_a_real_connection(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        assert hf.hub_reachable(timeout=2, address=server.getsockname())
        port = server.getsockname()[1]
    assert not hf.hub_reachable(timeout=2, address=("127.0.0.1", port))  # closed now: refused at once


def test_the_learners_snippet_raises_import_error():
    with pytest.raises(ImportError, match="GPT3Tokenizer"):
        exec(hf.GPT3_SNIPPET, {})


def test_snippet_runs_offline_on_the_fallback(saved, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _, folder = saved
    result = hf.run_snippet("openai-community/gpt2", prompt="First", max_new_tokens=5, fallback=folder)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "offline mode" in lines[0] and "openai-community/gpt2" in lines[0]
    assert result["model"] == str(folder) and not result["from_hub"] and result["text"].startswith("First")
    again = hf.run_snippet("openai-community/gpt2", prompt="First", max_new_tokens=5, fallback=folder)
    assert again["text"] == result["text"]  # seeded


def test_online_false_makes_no_connection_and_says_so(saved, monkeypatch, capsys):
    """05's USE_HUB = False: no probe of the Hub at all, even outside offline mode."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)

    def no_network(*args, **kwargs):
        raise AssertionError("online=False tried to connect")

    monkeypatch.setattr(hf, "hub_reachable", no_network)
    _, folder = saved
    result = hf.run_snippet("openai-community/gpt2", prompt="First", max_new_tokens=3, fallback=folder, online=False)
    assert result["model"] == str(folder) and not result["from_hub"]
    assert "online=False" in capsys.readouterr().out
    assert hf.summarise("Some text.", "HuggingFaceTB/SmolLM2-360M-Instruct", online=False) is None
    assert "online=False" in capsys.readouterr().out


def test_summarise_skips_offline_and_runs_the_chat_path_on_a_local_model(tokenizer, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hf.summarise("Some text.", "HuggingFaceTB/SmolLM2-360M-Instruct") is None
    assert capsys.readouterr().out.startswith("skipped:")
    folder = tmp_path / "chat"
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }}\n{% endfor %}"  # a minimal chat template
    try:
        hf.save_hf(tiny(tokenizer, block=128), tokenizer, folder)
    finally:
        tokenizer.chat_template = None
    summary = hf.summarise("First Citizen speaks.", folder, max_new_tokens=4)
    assert isinstance(summary, str)
    with pytest.raises(ValueError, match="empty"):
        hf.summarise("  ", folder)


def test_batched_generation_with_the_end_token_in_the_data_warns_nothing():
    from course_utils import music

    vocab = ["<end>", "<major>", "<minor>"] + [f"C{i}_1" for i in range(3, 8)]
    tok = music.word_tokenizer(vocab)
    model = hf.make_gpt2(hf.gpt2_config(tok, hf.RECIPES["test"], pad_in_config=False), seed=0).eval()
    assert model.config.pad_token_id is None and model.generation_config.pad_token_id == 0
    with torch.no_grad():
        model.lm_head.weight[0] += 0.5  # make <end> likely, so that some sequences finish early
    with transformers_log() as records:
        ids = torch.tensor([[1], [2], [1]])
        torch.manual_seed(0)  # sampling: without a seed whether a sequence ends early depends on earlier tests
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, top_k=0, max_new_tokens=12)
    assert (out[:, -1] == 0).any()  # a finished sequence was padded with <end>
    assert not [r for r in records if "attention_mask" in r.getMessage()]
