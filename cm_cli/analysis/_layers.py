"""Load one embedding layer at a time and line it up with manifest rows.

Every analysis reads layers of an ``embeddings.parquet`` (or a directory of parts)
through ``cm embed``'s one reader (``cm_cli.embedding.store.read_layer``) and joins
them to a manifest by ``utt_id`` here. Doing it in one place keeps the checks
identical across ``loao``, ``probe`` and ``cka``: unknown layers, ids that do not
match, and non-finite rows (dropped and counted) all fail or report the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from cm_cli.core.errors import CmError
from cm_cli.embedding.store import LayerData, layer_column, read_layer, read_utt_ids

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

__all__ = ["LayerData", "Aligned", "embedding_layers", "resolve_layers", "read_utt_ids", "read_layer", "align_rows"]


@dataclass
class Aligned:
    """Manifest rows and the positions of their embedding rows, in manifest order."""

    manifest: "pd.DataFrame"
    index: "np.ndarray"  # positions into LayerData rows
    n_embeddings_only: int = 0
    n_manifest_only: int = 0
    notes: list[str] = field(default_factory=list)


def embedding_layers(path: str | Path) -> list[str]:
    """Names of the vector columns of an embeddings artifact, in file order (``cm embed``'s reader)."""
    from cm_cli.embedding.store import list_layers

    layers = list_layers(path)
    if not layers:
        raise CmError(
            f"{path}: no vector (list) columns besides utt_id", "expected layer_00 … layer_NN columns from `cm embed`"
        )
    return layers


def resolve_layers(path: str | Path, layers: str | int | Sequence[str | int] | None = None) -> list[str]:
    """``None``/``"all"`` -> every layer; ``6`` or ``"layer_06"`` or ``"0,6,pooled"`` -> those names."""
    available = embedding_layers(path)
    if layers is None or (isinstance(layers, str) and layers.strip().lower() in ("", "all")):
        return available
    if isinstance(layers, (str, int)):
        items = [x for x in str(layers).split(",") if x.strip()]
    else:
        items = list(layers)
    names: list[str] = []
    for item in items:
        name = layer_column(item, available)
        if name not in names:
            names.append(name)
    return names


def align_rows(
    utt_ids: "np.ndarray", manifest: "pd.DataFrame", *, source: str = "embeddings", manifest_source: str = "manifest"
) -> Aligned:
    """Inner-join embedding rows to manifest rows by ``utt_id``; an empty join is an error."""
    import numpy as np

    position = {u: i for i, u in enumerate(utt_ids.tolist())}
    ids = manifest["utt_id"].astype(str).tolist()
    keep = np.fromiter((u in position for u in ids), dtype=bool, count=len(ids))
    if not keep.any():
        emb_ex = ", ".join(map(str, utt_ids[:3]))
        man_ex = ", ".join(ids[:3])
        raise CmError(
            f"{source} and {manifest_source} share no utt_id "
            f"({len(utt_ids)} embedded, e.g. {emb_ex}; {len(ids)} in the manifest, e.g. {man_ex})",
            "embed the utterances of this manifest (and split), or pass the manifest used by `cm embed`",
        )
    rows = manifest.loc[keep].reset_index(drop=True)
    index = np.array([position[u] for u in rows["utt_id"].astype(str)], dtype=np.int64)
    aligned = Aligned(
        manifest=rows, index=index, n_embeddings_only=len(utt_ids) - len(index), n_manifest_only=int((~keep).sum())
    )
    if aligned.n_embeddings_only:
        aligned.notes.append(f"{aligned.n_embeddings_only} embedded utterance(s) are not in the manifest (ignored)")
    if aligned.n_manifest_only:
        aligned.notes.append(f"{aligned.n_manifest_only} manifest row(s) have no embedding (ignored)")
    return aligned
