"""course_utils.decoding (greedy, beam search, sampling, repetition penalty, log-probabilities) on models whose
answers are known, checked against Hugging Face's logits processor (beam search against Hugging Face's
``generate``: tests/test_against_libraries.py; on an accelerator: tests/test_devices.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from course_utils import decoding, gpt, text

pytestmark = pytest.mark.usefixtures("one_thread")


@dataclass(frozen=True)
class TableConfig:
    block_size: int = 4


class TableModel(nn.Module):
    """A bigram language model given as a table of next-token probabilities: known answers for every strategy."""

    def __init__(self, probs: torch.Tensor, block_size: int = 4) -> None:
        super().__init__()
        self.config = TableConfig(block_size)
        self.logits = nn.Parameter(probs.log())
        self.calls: list[int] = []

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        self.calls.append(ids.shape[1])
        return self.logits[ids]


# token 0 -> 1 (0.6) or 2 (0.4); 1 -> anything, nearly uniformly; 2 -> 3 almost surely; 3 -> 0
TRAP = torch.tensor([
    [0.001, 0.599, 0.399, 0.001],
    [0.25, 0.25, 0.26, 0.24],
    [0.003, 0.003, 0.004, 0.99],
    [0.97, 0.01, 0.01, 0.01],
])


def test_greedy_follows_the_most_likely_token_and_loops():
    model = TableModel(TRAP)
    out = decoding.greedy(model, torch.tensor([0]), 6)
    assert out.tolist() == [0, 1, 2, 3, 0, 1, 2]


def test_beam_search_finds_the_likelier_pair_greedy_misses():
    model = TableModel(TRAP)
    greedy = decoding.greedy(model, torch.tensor([0]), 2)
    beam = decoding.beam_search(model, torch.tensor([0]), 2, num_beams=2)
    assert greedy.tolist() == [0, 1, 2] and beam.tolist() == [0, 2, 3]  # 0.599 * 0.26 < 0.399 * 0.99
    lp = lambda ids: decoding.continuation_log_probs(model, ids, 1).sum().item()  # noqa: E731
    assert lp(beam) == pytest.approx(math.log(0.399 * 0.99), abs=1e-5)
    assert torch.equal(decoding.beam_search(model, torch.tensor([0]), 5, num_beams=1),
                       decoding.greedy(model, torch.tensor([0]), 5))


def test_sampling_draws_with_the_models_probabilities():
    model = TableModel(TRAP)
    g = torch.Generator().manual_seed(0)
    firsts = torch.stack([decoding.sample(model, torch.tensor([0]), 1, generator=g)[1] for _ in range(4000)])
    share = torch.bincount(firsts, minlength=4).float() / 4000
    # 4,000 draws: the standard error of a share is at most sqrt(0.25 / 4000) = 0.008; allow 4 of them
    assert torch.allclose(share, TRAP[0], atol=0.032)


def test_sampling_is_seeded_and_its_limits_are_greedy():
    model = TableModel(TRAP)
    prompt = torch.tensor([0, 1])
    a = decoding.sample(model, prompt, 12, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, decoding.sample(model, prompt, 12, generator=torch.Generator().manual_seed(3)))
    greedy = decoding.greedy(model, prompt, 12)
    assert torch.equal(decoding.sample(model, prompt, 12, top_k=1), greedy)
    # TRAP's closest pair of logits differs by log(0.26 / 0.25) = 0.039; at T = 1e-4 the runner-up's odds are
    # exp(-390): the draw is greedy for any seed (at T = 0.01 it was not, about 6% a step)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(decoding.sample(model, prompt, 12, temperature=1e-4, generator=g), greedy)
    assert torch.equal(decoding.sample(model, prompt, 12, top_p=0.2), greedy)  # the top token alone holds > 0.2


def test_the_context_is_cropped_to_the_block():
    model = TableModel(TRAP, block_size=4)
    decoding.greedy(model, torch.tensor([0, 1, 2, 3, 0, 1]), 3)
    assert max(model.calls) == 4


def test_repetition_penalty_known_answer_and_huggingface():
    logits = torch.tensor([2.0, -1.0, 0.5, -3.0])
    out = decoding.apply_repetition_penalty(logits, torch.tensor([0, 1, 1]), 2.0)
    assert out.tolist() == [1.0, -2.0, 0.5, -3.0]  # positive divided, negative multiplied, unseen unchanged
    assert logits.tolist() == [2.0, -1.0, 0.5, -3.0]  # the input is left alone
    from transformers import RepetitionPenaltyLogitsProcessor

    g = torch.Generator().manual_seed(0)
    batch, previous = torch.randn(3, 20, generator=g), torch.randint(20, (3, 7), generator=g)
    theirs = RepetitionPenaltyLogitsProcessor(1.3)(previous, batch.clone())
    assert torch.equal(decoding.apply_repetition_penalty(batch, previous, 1.3), theirs)


LOOP = torch.tensor([  # greedy: 0 1 0 1 ...; the runners-up lead elsewhere
    [0.05, 0.5, 0.3, 0.1, 0.05],
    [0.5, 0.05, 0.1, 0.3, 0.05],
    [0.3, 0.1, 0.05, 0.25, 0.3],
    [0.1, 0.3, 0.25, 0.05, 0.3],
    [0.3, 0.3, 0.2, 0.15, 0.05],
])


def test_repetition_penalty_breaks_the_greedy_loop():
    model = TableModel(LOOP, block_size=16)
    plain = decoding.greedy(model, torch.tensor([0]), 12)
    assert plain.tolist() == [0, 1] * 6 + [0]
    penalised = decoding.greedy(model, torch.tensor([0]), 12, repetition_penalty=2.0)
    assert penalised[:4].tolist() == [0, 1, 3, 4]  # log 0.5 * 2 < log 0.3: the unseen token wins
    assert text.repetition_rate(plain.tolist(), 2) > text.repetition_rate(penalised.tolist(), 2)
    with pytest.raises(ValueError, match="positive"):
        decoding.apply_repetition_penalty(torch.zeros(3), torch.tensor([0]), 0.0)


def test_generate_dispatches_and_refuses_settings_it_would_ignore():
    model = TableModel(TRAP)
    p = torch.tensor([0])
    assert torch.equal(decoding.generate(model, p, 5), decoding.greedy(model, p, 5))
    assert torch.equal(decoding.generate(model, p, 2, num_beams=2), decoding.beam_search(model, p, 2, 2))
    assert torch.equal(decoding.generate(model, p, 5, do_sample=True, top_k=1), decoding.greedy(model, p, 5))
    for setting in (dict(top_k=5), dict(temperature=0.7), dict(top_p=0.9)):
        with pytest.raises(ValueError, match="only apply when sampling"):
            decoding.generate(model, p, 5, **setting)
    with pytest.raises(ValueError, match="num_beams=1"):
        decoding.generate(model, p, 5, do_sample=True, num_beams=3)


def test_bad_prompts_are_refused():
    model = TableModel(TRAP)
    for bad in (torch.tensor([[0, 1]]), torch.tensor([], dtype=torch.long), torch.tensor([0.5])):
        with pytest.raises(ValueError, match="1-D tensor of token indices"):
            decoding.greedy(model, bad, 3)
    with pytest.raises(ValueError, match="non-negative"):
        decoding.greedy(model, torch.tensor([0]), -1)


def test_continuation_log_probs_uses_the_context_each_token_was_made_with():
    torch.manual_seed(0)
    model = gpt.GPT(vocab_size=7, block_size=5, n_layer=1, n_head=1, n_embd=8).eval()
    ids = torch.randint(7, (13,), generator=torch.Generator().manual_seed(1))
    got = decoding.continuation_log_probs(model, ids, 3)
    by_hand = []
    for t in range(3, 13):  # one forward per token, with at most block_size tokens of context
        logits, _ = model(ids[max(0, t - 5):t][None])
        by_hand.append(logits[0, -1].log_softmax(-1)[ids[t]])
    assert torch.allclose(got, torch.stack(by_hand), atol=1e-5)  # float32, a few layers: rounding only
    with pytest.raises(ValueError, match="start"):
        decoding.continuation_log_probs(model, ids, 0)


def test_decoding_restores_training_mode():
    model = TableModel(TRAP).train()
    decoding.greedy(model, torch.tensor([0]), 2)
    assert model.training
