"""course_utils.hf: the GPT-2 helpers, training, saving/loading with checksums, generate's filters (notebook 06).

The tokenizer's tests are in ``test_bpe.py``, the Hub's in ``test_hub.py``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import warnings
from collections.abc import Iterator

import pytest
import torch

from course_utils import bpe, hf, music, text, train
from course_utils.checkpoints import CheckpointError, num_parameters
from course_utils.progress import TimeBudget
from tests.hf_support import SAMPLE, sample_tokenizer, tiny

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tokenizer():
    return sample_tokenizer()


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
    from transformers import GPT2LMHeadModel

    model = tiny(tokenizer)
    x = bpe.encode(tokenizer, SAMPLE)[:16][None]
    if hasattr(logging.Logger, "warning_once"):  # transformers says this warning once a session: forget it
        logging.Logger.warning_once.cache_clear()
    with transformers_log() as records:
        loss = model(input_ids=x, labels=x).loss
    assert torch.isfinite(loss)
    assert not [r for r in records if "loss_type" in r.getMessage()]
    bare = GPT2LMHeadModel(model.config).eval()  # without hf.fix_loss_type: the warning the fix avoids
    with transformers_log() as records:
        assert torch.allclose(bare(input_ids=x, labels=x).loss, bare(input_ids=x).logits[0, :-1].log_softmax(-1)
                              .gather(-1, x[0, 1:, None]).mean().neg())
    if hasattr(bare, "loss_type"):  # transformers 4.46 has no loss_type lookup, and no warning to avoid
        assert bare.loss_type is None and [r for r in records if "loss_type" in r.getMessage()]
    else:
        assert not [r for r in records if "loss_type" in r.getMessage()]


def test_captured_warnings_collects_both_kinds_and_cleans_up():
    logger = logging.getLogger("transformers")
    handlers = list(logger.handlers)
    with hf.captured_warnings() as said:
        logger.warning("from the logger")
        logger.info("below the warning level")
        warnings.warn("from warnings.warn", UserWarning, stacklevel=1)
    assert said == ["from the logger", "from warnings.warn"]
    assert logger.handlers == handlers  # the handler is gone
    logger.warning("after the block")
    assert said == ["from the logger", "from warnings.warn"]


def test_captured_warnings_quiet_keeps_the_loggers_own_handlers_out_and_puts_them_back():
    logger = logging.getLogger("transformers")
    heard: list[str] = []
    listener = logging.Handler(logging.WARNING)
    listener.emit = lambda record: heard.append(record.getMessage())  # type: ignore[method-assign]
    logger.addHandler(listener)
    try:
        with hf.captured_warnings() as said:
            logger.warning("said twice")
        with hf.captured_warnings(quiet=True) as said_quietly:
            logger.warning("said once")
        logger.warning("after the quiet block")
        assert said == ["said twice"] and said_quietly == ["said once"]
        assert heard == ["said twice", "after the quiet block"]  # not "said once"; back afterwards
    finally:
        logger.removeHandler(listener)


def test_captured_warnings_can_forget_the_once_a_session_warnings(tokenizer):
    from transformers import GPT2LMHeadModel

    model = tiny(tokenizer)
    x = bpe.encode(tokenizer, SAMPLE)[:16][None]
    if not hasattr(GPT2LMHeadModel(model.config), "loss_type"):
        pytest.skip("this transformers (4.46) has no loss_type lookup, so no once-a-session warning to forget")
    for _ in range(2):  # a bare model warns at its first loss; forgetting shows it again
        bare = GPT2LMHeadModel(model.config).eval()
        with hf.captured_warnings(forget_once=True) as said:
            bare(input_ids=x, labels=x)
        assert [m for m in said if "loss_type" in m]


def test_token_nll_predicts_every_token_once_from_its_window(tokenizer):
    model = tiny(tokenizer, block=8)
    ids = bpe.encode(tokenizer, SAMPLE)[:30]
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


def test_token_nll_restores_the_mode_it_found(tokenizer):
    model = tiny(tokenizer).train()
    nll = hf.token_nll(model, bpe.encode(tokenizer, SAMPLE)[:20])
    assert model.training and not nll.requires_grad  # no dropout while scoring, and no graph kept


def test_evaluate_lm_divides_one_total_two_ways(tokenizer):
    result = hf.evaluate_lm(tiny(tokenizer), tokenizer, SAMPLE[:400])
    assert result["nats_per_char"] * result["chars"] == pytest.approx(result["nats_per_token"] * result["tokens"])
    assert result["chars"] == len(SAMPLE[:400]) - len(tokenizer.decode(bpe.encode(tokenizer, SAMPLE[:400])[:1]))


def test_learning_rate_schedule():
    r = hf.LMRecipe(steps=100, warmup=10, lr=1e-3)
    assert r.lr_at(0) == pytest.approx(1e-3 / 11)  # the course's warm-up: lr * (step + 1) / (warmup + 1)
    assert r.lr_at(9) == pytest.approx(1e-3 * 10 / 11)
    assert r.lr_at(10) == pytest.approx(1e-3)
    assert r.lr_at(100) == pytest.approx(1e-4)  # a cosine down to lr / 10
    assert r.lr_at(55) == pytest.approx(1e-4 + 0.9e-3 / 2)
    # a time budget half spent at step 10 puts the cosine half-way; it never holds the decay back
    assert r.lr_at(10, done=0.5) == pytest.approx(1e-4 + 0.9e-3 / 2)
    assert r.lr_at(55, done=0.0) == r.lr_at(55) and r.lr_at(20, done=1.0) == pytest.approx(1e-4)
    assert r.lr_at(3, done=1.0) == pytest.approx(4e-3 / 11)  # the warm-up is by steps


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


def test_train_lm_stops_when_its_time_is_up(tokenizer, monkeypatch):
    """A fake clock, 20 s a reading: the budget of one minute runs out long before the steps do."""
    readings = iter(range(0, 10_000, 20))
    monkeypatch.setattr(hf, "TimeBudget", lambda minutes: TimeBudget(minutes, clock=lambda: float(next(readings))))
    ids = torch.arange(10).repeat(20)
    recipe = hf.LMRecipe(n_layer=1, n_embd=16, n_head=2, block_size=8, batch_size=2, steps=50, warmup=0)
    run = hf.train_lm(tiny(tokenizer, block=8), ids, recipe, val_ids=ids[:40], eval_every=10, max_minutes=1)
    assert 1 <= run["steps"] < 10 and run["history"]["step"] == [run["steps"]]  # one point: where it stopped


def test_train_lm_keeps_the_weights_of_the_best_validation_point(tokenizer, monkeypatch):
    """Scripted validation losses, lowest at the second of four points: the model ends with that point's weights."""
    losses, seen = iter([3.0, 1.0, 2.0, 1.5]), []

    def scripted(model, ids, block_size=None, batch_size=32):
        seen.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return torch.full((len(ids) - 1,), next(losses))

    monkeypatch.setattr(hf, "token_nll", scripted)
    ids = torch.arange(10).repeat(20)
    recipe = hf.LMRecipe(n_layer=1, n_embd=16, n_head=2, block_size=8, batch_size=2, steps=40, warmup=0)
    model = tiny(tokenizer, block=8)
    run = hf.train_lm(model, ids, recipe, val_ids=ids[:40], eval_every=10, keep_best=True)
    assert run["history"]["val"] == [3.0, 1.0, 2.0, 1.5] and run["best_step"] == 20
    final = model.state_dict()
    assert not all(torch.equal(final[k], seen[-1][k]) for k in final)  # not the last point's weights
    assert all(torch.equal(final[k], seen[1][k]) for k in final)  # the best point's
    assert model.lm_head.weight is model.transformer.wte.weight  # still tied
    with pytest.raises(ValueError, match="val_ids"):
        hf.train_lm(model, ids, recipe, keep_best=True)

def test_make_optimizer_decays_matrices_only(tokenizer):
    model = tiny(tokenizer)
    decay, rest = hf.make_optimizer(model, hf.RECIPES["test"]).param_groups
    assert decay["weight_decay"] > 0 and rest["weight_decay"] == 0
    assert all(p.ndim >= 2 for p in decay["params"]) and any(p.ndim == 1 for p in rest["params"])
    assert sum(p.numel() for g in (decay, rest) for p in g["params"]) == num_parameters(model)


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
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left behind
    loaded, tok, card = hf.load_hf(folder)
    x = bpe.encode(tokenizer, SAMPLE)[:16][None]
    assert torch.equal(loaded(input_ids=x).logits, model(input_ids=x).logits)
    assert tok.decode(x[0].tolist()) == tokenizer.decode(x[0].tolist()) and tok.pad_token_id == 0
    assert card["val"]["nats_per_char"] == 9.9 and card["weights_sha256"] == card["sha256"]["model.safetensors"]
    assert card["num_parameters"] == sum(p.numel() for p in model.parameters())  # the tied embedding once
    assert loaded.generation_config.pad_token_id == 0 and loaded.generation_config.eos_token_id == 0
    assert (folder.stat().st_mode & 0o777) == 0o755
    # transformers 5 would write "TokenizersBackend", a class transformers 4.x does not have
    assert json.loads((folder / "tokenizer_config.json").read_text())["tokenizer_class"] == "PreTrainedTokenizerFast"


def test_a_failed_save_leaves_the_old_model(saved, tokenizer, monkeypatch):
    model, folder = saved
    before = (folder / hf.CARD_NAME).read_text()
    monkeypatch.setattr(hf, "_portable_tokenizer_config", lambda tmp: 1 / 0)  # a crash half-way through
    with pytest.raises(ZeroDivisionError):
        hf.save_hf(model, tokenizer, folder, {"val": {"nats_per_char": 1.0}})
    assert (folder / hf.CARD_NAME).read_text() == before and hf.verify_hf(folder)
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]


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


@pytest.mark.slow
def test_train_command_writes_a_loadable_model(tmp_path, monkeypatch):
    # a clock that never moves: the run does its 4 steps however slow the machine, and --max-minutes is recorded
    monkeypatch.setattr(hf, "TimeBudget", lambda minutes: TimeBudget(minutes, clock=lambda: 0.0))
    assert train.main(["hf-gpt", "--recipe", "test", "--limit", "20000", "--max-minutes", "5",
                       "--out", str(tmp_path)]) == 0
    model, tok, card = hf.load_hf(tmp_path / hf.HF_GPT_NAME)
    assert card["recipe"]["steps"] == 4
    assert card["command"] == "python -m course_utils.train hf-gpt --recipe test --steps 4 --seed 0 " \
                              "--max-minutes 5 --limit 20000"
    assert card["val"]["chars"] > 100_000 and card["val"]["nats_per_char"] > 0
    assert len(card["curve"]["val"]) == 1 and card["hardware"]


# --- generate's filters --------------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature, top_k, top_p", [(0.8, 5, 0.9), (1.0, None, 0.5), (1.3, 20, None)])
def test_generate_filters_like_the_course_sampler(tokenizer, temperature, top_k, top_p):
    model = tiny(tokenizer, block=32)
    prompt = bpe.encode(tokenizer, SAMPLE)[:5][None]
    logits, scores = hf.generate_filters(model, prompt, 6, temperature, top_k, top_p)
    assert logits.shape[1:] == (1, 300) and scores.shape == logits.shape
    ours = text.filter_logits(logits / temperature, top_k, top_p)
    assert torch.equal(torch.isinf(ours), torch.isinf(scores))
    assert torch.allclose(ours[~torch.isinf(ours)], scores[~torch.isinf(scores)])
    assert torch.isinf(scores).any()  # something was filtered, or the comparison says little


def test_batched_generation_with_the_end_token_in_the_data_warns_nothing():
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


# --- 05 and 06 connected: a Hugging Face GPT-2 in 05's GPT class ------------------------------------------


def test_gpt_from_hf_gives_the_same_logits(tokenizer):
    model = tiny(tokenizer, block=16)
    with torch.no_grad():  # non-zero biases and layer-norm shifts, so that a missed bias would show
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                p.normal_(0, 0.1)
    ours = hf.gpt_from_hf(model)
    c = ours.config
    assert (c.bias, c.tie_weights, c.activation, c.n_layer, c.block_size) == (True, True, "gelu_new", 1, 16)
    assert ours.lm_head.weight is ours.transformer.wte.weight
    x = torch.randint(len(tokenizer), (2, 16))
    with torch.no_grad():
        assert torch.allclose(ours(x)[0], model(input_ids=x).logits, atol=1e-5)


def test_gpt_from_hf_refuses_another_activation(tokenizer):
    model = tiny(tokenizer)
    model.config.activation_function = "relu"
    with pytest.raises(ValueError, match="gelu_new"):
        hf.gpt_from_hf(model)
