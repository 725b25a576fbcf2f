"""scikit-learn / skorch faces of MCRT."""

from mcrt_sklearn.estimators.classifier import MCRTClassifier
from mcrt_sklearn.estimators.encoder import MCRTEncoder
from mcrt_sklearn.estimators.pretrain import MCRTPretrainer
from mcrt_sklearn.estimators.regressor import MCRTRegressor

__all__ = ["MCRTEncoder", "MCRTRegressor", "MCRTClassifier", "MCRTPretrainer"]
