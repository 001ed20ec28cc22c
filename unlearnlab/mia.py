"""Membership inference: can an attacker tell the images a model was trained on from unseen ones? (notebook 06)

Three attacks, all on per-sample signals of the model (DESIGN.md section 8):

- :func:`simple_mia`, the NeurIPS 2023 unlearning challenge's starting kit: per-sample cross-entropy losses of
  members (the forget set) and non-members (held-out images of the same classes), sizes balanced by
  subsampling the larger group (the kit itself only cuts the forget set, so it balances only when the forget
  set is the larger), a logistic regression on the loss scored over ``StratifiedShuffleSplit(n_splits=10,
  random_state=0)``; the mean accuracy. 0.5 means the attacker guesses; success for unlearning is the
  retrained model's score, not 0.
- :func:`mia_efficacy`, Jia et al. (2023) / SalUn: an SVC on the true-class confidence, trained on retain
  (member) vs test (non-member) images, then asked about the forget set; the share it calls "non-member".
- :func:`threshold_attack`: call an image a member when its loss is at most a threshold; sweeping the
  threshold gives the ROC curve, its AUC and the TPR at a low FPR (0.1 %, the lowest of the points Carlini et
  al., 2022, "Membership Inference Attacks From First Principles", report). :func:`attack_rates` is one threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn import linear_model, metrics, model_selection, svm
from torch import nn

from .data import TensorData, make_loader
from .training import Batches, predict

N_SPLITS = 10  # the starting kit's StratifiedShuffleSplit: 10 random splits, 10 % held out each time
TEST_SIZE = 0.1  # scikit-learn's default for StratifiedShuffleSplit, which the starting kit uses


def _batches(data: TensorData | Batches) -> Batches:
    return make_loader(data) if isinstance(data, TensorData) else data


def losses_from_logits(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of every item, l_i = -log softmax(z_i)[y_i], in float64; shape (N,). Inputs are not changed."""
    if logits.ndim != 2 or y.shape != logits.shape[:1]:
        raise ValueError(f"expected logits (N, C) and labels (N,), got {tuple(logits.shape)} and {tuple(y.shape)}")
    return F.cross_entropy(logits.double(), y, reduction="none")


def model_losses(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """``model``'s cross-entropy on every image, l_i = -log softmax(f(x_i))[y_i], in float64; shape (N,).

    The model runs in eval mode (BatchNorm normalises with its running statistics, not the batch's; dropout is
    off), without gradients, ``batch_size`` images at a time on the model's device: each loss depends on its own
    image alone, whatever the batch. The model is left in eval mode; the inputs are not changed.
    """
    device = next(model.parameters()).device
    logits, y = predict(model, make_loader(TensorData(images, labels), batch_size), device)
    return losses_from_logits(logits, y)


def per_sample_losses(model: nn.Module, data: TensorData | Batches, device: torch.device | str = "cpu") -> np.ndarray:
    """Cross-entropy of every item, l_i = -log softmax(z_i)[y_i]; shape (N,), in data order."""
    logits, y = predict(model, _batches(data), device)  # (N, C), (N,)
    return losses_from_logits(logits, y).numpy()


def true_class_confidence(
    model: nn.Module, data: TensorData | Batches, device: torch.device | str = "cpu"
) -> np.ndarray:
    """The probability the model gives each item's true class, softmax(z_i)[y_i]; shape (N,)."""
    logits, y = predict(model, _batches(data), device)
    return F.softmax(logits.double(), dim=1).gather(1, y[:, None]).squeeze(1).numpy()


def _as_scores(values: object, what: str) -> np.ndarray:
    """A 1-D float array of finite values, or a clear error."""
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if array.size == 0:
        raise ValueError(f"the {what} is empty: the attack needs at least one item in it")
    if not np.isfinite(array).all():
        raise ValueError(f"the {what} has non-finite values (inf or NaN losses): check the model's outputs")
    return array


def cross_validated_attack(
    features: np.ndarray, members: np.ndarray, n_splits: int = N_SPLITS, random_state: int = 0
) -> np.ndarray:
    """The starting kit's attack: accuracy of a logistic regression on each ``StratifiedShuffleSplit`` split.

    ``features`` (N, F), ``members`` (N,) of 0 (non-member) and 1 (member); returns (n_splits,) accuracies.
    """
    members = np.asarray(members)
    labels = np.unique(members)
    if not set(labels.tolist()) <= {0, 1}:
        raise ValueError(f"members must hold only 0 (non-member) and 1 (member), got {labels.tolist()}")
    if len(labels) < 2:
        raise ValueError(
            f"only {'members' if labels.tolist() == [1] else 'non-members'} were given: the attack needs both"
        )
    cv = model_selection.StratifiedShuffleSplit(n_splits=n_splits, test_size=TEST_SIZE, random_state=random_state)
    attack = linear_model.LogisticRegression()
    return model_selection.cross_val_score(attack, features, members, cv=cv, scoring="accuracy")


def balanced_attack_set(
    member_losses: np.ndarray, nonmember_losses: np.ndarray, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Features (2m, 1) and labels (2m,): non-members (0) then members (1), the larger group cut to m at random.

    The starting kit shuffles the forget losses and keeps as many as there are test losses; here whichever
    group is larger is subsampled, with ``numpy.random.default_rng(seed)``.
    """
    member = _as_scores(member_losses, "member set (forget set)")
    nonmember = _as_scores(nonmember_losses, "non-member set (held-out images)")
    m = min(len(member), len(nonmember))
    # each split holds out ceil(10 % of 2m) items and must hold out at least one of each group
    if math.ceil(TEST_SIZE * 2 * m) < 2:
        raise ValueError(
            f"{m} items per group is too few: each of the {N_SPLITS} splits holds out 10 % of the 2m items and "
            "needs one member and one non-member among them; give at least 6 of each"
        )
    rng = np.random.default_rng(seed)
    member = member[rng.permutation(len(member))[:m]] if len(member) > m else member
    nonmember = nonmember[rng.permutation(len(nonmember))[:m]] if len(nonmember) > m else nonmember
    features = np.concatenate([nonmember, member]).reshape(-1, 1)
    labels = np.concatenate([np.zeros(m, dtype=int), np.ones(m, dtype=int)])
    return features, labels


def simple_mia(
    member_losses: np.ndarray,
    nonmember_losses: np.ndarray,
    *,
    seed: int = 0,
    n_splits: int = N_SPLITS,
    random_state: int = 0,
) -> float:
    """The starting kit's MIA score: mean cross-validated accuracy of a logistic regression on the loss.

    Sizes are balanced first (``seed`` picks the subsample), so 0.5 is chance: on identical loss
    distributions the expected score is exactly 0.5, with a standard deviation of at most
    0.5 / sqrt(ceil(0.2 m)) for m items per group (one split's; the mean of ten cannot vary more).
    """
    features, labels = balanced_attack_set(member_losses, nonmember_losses, seed)
    return float(cross_validated_attack(features, labels, n_splits, random_state).mean())


def simple_mia_noise(m: int) -> float:
    """How far :func:`simple_mia` can stray from its expectation by chance on ``m`` items per group: at most
    ``0.5 / sqrt(ceil(0.2 m))``, one split's standard deviation (the mean of ten splits cannot vary more)."""
    return 0.5 / math.sqrt(math.ceil(2 * TEST_SIZE * m))


def auc_noise(n_members: int, n_nonmembers: int, auc: float = 0.5) -> float:
    """The standard error of a ROC AUC measured on ``n_members`` and ``n_nonmembers`` items (Hanley and McNeil,
    1982, "The meaning and use of the area under a ROC curve", eq. 2), at the true AUC ``auc``.

    With ``Q1 = A / (2 - A)`` and ``Q2 = 2A^2 / (1 + A)``:
    ``SE^2 = [A(1 - A) + (n_m - 1)(Q1 - A^2) + (n_n - 1)(Q2 - A^2)] / (n_m n_n)``. At A = 0.5 with 400 members
    and 10,000 non-members it is about 0.015: the threshold AUC's counterpart of :func:`simple_mia_noise`.
    """
    if n_members < 1 or n_nonmembers < 1:
        raise ValueError(f"an AUC needs members and non-members, got {n_members} and {n_nonmembers}")
    if not 0.0 <= auc <= 1.0:
        raise ValueError(f"an AUC lies in [0, 1], got {auc}")
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = auc * (1 - auc) + (n_members - 1) * (q1 - auc**2) + (n_nonmembers - 1) * (q2 - auc**2)
    return math.sqrt(max(variance, 0.0) / (n_members * n_nonmembers))


def mia_score(
    model: nn.Module,
    members: TensorData | Batches,
    nonmembers: TensorData | Batches,
    *,
    device: torch.device | str = "cpu",
    seed: int = 0,
) -> float:
    """:func:`simple_mia` on ``model``'s losses: members = the forget set, non-members = held-out images."""
    return simple_mia(
        per_sample_losses(model, members, device), per_sample_losses(model, nonmembers, device), seed=seed
    )


def mia_efficacy_from_confidences(
    retain_confidence: np.ndarray, test_confidence: np.ndarray, forget_confidence: np.ndarray
) -> float:
    """SalUn's ``SVC_MIA`` forget efficacy on the "confidence" feature: the share of the forget set called non-member.

    An RBF SVC (C=3, gamma="auto", as SalUn) learns member (retain, label 1) vs non-member (test, label 0)
    from the true-class confidence; efficacy = 1 - mean(prediction on the forget set). Higher = more forgotten.
    """
    retain = _as_scores(retain_confidence, "retain set (shadow members)")
    test = _as_scores(test_confidence, "test set (shadow non-members)")
    forget = _as_scores(forget_confidence, "forget set")
    X = np.concatenate([retain, test]).reshape(-1, 1)
    Y = np.concatenate([np.ones(len(retain)), np.zeros(len(test))])
    attack = svm.SVC(C=3, gamma="auto", kernel="rbf").fit(X, Y)
    return float(1 - attack.predict(forget.reshape(-1, 1)).mean())


def mia_efficacy(
    model: nn.Module,
    retain: TensorData,
    test: TensorData,
    forget: TensorData,
    *,
    device: torch.device | str = "cpu",
    seed: int = 0,
) -> float:
    """MIA-efficacy of Jia et al. (2023) / SalUn on ``model``: the share of ``forget`` judged non-member.

    The SVC learns from as many shadow members (retain images) as shadow non-members (test images): SalUn takes
    the first ``len(test)`` retain images (its retain set is the larger); here the larger set is cut to the
    smaller one's size at random (``seed``), so an unbalanced pair cannot teach the SVC to answer the majority.
    """
    if len(retain) == 0 or len(test) == 0:
        raise ValueError("MIA-efficacy needs retain images (members) and test images (non-members): one set is empty")
    gen = torch.Generator().manual_seed(seed)
    m = min(len(retain), len(test))
    retain = retain.subset(torch.randperm(len(retain), generator=gen)[:m]) if len(retain) > m else retain
    test = test.subset(torch.randperm(len(test), generator=gen)[:m]) if len(test) > m else test
    return mia_efficacy_from_confidences(
        true_class_confidence(model, retain, device),
        true_class_confidence(model, test, device),
        true_class_confidence(model, forget, device),
    )


@dataclass(frozen=True)
class ThresholdAttack:
    """The loss-threshold attack over every threshold: "member" when loss <= threshold."""

    fpr: np.ndarray  # (T,) share of non-members called members, increasing
    tpr: np.ndarray  # (T,) share of members called members
    thresholds: np.ndarray  # (T,) the loss threshold of each point (the first, -inf, calls nobody a member)
    auc: float  # area under the ROC curve: P(a random member's loss < a random non-member's), ties count 1/2
    tpr_at_low_fpr: float  # the best TPR with FPR <= max_fpr (Carlini et al.'s low-FPR view)
    max_fpr: float


def threshold_attack(
    member_losses: np.ndarray, nonmember_losses: np.ndarray, max_fpr: float = 0.001
) -> ThresholdAttack:
    """ROC curve, AUC and TPR at ``max_fpr`` of the loss-threshold attack (no training, no balancing needed)."""
    member = _as_scores(member_losses, "member set (forget set)")
    nonmember = _as_scores(nonmember_losses, "non-member set (held-out images)")
    labels = np.concatenate([np.ones(len(member)), np.zeros(len(nonmember))])
    scores = -np.concatenate([member, nonmember])  # a lower loss is more member-like
    fpr, tpr, thresholds = metrics.roc_curve(labels, scores, drop_intermediate=False)
    auc = float(metrics.roc_auc_score(labels, scores))
    return ThresholdAttack(fpr, tpr, -thresholds, auc, float(tpr[fpr <= max_fpr].max()), max_fpr)


def attack_rates(member_losses: np.ndarray, nonmember_losses: np.ndarray, threshold: float) -> tuple[float, float]:
    """``(tpr, fpr)`` of calling "member" every item whose loss is at most ``threshold`` (the widget's slider)."""
    member = _as_scores(member_losses, "member set (forget set)")
    nonmember = _as_scores(nonmember_losses, "non-member set (held-out images)")
    return float((member <= threshold).mean()), float((nonmember <= threshold).mean())


@dataclass(frozen=True)
class MembershipReport:
    """What notebook 06 measures of one model: the attacks on its forget set and its accuracies (in [0, 1])."""

    simple_mia: float  # the starting kit's score, forget set (members) vs test set (non-members), mean over draws
    auc: float  # the loss-threshold attack's ROC AUC on the same two sets (all items, no balancing)
    retain_acc: float
    forget_acc: float
    test_acc: float


def membership_report(
    model: nn.Module,
    forget: TensorData,
    retain: TensorData,
    test: TensorData,
    *,
    device: torch.device | str = "cpu",
    seed: int = 0,
    draws: int = 5,
) -> MembershipReport:
    """:func:`simple_mia` and the threshold AUC with ``forget`` as members and ``test`` as non-members, and the
    accuracy on each set.

    ``simple_mia`` is the mean of the kit's score over ``draws`` balancing subsamples of the non-members (seeds
    ``seed``, ``seed + 1``, ...): with 400 members and 10,000 test images, which 400 test images the kit happens
    to draw moves one score by about 0.01-0.02; the mean keeps that draw from deciding a comparison.
    """
    if draws < 1:
        raise ValueError(f"draws must be at least 1, got {draws}")
    logits = {
        name: predict(model, make_loader(data), device)
        for name, data in (("forget", forget), ("retain", retain), ("test", test))
    }
    member = losses_from_logits(*logits["forget"]).numpy()
    nonmember = losses_from_logits(*logits["test"]).numpy()
    accuracy = {name: float((z.argmax(1) == y).double().mean()) for name, (z, y) in logits.items()}
    return MembershipReport(
        float(np.mean([simple_mia(member, nonmember, seed=seed + k) for k in range(draws)])),
        threshold_attack(member, nonmember).auc,
        accuracy["retain"],
        accuracy["forget"],
        accuracy["test"],
    )
