"""Reference solutions of notebook 07's exercises (evaluating generative models).

Shown on request by ``show_solution("name")``; never run by a notebook.
"""

import math

import torch


def precision_recall_knn(real, fake, k):
    """(precision, recall) of two [N, 2] point sets, each manifold a union of k-th-nearest-neighbour balls."""
    def radii(x):
        return torch.cdist(x, x).kthvalue(k + 1, dim=1).values  # the smallest distance is 0, to the point itself

    def inside(queries, support):
        """The share of the queries within the radius of at least one support point."""
        within = torch.cdist(queries, support) <= radii(support)[None, :]  # [queries, support]
        return within.any(dim=1).double().mean().item()

    return inside(fake, real), inside(real, fake)


def bootstrap_mean_interval(values, resamples, generator):
    """The 95% percentile bootstrap interval (low, high) of the mean of a 1-D tensor."""
    n = len(values)
    picks = torch.randint(n, (resamples, n), generator=generator)  # one resample per row, with replacement
    means = values[picks].mean(dim=1)
    return torch.quantile(means, 0.025).item(), torch.quantile(means, 0.975).item()


def win_rate(ratings, model):
    """(rate, low, high): the model's share of wins, a tie counting half, and its 95% Wilson interval."""
    wins, n = 0.0, 0
    for r in ratings:
        if model not in (r.model_a, r.model_b):
            continue
        n += 1
        if r.choice == "tie":
            wins += 0.5
            continue
        a_on_left = r.shown_left == r.item_a  # the sides were drawn at random
        left_model, right_model = (r.model_a, r.model_b) if a_on_left else (r.model_b, r.model_a)
        wins += (left_model if r.choice == "left" else right_model) == model
    p, z = wins / n, 1.959964
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return p, max(0.0, centre - half), min(1.0, centre + half)


def paired_ratio_interval(scores_a, scores_b, resamples, generator):
    """The 95% percentile bootstrap interval (low, high) of mean(scores_a) / mean(scores_b), items drawn in pairs."""
    n = len(scores_a)
    items = torch.randint(n, (resamples, n), generator=generator)  # the same items for both models
    ratios = scores_a[items].mean(dim=1) / scores_b[items].mean(dim=1)  # one ratio of means per resample
    return torch.quantile(ratios, 0.025).item(), torch.quantile(ratios, 0.975).item()
