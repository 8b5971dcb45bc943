"""Feature sets: detection cues beside a backbone's embeddings (prosody, codec reconstruction error, transcripts).

Each set is one module plus one line in ``registry.FEATURE_SETS``; ``cm embed --backbone NAME``
writes it in the embeddings table layout so probes, LOAO, CKA and ``cm train --features`` read it unchanged.
"""

from cm_cli.featuresets.registry import (
    FEATURE_SETS,
    FeatureBatch,
    FeatureSetSpec,
    feature_set_names,
    get_feature_set,
    is_feature_set,
)

__all__ = ["FEATURE_SETS", "FeatureBatch", "FeatureSetSpec", "feature_set_names", "get_feature_set", "is_feature_set"]
