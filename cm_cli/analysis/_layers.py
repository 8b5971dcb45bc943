"""Load one embedding layer at a time and line it up with manifest rows.

Every analysis reads layers of an ``embeddings.parquet`` (or a directory of parts)
and joins them to a manifest by ``utt_id``. Doing it in one place keeps the checks
identical across ``loao``, ``probe`` and ``cka``: unknown layers, ids that do not
match, and non-finite rows (dropped and counted) all fail or report the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from cm_cli.core.errors import CmError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

__all__ = ["LayerData", "Aligned", "embedding_layers", "resolve_layers", "read_utt_ids", "read_layer", "align_rows"]

_LAYER_RE = re.compile(r"^layer_(\d+)$")


@dataclass
class LayerData:
    """One layer: ``X`` float32 of shape (N, D), row ``i`` belongs to ``utt_ids[i]``."""

    layer: str
    utt_ids: "np.ndarray"
    X: "np.ndarray"
    n_nonfinite: int = 0  # rows dropped because they held NaN or inf


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
    from cm_cli.embedding import list_layers

    layers = list_layers(path)
    if not layers:
        raise CmError(f"{path}: no vector (list) columns besides utt_id", "expected layer_00 … layer_NN columns from `cm embed`")
    return layers


def _layer_name(value: str | int, available: Sequence[str]) -> str:
    text = str(value).strip()
    if text in available:
        return text
    if text.lstrip("-").isdigit():
        number = int(text)
        numbered = sorted((int(m.group(1)), name) for name in available if (m := _LAYER_RE.match(name)))
        if number < 0 and numbered and -number <= len(numbered):
            return numbered[number][1]
        for n, name in numbered:
            if n == number:
                return name
    raise CmError(f"no layer {text!r} in the embeddings", f"layers found: {', '.join(available)}")


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
        name = _layer_name(item, available)
        if name not in names:
            names.append(name)
    return names


def _to_matrix(column, name: str, file: str) -> "np.ndarray":
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n = len(array)
    if pa.types.is_fixed_size_list(array.type):
        width = array.type.list_size
    else:
        lengths = pc.list_value_length(array).to_numpy(zero_copy_only=False)
        known = lengths[~np.isnan(lengths.astype(float))]
        widths = np.unique(known.astype(np.int64))
        if len(widths) > 1:
            raise CmError(f"{file}: column {name} holds vectors of different lengths ({', '.join(map(str, widths[:5]))})")
        width = int(widths[0]) if len(widths) else 0
    matrix = np.full((n, width), np.nan, dtype=np.float32)
    valid = ~array.is_null().to_numpy(zero_copy_only=False) if array.null_count else np.ones(n, dtype=bool)
    present = array.filter(pa.array(valid)) if array.null_count else array
    values = present.flatten().to_numpy(zero_copy_only=False)
    if values.size != int(valid.sum()) * width:
        raise CmError(f"{file}: column {name} has {values.size} values for {int(valid.sum())} rows of width {width}")
    matrix[valid] = np.asarray(values, dtype=np.float32).reshape(-1, width)
    return matrix


def read_utt_ids(path: str | Path) -> "np.ndarray":
    """The ``utt_id`` column alone (object array), to join before reading any layer."""
    import numpy as np

    from cm_cli.core.artifacts import read_arrow

    embedding_layers(path)  # checks it is an embeddings table
    table = read_arrow(Path(path), name="embeddings", columns=["utt_id"])
    return np.asarray([str(u) for u in table.column("utt_id").to_pylist()], dtype=object)


def read_layer(path: str | Path, layer: str | int, *, drop_nonfinite: bool = True) -> LayerData:
    """Read ``utt_id`` and one layer column only, as float32 (N, D); NaN/inf rows dropped and counted."""
    import numpy as np

    from cm_cli.core.artifacts import read_arrow

    path = Path(path)
    name = _layer_name(layer, embedding_layers(path))
    table = read_arrow(path, name="embeddings", columns=["utt_id", name])
    utt_ids = np.asarray([str(u) for u in table.column("utt_id").to_pylist()], dtype=object)
    X = _to_matrix(table.column(name), name, str(path))
    if len(set(utt_ids.tolist())) != len(utt_ids):
        raise CmError(f"{path}: duplicate utt_id values in the embeddings", "each utterance must be embedded once")
    finite = np.isfinite(X).all(axis=1)
    n_bad = int((~finite).sum())
    if n_bad:
        if not drop_nonfinite:
            first = utt_ids[~finite][0]
            raise CmError(f"{path}: {n_bad} row(s) of {name} hold NaN or inf (first: {first})",
                          "re-embed those utterances (fp16 overflow?) or allow dropping them")
        if n_bad == len(X):
            raise CmError(f"{path}: every row of {name} holds NaN or inf", "re-embed with --fp32")
        utt_ids, X = utt_ids[finite], X[finite]
    return LayerData(layer=name, utt_ids=utt_ids, X=X, n_nonfinite=n_bad)


def align_rows(utt_ids: "np.ndarray", manifest: "pd.DataFrame", *, source: str = "embeddings",
               manifest_source: str = "manifest") -> Aligned:
    """Inner-join embedding rows to manifest rows by ``utt_id``; an empty join is an error."""
    import numpy as np

    position = {u: i for i, u in enumerate(utt_ids.tolist())}
    ids = manifest["utt_id"].astype(str).tolist()
    keep = np.fromiter((u in position for u in ids), dtype=bool, count=len(ids))
    if not keep.any():
        emb_ex = ", ".join(map(str, utt_ids[:3]))
        man_ex = ", ".join(ids[:3])
        raise CmError(f"{source} and {manifest_source} share no utt_id "
                      f"({len(utt_ids)} embedded, e.g. {emb_ex}; {len(ids)} in the manifest, e.g. {man_ex})",
                      "embed the utterances of this manifest (and split), or pass the manifest used by `cm embed`")
    rows = manifest.loc[keep].reset_index(drop=True)
    index = np.array([position[u] for u in rows["utt_id"].astype(str)], dtype=np.int64)
    aligned = Aligned(manifest=rows, index=index, n_embeddings_only=len(utt_ids) - len(index),
                      n_manifest_only=int((~keep).sum()))
    if aligned.n_embeddings_only:
        aligned.notes.append(f"{aligned.n_embeddings_only} embedded utterance(s) are not in the manifest (ignored)")
    if aligned.n_manifest_only:
        aligned.notes.append(f"{aligned.n_manifest_only} manifest row(s) have no embedding (ignored)")
    return aligned
