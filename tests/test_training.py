"""course_utils.training: the one eval-mode context, AdamW's groups, the one learning-rate schedule."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from course_utils import training

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: one thread is fastest (conftest.py)


def test_evaluating_switches_off_dropout_and_gradients_and_restores_the_mode_even_on_error():
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5)).train()
    with training.evaluating(model) as m:
        assert not m.training and not torch.is_grad_enabled()
        out = m(torch.ones(2, 3))
    assert model.training and torch.is_grad_enabled() and not out.requires_grad
    with pytest.raises(RuntimeError), training.evaluating(model):
        raise RuntimeError("boom")
    assert model.training
    model.eval()
    with training.evaluating(model):
        pass
    assert not model.training  # a model in eval mode stays there


def test_adamw_decays_matrices_only_counts_a_tied_weight_once_and_skips_named_ones():
    emb = nn.Embedding(5, 4)
    model = nn.ModuleDict({"wte": emb, "wpe": nn.Embedding(3, 4), "ln": nn.LayerNorm(4), "head": nn.Linear(4, 5)})
    model["head"].weight = emb.weight  # tied
    opt = training.adamw(model, lr=1e-3, weight_decay=0.1, no_decay=("wpe",))
    decayed, rest = opt.param_groups
    assert decayed["weight_decay"] == 0.1 and rest["weight_decay"] == 0.0
    assert [tuple(p.shape) for p in decayed["params"]] == [(5, 4)]  # wte = head, once
    assert sorted(tuple(p.shape) for p in rest["params"]) == [(3, 4), (4,), (4,), (5,)]  # wpe, ln, head bias
    assert training.adamw(model, lr=1e-3, weight_decay=0.1, fused=True).defaults["lr"] == 1e-3  # falls back on CPU


def test_lr_at_warms_up_holds_and_decays_to_the_floor():
    kw = dict(lr=1.0, min_lr=0.1, warmup=3, steps=10)
    assert [training.lr_at(s, **kw) for s in range(3)] == pytest.approx([0.25, 0.5, 0.75])
    assert training.lr_at(3, **kw) == 1.0 and training.lr_at(10, **kw) == pytest.approx(0.1)
    assert training.lr_at(6, **kw) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 3 / 7)))
    wsd = dict(kw, decay_steps=4, shape="linear")
    assert [training.lr_at(s, **wsd) for s in (4, 5, 6, 7, 8, 10)] == pytest.approx([1, 1, 1, 0.775, 0.55, 0.1])
    assert training.lr_at(4, **kw, done=1.0) == pytest.approx(0.1)  # a spent time budget ends at the floor
    with pytest.raises(ValueError, match="shape"):
        training.lr_at(0, **kw, shape="step")
