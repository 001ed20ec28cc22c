"""Forgetting quality F: the NeurIPS 2023 unlearning competition's score of how well an unlearning method forgets.

Triantafillou et al. (2024), "Are we making progress in unlearning? Findings from the first NeurIPS unlearning
competition" (arXiv 2406.09073), section 3 (the evaluation framework), scores a method against the
(epsilon, delta)-unlearning definition, example by example:

1. Train K original models and unlearn each with the method (K unlearned models), and train K models from
   scratch without the forget set (K retrained models). For a forget-set example x with label y, each model gives
   one number, its logit-scaled confidence ``log p_y - log(1 - p_y)`` (:func:`logit_scaled_confidence`): K samples
   of the unlearned distribution and K of the retrained one.
2. An attacker who sees one confidence must tell which distribution it came from. Every decision rule of two
   families does so with a false-positive rate FPR and a false-negative rate FNR: one threshold (the side of the
   group with the larger median), and an interval (inside: the group whose samples spread less). Each rule bounds
   epsilon from below, ``max(log(1 - delta - FPR) - log FNR, log(1 - delta - FNR) - log FPR)``; the example's
   epsilon is the largest bound of any rule (:func:`example_epsilon`), with delta = 1e-5 as in the competition.
   Rules with FPR = 0 or FNR = 0 (but not both) are dropped: K samples cannot tell such rates from small ones. A
   rule with both zero separates the two distributions perfectly: epsilon is infinite. An unlearned distribution
   whose spread is under 1 % of the retrained one's (or the other way round) is as bad (``EPSILON_CAP``).
3. Epsilon is cut into buckets 0.5 wide; bucket n (from 0) earns 2^-n points, up to the largest epsilon K models
   can resolve, ``ceil(log(K - 1))``; beyond it, 0. F is the mean of the points over the forget set: 1 when no
   rule tells unlearned from retrained on any example, 0 when every example is told apart.

The competition's released scoring code evaluates the rules on a grid of thresholds (100 per unit of confidence);
here every threshold at which a rate changes (each sample's value) is evaluated, so each example's epsilon is the
exact supremum over the two families.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

DELTA = 1e-5  # the competition's delta
EPSILON_CAP = 50.0  # the epsilon of a perfectly told-apart example (the competition's cap)
BUCKET = 0.5  # width of an epsilon bucket: bucket n earns 2^-n points
PEAKY = 0.01  # a spread under 1 % of the other distribution's: told apart (the competition's check)


def logit_scaled_confidence(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``log p_y - log(1 - p_y)`` for each row of ``logits`` (N, C) and label in ``targets`` (N,); shape (N,).

    Computed as ``z_y - logsumexp_{j != y} z_j``, which is the same quantity without forming ``1 - p_y`` (exact
    where p_y rounds to 1)."""
    logits = logits.double()
    true = logits.gather(1, targets[:, None]).squeeze(1)
    others = logits.scatter(1, targets[:, None], float("-inf"))
    return true - torch.logsumexp(others, dim=1)


def _rule_epsilon(fpr: np.ndarray, fnr: np.ndarray, delta: float) -> float:
    """The largest epsilon bound of rules with these rates: infinite when one rule has no error, NaN when every
    rule has exactly one zero rate (and is dropped)."""
    if np.any((fpr == 0) & (fnr == 0)):
        return math.inf
    keep = (fpr > 0) & (fnr > 0)
    if not keep.any():
        return math.nan
    fpr, fnr = fpr[keep], fnr[keep]
    with np.errstate(divide="ignore"):  # log 0 = -inf: a rule whose 1 - delta - rate is 0 bounds nothing
        bounds = np.maximum(
            np.log(np.clip(1 - delta - fpr, 0, None)) - np.log(fnr),
            np.log(np.clip(1 - delta - fnr, 0, None)) - np.log(fpr),
        )
    return float(bounds.max())


def _single_threshold_rates(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FPR and FNR of "at or above t: positive" for every t at which a rate changes (both sorted arrays)."""
    t = np.unique(np.concatenate([pos, neg]))
    fnr = np.searchsorted(pos, t, side="left") / len(pos)  # positives below t
    fpr = 1 - np.searchsorted(neg, t, side="left") / len(neg)  # negatives at or above t
    return fpr, fnr


def _interval_rates(inside: np.ndarray, outside: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FPR and FNR of "in [l, r]: the ``inside`` group" for every pair l <= r of sample values (sorted arrays)."""
    t = np.unique(np.concatenate([inside, outside]))

    def share_in(values: np.ndarray) -> np.ndarray:  # (l, r) -> share of values in [l, r]
        upto = np.searchsorted(values, t, side="right")  # values <= r
        below = np.searchsorted(values, t, side="left")  # values < l
        return (upto[None, :] - below[:, None]) / len(values)

    pairs = np.triu(np.ones((len(t), len(t)), dtype=bool))
    fnr = 1 - share_in(inside)[pairs]  # the inside group's samples outside the interval
    fpr = share_in(outside)[pairs]  # the other group's samples inside it
    return fpr, fnr


def example_epsilon(unlearned: np.ndarray, retrained: np.ndarray, delta: float = DELTA) -> float:
    """One example's epsilon from its K unlearned and K retrained confidences (each (K,)), in [0, EPSILON_CAP]."""
    u, r = np.sort(np.asarray(unlearned, dtype=float)), np.sort(np.asarray(retrained, dtype=float))
    if len(u) < 2 or len(r) < 2:
        raise ValueError(f"each side needs at least two models, got {len(u)} unlearned and {len(r)} retrained")
    spread_u, spread_r = u[-1] - u[0], r[-1] - r[0]
    if max(spread_u, spread_r) == 0:  # both constant: the same value or told apart
        return 0.0 if u[0] == r[0] else EPSILON_CAP
    if min(spread_u, spread_r) / max(spread_u, spread_r) < PEAKY:
        return EPSILON_CAP
    pos, neg = (r, u) if np.median(r) > np.median(u) else (u, r)
    inside, outside = (u, r) if spread_u < spread_r else (r, u)
    rates = [_single_threshold_rates(pos, neg), _interval_rates(inside, outside)]
    fpr = np.concatenate([f for f, _ in rates])
    fnr = np.concatenate([n for _, n in rates])
    epsilon = _rule_epsilon(fpr, fnr, delta)
    return EPSILON_CAP if math.isinf(epsilon) else float(np.clip(np.nan_to_num(epsilon, nan=0.0), 0, EPSILON_CAP))


def bucket_points(epsilon: float, n_models: int) -> float:
    """The points one example's epsilon earns with K = ``n_models`` models a side: 2^-n in bucket n (0.5 wide), up
    to ``ceil(log(K - 1))``; 0 beyond."""
    limit = math.ceil(math.log(n_models - 1))
    bucket = math.floor(epsilon / BUCKET)
    return 0.0 if (bucket + 1) * BUCKET > limit else 2.0**-bucket


@dataclass(frozen=True)
class ForgettingQuality:
    """F over a forget set, with each example's epsilon and points."""

    score: float  # F: the mean of the points, in [0, 1]
    epsilons: np.ndarray  # (N,): each example's epsilon
    points: np.ndarray  # (N,): each example's points
    n_models: int  # K: models per side


def forgetting_quality(unlearned: np.ndarray, retrained: np.ndarray, delta: float = DELTA) -> ForgettingQuality:
    """F from confidences of shape (K, N): K unlearned and K retrained models on N forget-set examples."""
    unlearned, retrained = np.asarray(unlearned, dtype=float), np.asarray(retrained, dtype=float)
    if unlearned.ndim != 2 or unlearned.shape != retrained.shape:
        raise ValueError(
            f"expected two (K models, N examples) arrays of one shape, got {unlearned.shape} and {retrained.shape}"
        )
    if not (np.isfinite(unlearned).all() and np.isfinite(retrained).all()):
        raise ValueError("the confidences hold inf or NaN: check the models' outputs")
    k, n = unlearned.shape
    if k < 3:
        raise ValueError(f"F needs at least 3 models a side (K - 1 > 1), got {k}")
    epsilons = np.array([example_epsilon(unlearned[:, i], retrained[:, i], delta) for i in range(n)])
    points = np.array([bucket_points(e, k) for e in epsilons])
    return ForgettingQuality(float(points.mean()), epsilons, points, k)
