"""Reference solutions of notebook 01's exercises (generative modelling basics)."""

import torch


def sample_name(P, vocab, generator, temperature=1.0, max_len=50, prefix=""):
    """A name that begins with ``prefix``, completed from the bigram table ``P`` at ``temperature``, without the end
    token, at most ``max_len`` letters in all."""
    logits = P.log() / temperature  # the temperature divides the log-probabilities, not the probabilities
    name = prefix
    current = vocab.stoi[prefix[-1]] if prefix else 0  # a bigram sees only the last letter; '.' (0) if none
    while len(name) < max_len:  # max_len counts the prefix too
        probs = torch.softmax(logits[current], dim=0)
        current = torch.multinomial(probs, 1, generator=generator).item()  # one draw from the current row
        if current == 0:  # '.' again: the name is over
            break
        name += vocab.itos[current]
    return name


def trigram_nll(train_words, val_words, vocab, alpha):
    """The held-out NLL in nats per character of an add-alpha trigram model counted on ``train_words``."""
    V = len(vocab)
    counts = torch.zeros(V, V, V)  # counts[a, b, c]: how often c follows the pair (a, b)
    for word in train_words:
        ids = vocab.encode(".." + word + ".")
        for a, b, c in zip(ids, ids[1:], ids[2:], strict=False):
            counts[a, b, c] += 1
    probs = (counts + alpha) / (counts.sum(dim=2, keepdim=True) + alpha * V)
    log_probs = []
    for word in val_words:
        ids = vocab.encode(".." + word + ".")
        for a, b, c in zip(ids, ids[1:], ids[2:], strict=False):
            log_probs.append(probs[a, b, c].log().item())
    return -sum(log_probs) / len(log_probs)


def best_bias(x, y, V):
    """The bias ``b`` (``[V]``) minimising the cross-entropy of the logits ``b`` (``W = 0``) for the targets ``y``."""
    shares = torch.bincount(y, minlength=V).float() / len(y)  # how often each symbol is the next one; x plays no part
    return shares.log()  # softmax(log shares) = shares: the row that makes the targets most probable


def stratified_split(labels, val_fraction, generator):
    """(train_idx, val_idx): a random ``val_fraction`` of each class's indices in val, all the others in train."""
    val_parts = []
    for c in labels.unique():
        idx = torch.nonzero(labels == c)[:, 0]  # the indices of class c
        shuffled = idx[torch.randperm(len(idx), generator=generator)]
        val_parts.append(shuffled[: round(val_fraction * len(idx))])
    val_idx = torch.cat(val_parts)
    is_val = torch.zeros(len(labels), dtype=torch.bool)
    is_val[val_idx] = True
    return torch.nonzero(~is_val)[:, 0], val_idx


def pca_interpolate(x_a, x_b, mean, components, k, steps):
    """``[steps, D]``: the decoded points on the straight line from ``x_a``'s k-dim code to ``x_b``'s."""
    v_k = components[:, :k]  # the first k directions, as columns
    z_a, z_b = (x_a - mean) @ v_k, (x_b - mean) @ v_k  # encode
    t = torch.linspace(0, 1, steps)[:, None]  # [steps, 1], from 0 at x_a to 1 at x_b
    return ((1 - t) * z_a + t * z_b) @ v_k.T + mean  # walk, then decode


def walk_source(x_a, x_b, t):
    """``[steps, D]``: the images whose PCA reconstructions are the frames of the walk at ``t`` (``[steps, 1]``).

    Encoding, the straight line and decoding are all linear, so the frame at t is
    ``pca.reconstruct((1 - t) * x_a + t * x_b, k)``: the pixels faded, then projected. One ``torch.allclose``
    shows it: ``torch.allclose(pca_interpolate(x_a, x_b, mean, components, k, steps),
    pca.reconstruct(walk_source(x_a, x_b, t), k), atol=1e-4)`` with ``t = torch.linspace(0, 1, steps)[:, None]``.
    The middle frame is the projection of a half-and-half blend: a double exposure, not a garment.
    """
    return (1 - t) * x_a + t * x_b  # the pixels faded from x_a (t = 0) to x_b (t = 1)
