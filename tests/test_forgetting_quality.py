"""Forgetting quality F on distributions whose epsilon is known: identical, shifted by a known amount, separable."""

import math

import numpy as np
import pytest
import torch

from unlearnlab.forgetting_quality import (
    DELTA,
    EPSILON_CAP,
    bucket_points,
    example_epsilon,
    forgetting_quality,
    logit_scaled_confidence,
)


def test_logit_scaled_confidence_is_log_odds_of_the_true_class():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0], [50.0, -50.0, 0.0]])
    y = torch.tensor([0, 2, 0])
    p = logits.double().softmax(1)[torch.arange(3), y]
    conf = logit_scaled_confidence(logits, y)
    assert torch.allclose(conf[:2], torch.log(p[:2]) - torch.log1p(-p[:2]))
    assert conf[1] == pytest.approx(math.log(1 / 2))  # p = 1/3: odds 1:2
    assert conf[2] == pytest.approx(50.0, abs=1e-9)  # p rounds to 1; the log-odds do not
    assert torch.equal(logits, torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0], [50.0, -50.0, 0.0]]))


def test_identical_distributions_have_epsilon_zero_and_f_one():
    rng = np.random.default_rng(0)
    confs = rng.normal(size=(32, 20))
    assert example_epsilon(confs[:, 0], confs[:, 0]) == pytest.approx(0.0, abs=1e-4)
    result = forgetting_quality(confs, confs.copy())
    assert result.score == 1.0 and np.all(result.points == 1.0)


def test_a_known_shift_gives_its_epsilon_and_bucket():
    # each side takes two values; 3/4 of the retrained models and 1/4 of the unlearned ones give the larger one.
    # The best rule errs on 1/4 of each side: epsilon = log((1 - 1/4 - delta) / (1/4)) = log 3 - a hair
    k = 32
    retrained = np.array([1.0] * 24 + [0.0] * 8)
    unlearned = np.array([1.0] * 8 + [0.0] * 24)
    epsilon = example_epsilon(unlearned, retrained)
    assert epsilon == pytest.approx(math.log((0.75 - DELTA) / 0.25), abs=1e-9)
    result = forgetting_quality(np.tile(unlearned[:, None], 5), np.tile(retrained[:, None], 5))
    assert result.score == bucket_points(epsilon, k) == 0.25  # log 3 = 1.10: the third bucket, [1.0, 1.5)


def test_f_falls_as_the_distributions_move_apart_and_is_zero_when_they_separate():
    # independent samples of one distribution do not reach F = 1: with K models a side, the rules that cut the
    # tails find chance gaps (the ceiling a method is judged against is retrained against retrained)
    rng = np.random.default_rng(1)
    retrained = rng.normal(size=(64, 100))
    scores = [forgetting_quality(rng.normal(loc=shift, size=(64, 100)), retrained).score for shift in (0, 1, 3)]
    assert 1.0 > scores[0] > scores[1] > scores[2] > 0.0
    separable = forgetting_quality(retrained + 100, retrained)
    assert separable.score == 0.0 and np.all(separable.epsilons == EPSILON_CAP)


def test_a_method_whose_models_all_agree_is_told_apart():
    rng = np.random.default_rng(2)
    retrained = rng.normal(size=(16, 4))
    deterministic = np.full((16, 4), float(np.median(retrained)))  # no spread: K copies of one model
    assert forgetting_quality(deterministic, retrained).score == 0.0


def test_points_halve_per_bucket_up_to_what_k_models_resolve():
    assert [bucket_points(e, 32) for e in (0.0, 0.49, 0.5, 1.2, 3.49, 3.5, 50.0)] == [1, 1, 0.5, 0.25, 2**-6, 2**-7, 0]
    assert bucket_points(3.0, 8) == 0.0  # ceil(log 7) = 2: epsilon 3 is beyond what 8 models resolve


def test_bad_input_gets_a_clear_error():
    with pytest.raises(ValueError, match="one shape"):
        forgetting_quality(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="at least 3 models"):
        forgetting_quality(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="inf or NaN"):
        forgetting_quality(np.full((4, 3), np.nan), np.zeros((4, 3)))
