"""Fine-tuning MCRT for a class label: :class:`MCRTClassifier` (the shared training is
in :mod:`mcrt_sklearn.estimators.finetune`)."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.validation import check_is_fitted
from torch import nn

from mcrt_sklearn.estimators.finetune import _MCRTFineTuner

__all__ = ["MCRTClassifier"]


class _BinaryOrMultiLoss(nn.Module):
    """BCE-with-logits for two classes (one logit), cross-entropy otherwise."""

    def __init__(self, n_classes: int = 2):
        super().__init__()
        self.n_classes = n_classes

    def forward(self, logits, target):
        if self.n_classes == 2:
            return nn.functional.binary_cross_entropy_with_logits(logits, target.float())
        return nn.functional.cross_entropy(logits, target.long())


class MCRTClassifier(ClassifierMixin, _MCRTFineTuner):
    """Fine-tune MCRT for a class label (e.g. packing class, polymorph found or not).

    Same parameters as :class:`MCRTRegressor`. Two classes use one logit with
    binary cross-entropy; more use a softmax head.

    Attributes
    ----------
    classes_ : ndarray
        The class labels.
    elements_seen_ : tuple of str
        The elements of the training records; ``predict`` and ``predict_proba`` warn
        (:class:`~mcrt_sklearn.domain.UnseenElementWarning`) for records with others.
    """

    _task = "classification"

    def _encode_targets(self, y) -> np.ndarray:
        self._encoder = LabelEncoder().fit(np.asarray(y).ravel())
        self.classes_ = self._encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError("MCRTClassifier needs at least two classes in y")
        return self._encoder.transform(np.asarray(y).ravel()).astype(np.int64)

    def _n_classes(self) -> int:
        return len(self.classes_)

    def _criterion(self):
        return _BinaryOrMultiLoss

    def _make_net(self, network, n_train, train_split):
        net = super()._make_net(network, n_train, train_split)
        net.set_params(criterion__n_classes=len(self.classes_))
        return net

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape (n, n_classes)."""
        logits = torch.as_tensor(self._raw_predict(X))
        if len(self.classes_) == 2:
            p1 = torch.sigmoid(logits.reshape(-1))
            return torch.stack([1 - p1, p1], dim=1).numpy()
        return torch.softmax(logits, dim=1).numpy()

    def predict(self, X) -> np.ndarray:
        """Most probable class of each record."""
        check_is_fitted(self, "net_")  # a NotFittedError, not an AttributeError on classes_
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def _fitted_state(self) -> dict:
        return {"classes": self.classes_.tolist()}

    def _set_fitted_state(self, state: dict) -> None:
        self.classes_ = np.asarray(state["classes"])
