"""Classification metrics of the FMC-UIA challenge (scikit-learn definitions).

For ``N`` images with labels ``y`` and class probabilities ``P`` (N, C), ``ŷ = argmax P``:

* ``accuracy``    = mean(ŷ == y);
* ``f1_macro``    = unweighted mean of per-class F1 over the labels present in ``y`` or ``ŷ``
  (``sklearn.metrics.f1_score(average="macro", zero_division=0)``, no ``labels=``, as the official code);
* ``f1_weighted`` = per-class F1 weighted by the class's support in ``y``;
* ``mcc``         = ``sklearn.metrics.matthews_corrcoef(y, ŷ)`` (0.0 where undefined, sklearn's rule);
* ``auc``         = binary (C == 2): ROC AUC of ``P[:, 1]``; multiclass: macro mean of one-vs-rest ROC AUCs
  (``roc_auc_score(multi_class="ovr", average="macro")``).

Probabilities are renormalised to sum to 1 per row before use (a zero row becomes uniform).

AUC edge cases. Two definitions, chosen by ``auc=`` (``usedge eval --auc``); they agree whenever every
class occurs in ``y``:

* ``official`` (the default): the official evaluator's call, ``roc_auc_score(y, P[:, 1])`` (C == 2) or
  ``roc_auc_score(y, P, average="macro", multi_class="ovr")``, with its ``try``: wherever scikit-learn
  cannot compute it (a split with one class; a multiclass split missing a class) the AUC is **0.0**. The
  baseline pins scikit-learn 1.2.2, which raises in both cases; newer releases return NaN for the binary
  case instead, so NaN is read as "could not compute" too and becomes 0.0 — the number the challenge reports.
* ``defined`` (usedge's variant, labelled as such wherever it is shown): fewer than two classes present →
  NaN (undefined, left out of the per-kind averages); a multiclass split missing classes → the macro mean
  of the one-vs-rest AUCs of the classes that are present (each is defined), with a warning.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from usedge.errors import ConfigError, DataError, require


def _sk_metrics():
    return require("sklearn.metrics", "train", "classification metrics")


def normalise_probs(probs: np.ndarray) -> np.ndarray:
    """Rows of non-negative scores (N, C) scaled to sum to 1; all-zero rows become uniform.

    Raises:
        DataError: not 2-D, non-finite or negative values (logits must go through softmax first).
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise DataError(f"class probabilities must have shape (N, C>=2), got {p.shape}.")
    if not np.isfinite(p).all() or (p < 0).any():
        raise DataError("class probabilities must be finite and non-negative.",
                        fix="apply softmax to logits before evaluating")
    total = p.sum(axis=1, keepdims=True)
    return np.where(total > 0, p / np.where(total > 0, total, 1.0), 1.0 / p.shape[1])


def _check_labels(y_true: np.ndarray, num_classes: int) -> np.ndarray:
    y = np.asarray(y_true)
    whole = y.size == 0 or np.issubdtype(y.dtype, np.integer) or bool(np.all(np.mod(y, 1) == 0))
    if y.ndim != 1 or not whole:
        raise DataError(f"labels must be a 1-D array of class indices, got {y.dtype} shape {y.shape}.")
    y = y.astype(np.intp)
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise DataError(f"labels must lie in [0, {num_classes}), got {y.min()}..{y.max()}.")
    return y


#: ``official`` (the challenge's numbers) and ``defined`` (usedge's variant); see the module docstring.
AUC_MODES = ("official", "defined")


class UndefinedAUCWarning(UserWarning):
    """An AUC that scikit-learn cannot compute (0.0 officially, NaN in usedge's variant). Reports name the
    tasks concerned; jobs that do not show AUC (export gate, training validation) silence this category."""


def auc_computable(y_true, num_classes: int) -> bool:
    """Whether the official AUC call can be computed: both classes (binary) or every class (multiclass)
    present in the labels."""
    present = np.unique(np.asarray(y_true)).size
    return present >= 2 if num_classes == 2 else present == num_classes


def roc_auc(y_true: np.ndarray, probs: np.ndarray, mode: str = "official") -> float:
    """ROC AUC by ``mode`` (:data:`AUC_MODES`), as defined in the module docstring."""
    if mode not in AUC_MODES:
        raise ConfigError(f"unknown AUC definition {mode!r}.", fix=f"use one of: {', '.join(AUC_MODES)}")
    p = normalise_probs(probs)
    y = _check_labels(y_true, p.shape[1])
    return _official_auc(y, p) if mode == "official" else _defined_auc(y, p)


def _official_auc(y: np.ndarray, p: np.ndarray) -> float:
    metrics = _sk_metrics()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scikit-learn >= 1.6 warns and returns NaN where 1.2.2 raised
            if p.shape[1] == 2:
                auc = float(metrics.roc_auc_score(y, p[:, 1]))
            else:
                auc = float(metrics.roc_auc_score(y, p, average="macro", multi_class="ovr"))
    except ValueError:
        auc = float("nan")
    if math.isfinite(auc):
        return auc
    warnings.warn(f"AUC cannot be computed with classes {np.unique(y).tolist()} of {p.shape[1]} present: 0.0, "
                  "as the official evaluator reports it (usedge eval --auc defined: usedge's variant).",
                  UndefinedAUCWarning, stacklevel=3)
    return 0.0


def _defined_auc(y: np.ndarray, p: np.ndarray) -> float:
    present = np.unique(y)
    if present.size < 2:
        warnings.warn(f"AUC undefined: only class(es) {present.tolist()} present in y_true; reporting NaN.",
                      UndefinedAUCWarning, stacklevel=3)
        return float("nan")
    metrics = _sk_metrics()
    if p.shape[1] == 2:
        return float(metrics.roc_auc_score(y == 1, p[:, 1]))
    if present.size < p.shape[1]:
        absent = sorted(set(range(p.shape[1])) - set(present.tolist()))
        warnings.warn(f"classes {absent} absent from y_true: AUC is the one-vs-rest macro mean over the "
                      f"{present.size} present classes.", UndefinedAUCWarning, stacklevel=3)
    return float(np.mean([metrics.roc_auc_score(y == c, p[:, c]) for c in present]))


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, auc: str = "official") -> dict[str, float]:
    """accuracy, f1_macro, f1_weighted, auc (by definition ``auc``, see :data:`AUC_MODES`), mcc and n for
    labels (N,) and probabilities (N, C).

    With no samples every metric is NaN and ``n`` is 0.
    """
    nan = float("nan")
    if len(y_true) == 0:
        return {"accuracy": nan, "f1_macro": nan, "f1_weighted": nan, "auc": nan, "mcc": nan, "n": 0}
    p = normalise_probs(probs)
    if len(p) != len(y_true):
        raise DataError(f"{len(y_true)} labels but {len(p)} probability rows.")
    y = _check_labels(y_true, p.shape[1])
    metrics = _sk_metrics()
    pred = p.argmax(axis=1)
    return {
        "accuracy": float(np.mean(pred == y)),
        "f1_macro": float(metrics.f1_score(y, pred, average="macro", zero_division=0)),
        "f1_weighted": float(metrics.f1_score(y, pred, average="weighted", zero_division=0)),
        "auc": roc_auc(y, p, auc),
        "mcc": float(metrics.matthews_corrcoef(y, pred)),
        "n": int(y.size),
    }
