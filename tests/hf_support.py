"""What the tests of notebook 06's modules share: a sample text and a tiny GPT-2 on a BPE tokenizer of it.

Used by ``test_bpe.py``, ``test_hf.py`` and ``test_hub.py``.
"""

from __future__ import annotations

from typing import Any

from course_utils import bpe, hf

SAMPLE = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n" * 20


def sample_tokenizer() -> Any:
    """The byte-level BPE of :data:`SAMPLE` with 300 tokens (43 merges)."""
    return bpe.train_bpe(SAMPLE, vocab_size=300)


def tiny(tokenizer: Any, seed: int = 0, block: int = 16) -> Any:
    """A one-layer, 16-wide GPT-2 for ``tokenizer``, in eval mode."""
    recipe = hf.LMRecipe(n_layer=1, n_embd=16, n_head=2, block_size=block, batch_size=4, steps=4, warmup=1)
    return hf.make_gpt2(hf.gpt2_config(tokenizer, recipe), seed=seed).eval()
