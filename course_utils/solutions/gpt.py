"""Reference solutions of notebook 05's exercises (transformers from scratch)."""

import math

import torch


def local_causal_mask(size, window):
    """[size, size] booleans: True where query i may attend to key j, i.e. 0 <= i - j < window."""
    query = torch.arange(size).unsqueeze(1)
    key = torch.arange(size).unsqueeze(0)
    distance = query - key
    return (distance >= 0) & (distance < window)


def alibi_attention(x, w_q, w_k, w_v, slopes):
    """Causal multi-head attention with ALiBi: head n's scores lowered by slopes[n] * (i - j); [T, C]."""
    T, C = x.shape
    h = len(slopes)
    hs = C // h
    q, k, v = ((x @ w).view(T, h, hs).transpose(0, 1) for w in (w_q, w_k, w_v))  # [h, T, hs]: each head its channels
    distance = torch.arange(T).unsqueeze(1) - torch.arange(T).unsqueeze(0)  # [T, T]: i - j
    scores = q @ k.transpose(1, 2) / math.sqrt(hs) - slopes.view(h, 1, 1) * distance  # [h, T, T]
    scores = scores.masked_fill(distance < 0, float("-inf"))  # keys after the query
    y = torch.softmax(scores, dim=-1) @ v  # [h, T, hs]
    return y.transpose(0, 1).reshape(T, C)  # the heads side by side


def post_norm_forward(block, x):
    """The stream x [B, T, C] after the block's two sub-layers in the original transformer's post-norm order."""
    x = block.ln_1(x + block.attn(x))  # the attention reads the stream itself; the sum is normalised
    return block.ln_2(x + block.mlp(x))  # the MLP likewise, with the second LayerNorm


def sample_tokens(model, idx, steps, temperature, top_k, generator):
    """idx [1, T] followed by `steps` tokens drawn one at a time with a temperature and top-k: [1, T + steps]."""
    block_size = model.config.block_size
    for _ in range(steps):
        context = idx[:, -block_size:]  # the model reads at most block_size tokens
        logits, _ = model(context)
        last = logits[:, -1, :] / temperature  # the next token's logits, [1, V]
        kth_largest = torch.topk(last, top_k, dim=-1).values[:, -1:]
        last = last.masked_fill(last < kth_largest, float("-inf"))
        probs = torch.softmax(last, dim=-1)
        next_token = torch.multinomial(probs, num_samples=1, generator=generator)  # [1, 1]
        idx = torch.cat([idx, next_token], dim=1)
    return idx


def top_p_filter(logits, p):
    """The logits [B, V] with float('-inf') for every token outside its row's nucleus of mass p."""
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = sorted_logits.softmax(dim=-1)
    drop_sorted = probs.cumsum(dim=-1) - probs >= p  # the tokens above already hold p of the mass
    drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to the original order
    return logits.masked_fill(drop, float("-inf"))


def penalise(logits, previous, penalty):
    """The logits with every token in `previous` lowered: positive / penalty, negative * penalty."""
    out = logits.clone()
    seen = torch.unique(previous)
    out[seen] = torch.where(out[seen] > 0, out[seen] / penalty, out[seen] * penalty)
    return out
