"""Layer-wise embeddings: ``extract`` runs a model over a manifest (``cm embed``); ``store`` writes and reads tables."""

from cm_cli.embedding.extract import (
    POOLINGS,
    EmbedModel,
    EmbedResult,
    embed_manifest,
    parse_layers,
    resolve_embed_model,
)
from cm_cli.embedding.store import (
    FLOAT16_MAX,
    EmbeddingWriter,
    LayerData,
    embedding_files,
    layer_column,
    list_layers,
    load_layer,
    read_layer,
    read_layers,
    read_utt_ids,
)
from cm_cli.embedding.store import EmbeddingWriter as _Writer  # noqa: F401  (the writer embed_manifest uses)

__all__ = [
    "POOLINGS",
    "FLOAT16_MAX",
    "EmbedModel",
    "EmbedResult",
    "EmbeddingWriter",
    "LayerData",
    "embed_manifest",
    "parse_layers",
    "resolve_embed_model",
    "embedding_files",
    "layer_column",
    "list_layers",
    "load_layer",
    "read_layer",
    "read_layers",
    "read_utt_ids",
]
