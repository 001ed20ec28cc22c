"""Scoring models against retraining: the evaluation sets, a model's outputs on them, its scores against the
retrained model of the same seed, and the noise band the retrained models of several seeds span.

- forget-set, retain-set and test accuracy (SalUn's FA, RA, TA) on the forget set (the training images to
  forget), the retain set (the training images kept) and the test set, each a fixed stratified subsample of the
  size ``EVAL_SIZES`` gives the profile (full: 5,000 retain images and the whole of the other two; quick: 2,000 of
  each);
- membership inference, two views on a 0-1 scale (0.5 = the attack cannot tell): the MIA score
  (:func:`unlearnlab.mia.simple_mia`) and the threshold AUC (:func:`unlearnlab.mia.threshold_attack`), with
  members = the forget set and non-members = held-out test images of the same classes (class forgetting: the
  forget classes' test images; random: all);
- JS divergence and activation distance of a model's output distributions to the retrained model's, on the
  forget set;
- ToW (:func:`unlearnlab.metrics.tug_of_war`) against the retrained model's three accuracies;
- AIN (class forgetting only): relearning steps of the model over those of the retrained model.

**The noise floor.** The retrained models are scored against each other, every pair ``R_i, R_j`` (``i != j``),
and each metric's band is :func:`unlearnlab.metrics.retrained_band` of the retrained values: for an accuracy
widened by two binomial standard errors on its images, for the MIA score by
:func:`unlearnlab.mia.simple_mia_noise`, for the threshold AUC by two standard errors of
:func:`unlearnlab.mia.auc_noise`; both MIA bands are two-sided (below them the forget set has *higher* losses than
unseen images: over-forgetting); a distance's band starts at 0 and ToW's ends at 1.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import Profile, for_profile
from ..data import Splits, TensorData, concat, make_loader, per_class_subset, stratified_subset
from ..methods import anamnesis
from ..metrics import Band, activation_distance_probs, binomial_noise, js_divergence_probs, retrained_band, tug_of_war
from ..mia import auc_noise, simple_mia, simple_mia_noise, threshold_attack
from ..training import predict

SPLIT_SEED = 0  # the training subset and the random forget set: the same for every seed


@dataclass(frozen=True)
class EvalSizes:
    """Images scored per model from each set: a fixed stratified subsample (``None``: the whole set)."""

    forget: int | None
    retain: int | None
    test: int | None


# quick: ~7,000 images per model (a CPU scores one in ~6 s instead of ~17 s); full: the whole forget and test sets
EVAL_SIZES = {"quick": EvalSizes(2_000, 2_000, 2_000), "full": EvalSizes(None, 5_000, None)}
RELEARN_PER_CLASS = 30  # real images per class in the AIN relearning set (as notebook 04)
AIN_EVAL = 200  # forget-class test images the relearning probe watches (as notebook 04)
ACCURACIES = ("forget_acc", "retain_acc", "test_acc")
BANDED = ("forget_acc", "retain_acc", "test_acc", "mia", "auc", "js", "act_dist", "tow")  # metrics with a noise band
METRICS = (*BANDED, "ain", "seconds", "stored_bytes")
AUC_STANDARD_ERRORS = 2  # the threshold AUC's noise: two Hanley-McNeil standard errors (two, as for an accuracy)


@dataclass
class EvalSets:
    """The images every model is scored on (the same for every seed and method)."""

    forget: TensorData  # the training images to forget (members for the MIA)
    retain: TensorData  # a fixed subsample of the retained training images
    test: TensorData  # the test set (a fixed subsample in the quick profile)
    heldout: TensorData  # non-members of the forget set's classes (MIA)
    relearn: TensorData | None = None  # AIN: a few real images per class (None: no AIN)
    relearn_eval: TensorData | None = None  # AIN: forget-class test images

    @classmethod
    def from_splits(cls, splits: Splits, ain: bool, profile: Profile) -> EvalSets:
        """The evaluation sets of ``splits`` at ``profile``'s :data:`EVAL_SIZES`; ``ain`` adds the relearning
        probe's data (class forgetting only)."""
        sizes = for_profile(EVAL_SIZES, profile)
        forget, retain, test = (
            _subsample(data, size) for data, size in zip((splits.forget, splits.retain, splits.test), astuple(sizes))
        )
        # random forgetting's non-members are the test set itself: keep them the same images
        heldout = test if splits.test_forget is splits.test else splits.test_forget
        relearn = relearn_eval = None
        if ain:
            relearn = per_class_subset(concat(splits.forget, splits.retain), RELEARN_PER_CLASS, seed=SPLIT_SEED)
            relearn_eval = splits.test_forget.subset(slice(0, AIN_EVAL))
        return cls(forget, retain, test, heldout, relearn, relearn_eval)

    def sizes(self) -> dict[str, int]:
        """Images behind each accuracy."""
        return {"forget_acc": len(self.forget), "retain_acc": len(self.retain), "test_acc": len(self.test)}


def _subsample(data: TensorData, size: int | None) -> TensorData:
    """A fixed stratified subsample of ``size`` items (``data`` itself when ``size`` is None or not smaller)."""
    return data if size is None or len(data) <= size else stratified_subset(data, size, seed=SPLIT_SEED)


@dataclass
class Outputs:
    """A model's logits on the evaluation sets (each (N, C)), with the labels."""

    forget: tuple[torch.Tensor, torch.Tensor]
    retain: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    heldout: tuple[torch.Tensor, torch.Tensor]

    @classmethod
    def of(cls, model: nn.Module, sets: EvalSets, device: torch.device) -> Outputs:
        """Run ``model`` over every evaluation set once."""
        run = {name: predict(model, make_loader(getattr(sets, name)), device) for name in ("forget", "retain", "test")}
        heldout = run["test"] if sets.heldout is sets.test else predict(model, make_loader(sets.heldout), device)
        return cls(run["forget"], run["retain"], run["test"], heldout)

    def accuracies(self) -> tuple[float, float, float]:
        """(forget, retain, test) accuracy in [0, 1]."""
        return tuple(float((z.argmax(1) == y).float().mean()) for z, y in (self.forget, self.retain, self.test))


@dataclass
class Scores:
    """One model of one seed against the retrained model of the same seed."""

    forget_acc: float  # forget-set accuracy: on the training images to forget
    retain_acc: float  # retain-set accuracy: on the training images kept
    test_acc: float
    mia: float  # MIA score (simple_mia): 0.5 = the attacker cannot tell the forget set from held-out images
    auc: float  # threshold AUC: P(a forget image's loss < a held-out one's); below 0.5: higher losses than unseen
    js: float  # mean JS divergence (nats) to the retrained model's outputs on the forget set
    act_dist: float  # mean L2 distance between output probabilities, same images
    tow: float  # ToW against the retrained model
    ain: float | None = None  # anamnesis index (class forgetting with AIN on), else None
    ain_reached: bool | None = None  # False: the relearning probe hit its step limit (AIN is a lower bound)
    seconds: float = 0.0  # wall-clock seconds of unlearning
    stored_bytes: int = 0  # bytes stored for unlearning


def _losses(outputs: tuple[torch.Tensor, torch.Tensor]) -> np.ndarray:
    logits, y = outputs
    return F.cross_entropy(logits.double(), y, reduction="none").numpy()


def score(model_out: Outputs, reference_out: Outputs) -> Scores:
    """Accuracies, MIA, distances and ToW of a model's outputs against the retrained model's (same sets)."""
    accs = model_out.accuracies()
    p, q = model_out.forget[0].softmax(1), reference_out.forget[0].softmax(1)
    members, nonmembers = _losses(model_out.forget), _losses(model_out.heldout)
    return Scores(
        *accs,
        mia=simple_mia(members, nonmembers, seed=SPLIT_SEED),
        auc=threshold_attack(members, nonmembers).auc,
        js=float(js_divergence_probs(p, q).mean()),
        act_dist=float(activation_distance_probs(p, q).mean()),
        tow=tug_of_war(accs, reference_out.accuracies()),
    )


def noise_bands(retrained_out: Sequence[Outputs], sizes: Mapping[str, int]) -> dict[str, Band]:
    """The band of every banded metric from the retrained models' outputs (one per seed; none for one seed).

    ``sizes``: images behind each accuracy (for its binomial noise). The MIA score's noise is that of
    :func:`~unlearnlab.mia.simple_mia` on the smaller of the forget and held-out sets; the threshold AUC's is
    ``AUC_STANDARD_ERRORS`` standard errors of :func:`~unlearnlab.mia.auc_noise` on all of both.
    """
    if len(retrained_out) < 2:
        return {}
    accs = np.asarray([o.accuracies() for o in retrained_out])  # (seeds, 3)
    bands = {
        name: retrained_band(accs[:, k], binomial_noise(float(accs[:, k].mean()), sizes[name]))
        for k, name in enumerate(ACCURACIES)
    }
    n_members, n_nonmembers = len(retrained_out[0].forget[1]), len(retrained_out[0].heldout[1])
    own = [score(o, o) for o in retrained_out]
    bands["mia"] = retrained_band([s.mia for s in own], simple_mia_noise(min(n_members, n_nonmembers)))
    auc_margin = AUC_STANDARD_ERRORS * auc_noise(n_members, n_nonmembers)
    bands["auc"] = retrained_band([s.auc for s in own], auc_margin)
    pair_scores = retrained_pairs(retrained_out)
    bands["js"] = retrained_band([s.js for s in pair_scores], floor=0.0)
    bands["act_dist"] = retrained_band([s.act_dist for s in pair_scores], floor=0.0)
    bands["tow"] = retrained_band([s.tow for s in pair_scores], ceiling=1.0)
    return bands


def retrained_pairs(retrained_out: Sequence[Outputs]) -> list[Scores]:
    """Every retrained model scored against every other (ordered pairs: JS is symmetric, the MIA part is not)."""
    return [score(retrained_out[i], retrained_out[j]) for i, j in itertools.permutations(range(len(retrained_out)), 2)]


@dataclass
class Reference:
    """The retrained models of several seeds on one set of evaluation images, and the band they span."""

    sets: EvalSets
    outputs: list[Outputs]  # one per retrained seed; the first is what a model is scored against
    bands: dict[str, Band]

    @classmethod
    def of(cls, retrained: Sequence[nn.Module], splits: Splits, profile: Profile, device: torch.device) -> Reference:
        """Evaluate ``retrained`` (one model per seed) on the evaluation sets of ``splits`` at ``profile``'s sizes."""
        sets = EvalSets.from_splits(splits, ain=False, profile=profile)
        outputs = [Outputs.of(m, sets, device) for m in retrained]
        return cls(sets, outputs, noise_bands(outputs, sets.sizes()))

    def scores(self, model: nn.Module, device: torch.device) -> Scores:
        """``model`` scored against the first retrained model."""
        return score(Outputs.of(model, self.sets, device), self.outputs[0])


class SeedScorer:
    """Scores models of one seed against its retrained model (with the AIN probe when ``ain`` is given)."""

    def __init__(
        self,
        original: nn.Module,
        retrained: nn.Module,
        seed: int,
        sets: EvalSets,
        ain: anamnesis.RelearnConfig | None,
        device: torch.device,
    ) -> None:
        self.sets, self.seed, self.device = sets, seed, device
        self.reference = Outputs.of(retrained, sets, device)
        self.ain, self.gold, self.target = ain, None, 0.0
        if ain is not None:
            logits, y = predict(original, make_loader(sets.relearn_eval), device)
            self.target = ain.alpha * float((logits.argmax(1) == y).float().mean())
            self.gold = self._relearn(retrained)

    def _relearn(self, model: nn.Module) -> anamnesis.RelearnResult:
        s = self.sets
        return anamnesis.relearn(
            model, s.relearn, s.relearn_eval, self.target, self.ain, device=self.device, seed=self.seed
        )

    def scored(self, model: nn.Module, seconds: float, stored_bytes: int, outputs: Outputs | None = None) -> Scores:
        """``model``'s scores with its cost; AIN when the retrained model needed at least one relearning step.

        ``outputs``: the model's outputs when already computed (the retrained model's are the reference).
        """
        s = score(outputs or Outputs.of(model, self.sets, self.device), self.reference)
        s.seconds, s.stored_bytes = seconds, stored_bytes
        if self.gold is not None and self.gold.steps > 0:
            probe = self._relearn(model)
            s.ain, s.ain_reached = anamnesis.anamnesis_index(probe.steps, self.gold.steps), probe.reached
        return s
