"""Membership-inference attacks against hand computations, closed forms and scikit-learn called directly."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn import linear_model, metrics, model_selection, svm
from torch import nn

from unlearnlab import mia
from unlearnlab.data import TensorData


def _phi(x: float) -> float:
    """Standard normal CDF."""
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def _gaussians(m: int, shift: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Member "losses" N(0, 1) and non-member "losses" N(shift, 1), m of each."""
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 1.0, m), rng.normal(shift, 1.0, m)


def _kit_simple_mia(sample_loss, members, n_splits=10, random_state=0):
    """The NeurIPS 2023 starting kit's function, as published."""
    attack_model = linear_model.LogisticRegression()
    cv = model_selection.StratifiedShuffleSplit(n_splits=n_splits, random_state=random_state)
    return model_selection.cross_val_score(attack_model, sample_loss, members, cv=cv, scoring="accuracy")


def test_per_sample_losses_and_confidences_match_a_hand_computation():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 0, -1.0]]))
        model[1].bias.zero_()
    X = torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0, 1.0]]).view(3, 1, 2, 2)
    y = torch.tensor([0, 0, 2])
    data = TensorData(X, y)
    # logits: (1, 0, 0), (0, 2, 0), (0, 0, -1)
    expected = [
        -math.log(math.e / (math.e + 2)),
        -math.log(1 / (2 + math.e**2)),
        -math.log(math.exp(-1) / (2 + math.exp(-1))),
    ]
    np.testing.assert_allclose(mia.per_sample_losses(model, data, device="cpu"), expected, rtol=1e-12)
    np.testing.assert_allclose(mia.true_class_confidence(model, data, device="cpu"), np.exp(-np.array(expected)))


def test_simple_mia_is_the_starting_kit_on_the_balanced_set():
    member, nonmember = _gaussians(700, 0.8)
    member = member[:500]  # unequal sizes: the members are subsampled
    features, labels = mia.balanced_attack_set(member, nonmember, seed=3)
    rng = np.random.default_rng(3)  # the same draw by hand: the larger group (non-members) cut to 500
    kept = nonmember[rng.permutation(700)[:500]]
    np.testing.assert_array_equal(features[:, 0], np.concatenate([kept, member]))
    np.testing.assert_array_equal(labels, [0] * 500 + [1] * 500)
    kit = _kit_simple_mia(features, labels)
    assert len(kit) == 10
    assert mia.simple_mia(member, nonmember, seed=3) == pytest.approx(kit.mean(), abs=1e-12)
    np.testing.assert_allclose(mia.cross_validated_attack(features, labels), kit)


def test_separated_losses_give_one_and_a_known_gap_gives_the_bayes_accuracy():
    assert mia.simple_mia(np.full(50, 0.01), np.full(80, 3.0)) == 1.0
    assert mia.simple_mia(np.full(50, 3.0), np.full(80, 0.01)) == 1.0  # either direction is a signal
    # N(0, 1) vs N(1, 1): the best threshold (at 0.5) is right with probability Phi(0.5) = 0.6915.
    # 5,000 per group: each split tests 1,000 items, sd <= 0.5 / sqrt(1000) = 0.016; 3 sd = 0.047
    member, nonmember = _gaussians(5000, 1.0)
    assert mia.simple_mia(member, nonmember) == pytest.approx(_phi(0.5), abs=0.047)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_identical_distributions_score_one_half_within_the_stated_noise(seed):
    # Labels independent of losses: the expected test accuracy of any classifier is exactly 0.5. One split
    # tests ceil(0.2 m) = 2,000 items (m = 10,000), so its sd is at most 0.5 / sqrt(2000) = 0.0112, and the mean
    # of ten splits cannot vary more: 4 sd = 0.045 (a false alarm less than once in 15,000 runs).
    rng = np.random.default_rng(seed)
    losses = rng.exponential(0.3, 20_000)  # loss-like, skewed
    assert mia.simple_mia(losses[:10_000], losses[10_000:], seed=seed) == pytest.approx(
        0.5, abs=4 * 0.5 / math.sqrt(2000)
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: mia.simple_mia([], [1.0] * 20), "member set .forget set. is empty"),
        (lambda: mia.simple_mia([1.0] * 20, []), "non-member set .held-out images. is empty"),
        (lambda: mia.simple_mia([1.0, math.inf] * 10, [1.0] * 20), "non-finite"),
        (lambda: mia.simple_mia([1.0] * 5, [2.0] * 50), "5 items per group is too few"),
        (lambda: mia.cross_validated_attack(np.ones((20, 1)), np.ones(20, dtype=int)), "only members were given"),
        (lambda: mia.cross_validated_attack(np.ones((20, 1)), np.zeros(20, dtype=int)), "only non-members"),
        (lambda: mia.cross_validated_attack(np.ones((20, 1)), np.arange(20) % 3), "only 0 .non-member. and 1"),
        (lambda: mia.threshold_attack([], [1.0]), "member set .forget set. is empty"),
        (lambda: mia.mia_efficacy_from_confidences([0.9], [0.5], []), "forget set is empty"),
        (lambda: mia.mia_efficacy_from_confidences([], [0.5], [0.9]), "retain set .shadow members. is empty"),
    ],
)
def test_bad_input_gets_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_six_per_group_is_the_smallest_set_that_scores():
    assert mia.simple_mia(np.arange(6) * 0.01, 5 + np.arange(6) * 0.01) == 1.0


def test_mia_efficacy_is_salun_svc_on_the_confidence():
    rng = np.random.default_rng(0)
    retain = 1 - rng.exponential(0.01, 300).clip(max=0.5)  # members: confident
    test = rng.uniform(0.3, 1.0, 300)  # non-members: often unsure
    forget = np.concatenate([1 - rng.exponential(0.01, 50).clip(max=0.5), rng.uniform(0.3, 0.6, 50)])
    clf = svm.SVC(C=3, gamma="auto", kernel="rbf").fit(
        np.concatenate([retain, test])[:, None], np.r_[np.ones(300), np.zeros(300)]
    )
    expected = 1 - clf.predict(forget[:, None]).mean()
    assert mia.mia_efficacy_from_confidences(retain, test, forget) == pytest.approx(expected, abs=1e-12)
    # by hand: a confident half reads "member", the unsure half "non-member"
    assert expected == pytest.approx(0.5, abs=0.05)
    assert mia.mia_efficacy_from_confidences(retain, test, np.full(20, 0.999)) == 0.0
    assert mia.mia_efficacy_from_confidences(retain, test, np.full(20, 0.4)) == 1.0


def test_mia_efficacy_of_a_model_balances_retain_and_test_images():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    gen = torch.Generator().manual_seed(0)

    def random_data(n: int) -> TensorData:
        return TensorData(torch.randn(n, 1, 2, 2, generator=gen), torch.randint(0, 2, (n,), generator=gen))

    big, small, forget = random_data(40), random_data(10), random_data(7)
    pick = torch.randperm(40, generator=torch.Generator().manual_seed(5))[:10]  # the larger set, cut to 10
    for retain, test, members, nonmembers in (
        (big, small, big.subset(pick), small),
        (small, big, small, big.subset(pick)),
    ):
        conf = [mia.true_class_confidence(model, d, device="cpu") for d in (members, nonmembers, forget)]
        expected = mia.mia_efficacy_from_confidences(*conf)
        assert mia.mia_efficacy(model, retain, test, forget, device="cpu", seed=5) == expected
    with pytest.raises(ValueError, match="one set is empty"):
        mia.mia_efficacy(model, big.subset(torch.tensor([], dtype=torch.long)), small, forget, device="cpu")


def test_threshold_attack_by_hand():
    members, nonmembers = [0.1, 0.2, 0.9], [0.5, 1.0, 2.0]
    roc = mia.threshold_attack(members, nonmembers)
    # member loss below non-member loss in 3 + 3 + 2 of the 9 pairs
    assert roc.auc == pytest.approx(8 / 9)
    assert roc.tpr_at_low_fpr == pytest.approx(2 / 3)  # threshold 0.2: two members, no non-member
    assert roc.thresholds[0] == -np.inf and roc.tpr[0] == 0 and roc.fpr[0] == 0
    for threshold, tpr, fpr in zip(roc.thresholds, roc.tpr, roc.fpr):  # the curve is the slider's rates
        assert mia.attack_rates(members, nonmembers, threshold) == pytest.approx((tpr, fpr))
    assert mia.attack_rates(members, nonmembers, 0.5) == pytest.approx((2 / 3, 1 / 3))
    assert mia.threshold_attack([1.0, 1.0], [1.0, 1.0]).auc == 0.5  # ties count one half


def test_threshold_attack_matches_sklearn_and_the_gaussian_auc():
    member, nonmember = _gaussians(5000, 1.0, seed=1)
    assert mia.threshold_attack(member, nonmember).max_fpr == 0.001  # by default Carlini et al.'s 0.1 %
    roc = mia.threshold_attack(member, nonmember, max_fpr=0.01)
    labels = np.r_[np.ones(5000), np.zeros(5000)]
    scores = -np.r_[member, nonmember]
    assert roc.auc == pytest.approx(metrics.roc_auc_score(labels, scores), abs=1e-12)
    # AUC of N(0,1) below N(1,1) = Phi(1 / sqrt(2)) = 0.7602; its sd at 5,000 + 5,000 is about 0.005
    assert roc.auc == pytest.approx(_phi(1 / math.sqrt(2)), abs=0.02)
    fpr, tpr, _ = metrics.roc_curve(labels, scores)
    assert roc.tpr_at_low_fpr == pytest.approx(np.interp(0.01, fpr, tpr), abs=2e-3)
    # by hand: at 1 % FPR the threshold is the non-members' 1st percentile, 1 - 2.326; TPR = Phi(-1.326) = 0.092
    assert roc.tpr_at_low_fpr == pytest.approx(_phi(1 - 2.3263), abs=0.02)


def test_mia_score_of_a_model_reads_its_losses():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, 0, 0, 0], [-1.0, 0, 0, 0]]))
        model[1].bias.zero_()
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(200, 1, 2, 2, generator=gen)
    X[:, 0, 0, 0] = X[:, 0, 0, 0].abs() + 0.5  # the first pixel says class 0, confidently
    members = TensorData(X[:100], torch.zeros(100, dtype=torch.long))  # right label: small loss
    nonmembers = TensorData(X[100:], torch.ones(100, dtype=torch.long))  # wrong label: large loss
    assert mia.mia_score(model, members, nonmembers, device="cpu") == 1.0
    losses = F.cross_entropy(model(X[:100]), torch.zeros(100, dtype=torch.long), reduction="none")
    np.testing.assert_allclose(mia.per_sample_losses(model, members, device="cpu"), losses.detach().double(), atol=1e-6)


def test_losses_from_logits_by_hand_in_float64():
    logits = torch.tensor([[1.0, 0.0, 0.0], [0.0, 40.0, 0.0]])
    losses = mia.losses_from_logits(logits, torch.tensor([0, 1]))
    # the second item's loss, log(1 + 2 e^-40) = 8.5e-18, is 0 in float32 but not in float64
    assert losses.dtype == torch.float64 and losses[1].item() == pytest.approx(2 * math.exp(-40), rel=1e-9)
    assert losses[0].item() == pytest.approx(-math.log(math.e / (math.e + 2)), rel=1e-12)
    with pytest.raises(ValueError, match=r"expected logits \(N, C\) and labels \(N,\)"):
        mia.losses_from_logits(logits, torch.tensor([0]))


def test_membership_report_is_the_kit_attack_the_roc_auc_and_accuracies():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, 0, 0, 0], [-1.0, 0, 0, 0]]))
        model[1].bias.zero_()
    gen = torch.Generator().manual_seed(1)
    X = torch.randn(150, 1, 2, 2, generator=gen)
    y = (X[:, 0, 0, 0] < 0).long()  # the label the model predicts...
    y[::7] = 1 - y[::7]  # ...except for every seventh image
    forget, retain, test = TensorData(X[:40], y[:40]), TensorData(X[40:70], y[40:70]), TensorData(X[70:], y[70:])
    report = mia.membership_report(model, forget, retain, test, device="cpu", seed=3, draws=1)
    loss = {
        name: F.cross_entropy(model(d.X), d.y, reduction="none").detach().double().numpy()
        for name, d in (("forget", forget), ("test", test))
    }
    member, nonmember = loss["forget"], loss["test"][np.random.default_rng(3).permutation(80)[:40]]
    features = np.concatenate([nonmember, member]).reshape(-1, 1)
    labels = np.r_[np.zeros(40), np.ones(40)]
    assert report.simple_mia == pytest.approx(_kit_simple_mia(features, labels).mean())
    loss_f, loss_t = loss["forget"], loss["test"]
    mean = np.mean([mia.simple_mia(loss_f, loss_t, seed=k) for k in (3, 4, 5)])  # the default averages draws
    assert mia.membership_report(model, forget, retain, test, device="cpu", seed=3, draws=3).simple_mia == mean
    scores = -np.concatenate([loss["forget"], loss["test"]])
    assert report.auc == pytest.approx(metrics.roc_auc_score(np.r_[np.ones(40), np.zeros(80)], scores))
    for name, data in (("forget", forget), ("retain", retain), ("test", test)):
        expected = float((model(data.X).argmax(1) == data.y).double().mean())
        assert getattr(report, f"{name}_acc") == pytest.approx(expected)


def _simulated_auc_sd(m: int, n: int, shift: float, reps: int = 4_000) -> float:
    """The standard deviation of the threshold attack's AUC over ``reps`` draws of m member and n non-member
    "losses", N(0, 1) and N(shift, 1): what :func:`mia.auc_noise` predicts in closed form. The AUC of each draw is
    the Mann-Whitney count, P(member loss < non-member loss), computed for all draws at once."""
    rng = np.random.default_rng(0)
    member, nonmember = rng.normal(0.0, 1.0, (reps, m, 1)), rng.normal(shift, 1.0, (reps, 1, n))
    aucs = (member < nonmember).mean(axis=(1, 2))  # continuous scores: no ties
    return float(np.std(aucs, ddof=1))


@pytest.mark.parametrize(("m", "n", "shift"), [(40, 40, 0.0), (25, 400, 0.0), (60, 150, 0.8)])
def test_auc_noise_is_the_spread_of_the_auc_of_random_scores(m, n, shift):
    auc = _phi(shift / math.sqrt(2))  # P(member loss < non-member loss) for the two Gaussians
    # Hanley and McNeil's formula assumes exponential scores; for Gaussians it is within a few percent, and 4,000
    # draws estimate a standard deviation to about 2 %
    assert mia.auc_noise(m, n, auc) == pytest.approx(_simulated_auc_sd(m, n, shift), rel=0.12)


def test_auc_noise_by_hand_and_its_errors():
    # at A = 0.5, Q1 = Q2 = 1/3: SE^2 = (1/4 + (m - 1)/12 + (n - 1)/12) / (m n)
    assert mia.auc_noise(400, 10_000) == pytest.approx(math.sqrt((0.25 + 399 / 12 + 9_999 / 12) / 4e6))
    assert 0.014 < mia.auc_noise(400, 10_000) < 0.016
    assert mia.auc_noise(400, 10_000, 0.9) < mia.auc_noise(400, 10_000)  # a sure attack varies less
    with pytest.raises(ValueError, match="needs members and non-members"):
        mia.auc_noise(0, 10)
    with pytest.raises(ValueError, match="lies in"):
        mia.auc_noise(10, 10, 1.5)


def test_model_losses_are_eval_mode_float64_and_independent_of_the_batch():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.BatchNorm1d(3))
    model[2].running_mean.fill_(0.5)  # running statistics unlike any batch's: train mode would show
    images, labels = 3 * torch.randn(10, 1, 2, 2), torch.randint(0, 3, (10,))
    kept = images.clone()
    model.train()
    losses = mia.model_losses(model, images, labels, batch_size=3)
    assert losses.dtype == torch.float64 and losses.shape == (10,) and not losses.requires_grad
    assert (
        not model.training and torch.equal(images, kept) and torch.equal(model[2].running_mean, torch.full((3,), 0.5))
    )
    with torch.no_grad():
        by_hand = F.cross_entropy(model(images).double(), labels, reduction="none")  # eval mode: one batch
    assert torch.allclose(losses, by_hand, rtol=1e-6)
    assert torch.allclose(mia.model_losses(model, images, labels, batch_size=10), losses, rtol=1e-6)
