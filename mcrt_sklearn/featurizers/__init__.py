"""matminer featurisers (numpy only, no torch): structure → features.

``SOAPFeaturizer`` needs the ``[baselines]`` extra (dscribe) and is imported on use.
"""

from mcrt_sklearn.featurizers.graph import MCRTFeaturizer
from mcrt_sklearn.featurizers.persistence import PersistenceImageFeaturizer
from mcrt_sklearn.featurizers.record import MCRTInput

__all__ = ["MCRTFeaturizer", "PersistenceImageFeaturizer", "SOAPFeaturizer", "MCRTInput"]


def __getattr__(name: str):
    if name == "SOAPFeaturizer":
        from mcrt_sklearn.featurizers.soap import SOAPFeaturizer

        return SOAPFeaturizer
    raise AttributeError(f"module 'mcrt_sklearn.featurizers' has no attribute {name!r}")
