"""The embeddings table on disk: the streaming writer of ``cm embed`` and the one reader of a layer.

Probes, CKA, LOAO and patching all read layers of an ``embeddings.parquet`` (or a
directory of parts); reading them here, one column at a time, keeps the checks the same
everywhere (unknown layers, parts missing, null or non-finite rows) and never decodes
layers an analysis does not ask for; a layer is decoded batch by batch straight into its
float32 result, so reading costs about the result's memory, not several copies of the
column (issue 18). The writer buffers batches into large row groups
(about ``ROW_GROUP_BYTES`` of values each, never one per batch): small row groups made
files 44% larger, footers of ~69 MB at 680k rows and layer reads 2.5x slower (issue 18).
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from cm_cli.core.errors import CmError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = [
    "FLOAT16_MAX",
    "ROW_GROUP_BYTES",
    "LayerData",
    "EmbeddingWriter",
    "remove_stale_temps",
    "embedding_files",
    "list_layers",
    "layer_column",
    "read_utt_ids",
    "read_layer",
    "read_layers",
    "load_layer",
]

FLOAT16_MAX = 65504.0
ROW_GROUP_BYTES = 128 << 20  # values buffered per row group (uncompressed)
_LAYER_RE = re.compile(r"^layer_(\d+)$")


class EmbeddingWriter:
    """Streams batches into a temporary Parquet file that becomes ``target`` only on ``commit``."""

    def __init__(self, target: Path, *, value_type: str, row_group_bytes: int = ROW_GROUP_BYTES):
        self.target = target
        self.value_type = value_type
        self.row_group_bytes = int(row_group_bytes)
        self.writer = None
        self.schema = None
        self.tmp: Path | None = None
        self.n_rows = 0
        self._pending: list = []
        self._pending_bytes = 0

    def _open(self, columns: dict[str, int], metadata: dict[str, str], scalars: dict | None = None) -> None:
        import tempfile

        import pyarrow as pa
        import pyarrow.parquet as pq

        value = pa.float16() if self.value_type == "float16" else pa.float32()
        fields = [pa.field("utt_id", pa.string(), nullable=False)]
        fields += [pa.field(name, pa.list_(value, dim)) for name, dim in columns.items()]
        fields += [
            pa.field(name, pa.string() if a.dtype == object else pa.from_numpy_dtype(a.dtype))
            for name, a in (scalars or {}).items()
        ]
        self.schema = pa.schema(fields, metadata={k.encode(): v.encode() for k, v in metadata.items()})
        from cm_cli.core.artifacts import file_mode

        fd, name = tempfile.mkstemp(prefix=f".{self.target.name}.", suffix=".tmp", dir=self.target.parent)
        os.fchmod(fd, file_mode())  # colleagues on a shared project space can read it (mkstemp gives 0600)
        os.close(fd)
        self.tmp = Path(name)
        # no dictionary or statistics on float lists: neither helps a layer read, both cost (4.6x slower writes)
        self.writer = pq.ParquetWriter(
            self.tmp, self.schema, compression="zstd", use_dictionary=False, write_statistics=False
        )

    def _failed(self, exc: OSError):
        """A write that failed (disk full, quota): the temporary file removed, one line naming the table."""
        import errno as errno_codes

        from cm_cli.core.artifacts import write_error

        self.abort()
        if exc.errno is None and "No space left" in str(exc):  # Arrow's C++ writer reports ENOSPC in its text only
            exc = OSError(errno_codes.ENOSPC, "No space left on device")
        return write_error(self.target, exc)

    def write(
        self,
        utt_ids: Sequence[str],
        arrays: dict[str, "np.ndarray"],
        metadata: dict[str, str],
        scalars: dict[str, "np.ndarray"] | None = None,
    ) -> None:
        """``arrays``: vector columns (N, D); ``scalars``: plain named columns (N,) after them (feature sets)."""
        try:
            self._write(utt_ids, arrays, metadata, scalars)
        except OSError as exc:
            raise self._failed(exc) from None

    def _write(
        self,
        utt_ids: Sequence[str],
        arrays: dict[str, "np.ndarray"],
        metadata: dict[str, str],
        scalars: dict[str, "np.ndarray"] | None = None,
    ) -> None:
        import numpy as np
        import pyarrow as pa

        if self.writer is None:
            self._open({name: int(a.shape[1]) for name, a in arrays.items()}, metadata, scalars)
        dtype = np.float16 if self.value_type == "float16" else np.float32
        columns = [pa.array(list(utt_ids), type=pa.string())]
        for name in self.schema.names[1:]:
            if scalars and name in scalars:
                columns.append(pa.array(np.asarray(scalars[name]), type=self.schema.field(name).type))
                continue
            matrix = np.ascontiguousarray(arrays[name], dtype=dtype)
            columns.append(pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), matrix.shape[1]))
        table = pa.Table.from_arrays(columns, schema=self.schema)
        self._pending.append(table)
        self._pending_bytes += table.nbytes
        self.n_rows += len(utt_ids)
        if self._pending_bytes >= self.row_group_bytes:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if not self._pending:
            return
        table = pa.concat_tables(self._pending).combine_chunks()
        self.writer.write_table(table, row_group_size=max(1, table.num_rows))
        self._pending, self._pending_bytes = [], 0

    def commit(self) -> None:
        try:
            self._flush()
            self.writer.close()
            self.writer = None
            os.replace(self.tmp, self.target)
        except OSError as exc:
            raise self._failed(exc) from None
        self.tmp = None

    def abort(self) -> None:
        self._pending, self._pending_bytes = [], 0
        if self.writer is not None:
            with contextlib.suppress(Exception):
                self.writer.close()
            self.writer = None
        if self.tmp is not None:
            with contextlib.suppress(OSError):
                self.tmp.unlink()
            self.tmp = None


def remove_stale_temps(out_dir: Path, names: Sequence[str]) -> None:
    """Temporary files of a killed earlier attempt (the caller holds the lock, so none is live)."""
    for name in names:
        for stale in out_dir.glob(f".{name}.*.tmp"):
            with contextlib.suppress(OSError):
                stale.unlink()


# --------------------------------------------------------------------------- reader


@dataclass
class LayerData:
    """One layer: ``X`` float32 of shape (N, D), row ``i`` belongs to ``utt_ids[i]``."""

    layer: str
    utt_ids: "np.ndarray"
    X: "np.ndarray"
    n_nonfinite: int = 0  # rows dropped because they held null, NaN or inf


def embedding_files(path: str | os.PathLike) -> list[Path]:
    """``embeddings.parquet``, or the complete set of parts of a sharded run, for a file or directory."""
    from cm_cli.core.artifacts import find_parts

    path = Path(path)
    if path.is_file():
        return [path]
    if not path.exists():
        raise CmError(
            f"{path}: no such file or directory", "give an embeddings.parquet or the output directory of `cm embed`"
        )
    if (path / "embeddings.parquet").is_file():
        return [path / "embeddings.parquet"]
    parts = find_parts(path)
    if not parts:
        raise CmError(
            f"{path}: no embeddings.parquet or part-*-of-*.parquet files", "point at the output directory of `cm embed`"
        )
    return parts


def list_layers(path: str | os.PathLike) -> list[str]:
    """Vector column names (``layer_00`` …, ``pooled``, ``pre_logit``) in file order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    file = embedding_files(path)[0]
    try:
        schema = pq.read_schema(file)
    except (OSError, pa.ArrowInvalid) as exc:
        raise CmError(f"{file}: not a readable Parquet file ({exc})") from None
    if "utt_id" not in schema.names:
        raise CmError(
            f"{path}: no utt_id column, so this is not an embeddings table",
            f"columns found: {', '.join(schema.names[:12])}",
        )
    return [
        f.name
        for f in schema
        if f.name != "utt_id"
        and (pa.types.is_fixed_size_list(f.type) or pa.types.is_list(f.type) or pa.types.is_large_list(f.type))
    ]


def layer_column(value: str | int, available: Sequence[str]) -> str:
    """A column name from a name or a layer number (``6`` -> ``layer_06``; negatives count from the last layer)."""
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


_BATCH_BYTES = 1 << 20  # float32 bytes decoded per Parquet batch while reading a layer (arrow sizes its builders by it)


_FLOAT_TYPES = {"halffloat": "float16", "float": "float32", "double": "float64"}


def _width_of(array, name: str, file: str) -> int | None:
    """The vector length of a list array's non-null rows (``None`` when every row is null)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_fixed_size_list(array.type):
        return int(array.type.list_size)
    lengths = pc.list_value_length(array).drop_null().to_numpy(zero_copy_only=False)
    widths = np.unique(lengths.astype(np.int64))
    if len(widths) > 1:
        raise CmError(f"{file}: column {name} holds vectors of different lengths ({', '.join(map(str, widths[:5]))})")
    return int(widths[0]) if len(widths) else None


def _fill_rows(array, out: "np.ndarray", name: str, file: str) -> None:
    """Write one batch of a list column into ``out`` (float32, shape (len(array), D)); null rows become NaN.

    The flat values go straight into ``out`` (float16 -> float32 by numpy on assignment), so no
    copy of the column, in either precision, is made beyond the batch being decoded.
    """
    import numpy as np
    import pyarrow as pa

    width = out.shape[1]
    valid = None
    if array.null_count:
        valid = array.is_valid().to_numpy(zero_copy_only=False)
        array = array.drop_null()
    values = array.flatten()  # skips null rows and honours slice offsets
    dtype = _FLOAT_TYPES.get(str(values.type))
    if dtype is not None and not values.null_count:
        # a view of the Arrow buffer (Array.to_numpy would import pandas: +0.4 s on a first read)
        flat = np.frombuffer(
            values.buffers()[1], dtype=dtype, count=len(values), offset=values.offset * np.dtype(dtype).itemsize
        )
    else:  # other value types, or a null element inside a vector (NaN, as float arrays convert it)
        flat = values.cast(pa.float32()).to_numpy(zero_copy_only=False)
    if flat.size != len(array) * width:
        raise CmError(f"{file}: column {name} has {flat.size} values for {len(array)} rows of width {width}")
    if valid is None:
        out[...] = flat.reshape(-1, width)
    else:
        out[~valid] = np.nan
        out[valid] = flat.reshape(-1, width)


def _scan_layer(path: Path, name: str, out: "np.ndarray | None" = None, *, with_ids: bool = True):
    """Read ``utt_id`` and column ``name`` batch by batch, each into its rows of a preallocated float32 matrix.

    Returns ``(utt_ids, X)`` (``utt_ids`` None when ``with_ids`` is false: the column is then
    not decoded). ``out`` (optional) is a preallocated (N, D) float32 array to fill instead of a
    new one (the (N, L, D) reader passes one slice per layer and decodes the ids once). Peak memory above the result
    is one decoded batch (about ``_BATCH_BYTES``) plus one compressed column chunk.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cm_cli.core.artifacts import table_files

    files = table_files(path, "embeddings")
    handles = []
    for file in files:
        try:
            handle = pq.ParquetFile(file, pre_buffer=False)
        except (OSError, pa.ArrowInvalid) as exc:
            raise CmError(f"{file}: not a readable Parquet file ({exc})") from None
        names = handle.schema_arrow.names
        missing = [c for c in ("utt_id", name) if c not in names]
        if missing:
            raise CmError(f"{file}: no column(s) {', '.join(missing)}", f"columns found: {', '.join(names)}")
        handles.append((file, handle))
    n_total = sum(handle.metadata.num_rows for _, handle in handles)
    width = None if out is None else int(out.shape[1])
    for file, handle in handles:  # a fixed-size list states its width in the schema
        field = handle.schema_arrow.field(name)
        if pa.types.is_fixed_size_list(field.type):
            if width is not None and width != field.type.list_size:
                raise CmError(
                    f"{file}: column {name} holds vectors of different lengths ({width}, {field.type.list_size})"
                )
            width = int(field.type.list_size)
    if out is not None and out.shape[0] != n_total:
        raise CmError(f"{path}: {n_total} rows, the output array has {out.shape[0]}")
    utt_ids = np.empty(n_total, dtype=object) if with_ids else None
    columns = ["utt_id", name] if with_ids else [name]
    X = out if out is not None else (np.empty((n_total, width), dtype=np.float32) if width is not None else None)
    start, pending_null = 0, []  # rows read before the width of a variable-list column is known (all null)
    for file, handle in handles:
        rows_per_batch = max(64, _BATCH_BYTES // (4 * max(1, width or 256)))
        for batch in handle.iter_batches(batch_size=rows_per_batch, columns=columns, use_threads=False):
            n = batch.num_rows
            if with_ids:
                utt_ids[start : start + n] = [str(u) for u in batch.column("utt_id").to_pylist()]
            column = batch.column(name)
            found = _width_of(column, name, str(file))
            if found is not None and width is not None and found != width:
                raise CmError(f"{file}: column {name} holds vectors of different lengths ({width}, {found})")
            if width is None and found is not None:
                width = found
                X = np.empty((n_total, width), dtype=np.float32)
            if X is None:
                pending_null.append((start, n))
            else:
                _fill_rows(column, X[start : start + n], name, str(file))
            start += n
            del batch, column  # before the reader decodes the next batch
    if X is None:  # no row holds a vector
        X = np.empty((n_total, 0), dtype=np.float32)
    for first, n in pending_null:
        X[first : first + n] = np.nan
    if start != n_total:
        raise CmError(f"{path}: read {start} rows of {name}, the Parquet metadata says {n_total}")
    return utt_ids, X


def _layers_present(path: Path) -> list[str]:
    layers = list_layers(path)
    if not layers:
        raise CmError(
            f"{path}: no vector (list) columns besides utt_id", "expected layer_00 … layer_NN columns from `cm embed`"
        )
    return layers


def read_utt_ids(path: str | os.PathLike) -> "np.ndarray":
    """The ``utt_id`` column alone (object array), to join before reading any layer."""
    import numpy as np

    from cm_cli.core.artifacts import read_arrow

    _layers_present(Path(path))  # checks it is an embeddings table
    table = read_arrow(Path(path), name="embeddings", columns=["utt_id"])
    return np.asarray([str(u) for u in table.column("utt_id").to_pylist()], dtype=object)


def _schema_width(path: Path, name: str) -> int | None:
    """The vector length a fixed-size list column states in the schema (``None`` for variable lists)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cm_cli.core.artifacts import table_files

    widths = set()
    for file in table_files(path, "embeddings"):
        field = pq.read_schema(file).field(name)
        if not pa.types.is_fixed_size_list(field.type):
            return None
        widths.add(int(field.type.list_size))
    if len(widths) > 1:
        raise CmError(
            f"{path}: column {name} holds vectors of different lengths ({', '.join(map(str, sorted(widths)))})"
        )
    return widths.pop() if widths else None


def _finite_rows(X: "np.ndarray", chunk: int = 4096) -> "np.ndarray":
    """Rows of ``X`` whose values are all finite, tested a block of rows at a time (no (N, D) mask)."""
    import numpy as np

    finite = np.empty(X.shape[0], dtype=bool)
    for start in range(0, X.shape[0], chunk):
        finite[start : start + chunk] = np.isfinite(X[start : start + chunk]).all(axis=1)
    return finite


def _compact_rows(X: "np.ndarray", keep: "np.ndarray", chunk: int = 4096) -> "np.ndarray":
    """``X[keep]`` without a second (N, D) array: kept rows move down in place, a block at a time.

    Safe because the ``j``-th kept row sits at position ``keep[j] >= j``: each block is copied
    out before being written to rows no later block still has to read. Returns a view of the
    first ``len(keep)`` rows.
    """
    for start in range(0, len(keep), chunk):
        block = keep[start : start + chunk]
        X[start : start + len(block)] = X[block]
    return X[: len(keep)]


def read_layer(path: str | os.PathLike, layer: str | int, *, drop_nonfinite: bool | None = True) -> LayerData:
    """Read ``utt_id`` and one layer column only, as float32 (N, D).

    Rows that are null or hold NaN/inf: ``drop_nonfinite=True`` drops and counts them,
    ``False`` raises naming the first, ``None`` keeps them as they are (counted). The
    column is decoded batch by batch straight into the float32 result, so the peak memory
    is about the result and its ids, not several copies of the column (issue 18).
    """
    import numpy as np

    path = Path(path)
    name = layer_column(layer, _layers_present(path))
    utt_ids, X = _scan_layer(path, name)
    _check_unique(path, utt_ids)
    finite = _finite_rows(X)
    n_bad = int((~finite).sum())
    if n_bad and drop_nonfinite is not None:
        if not drop_nonfinite:
            first = utt_ids[~finite][0]
            raise CmError(
                f"{path}: {n_bad} row(s) of {name} hold NaN or inf (first: {first})",
                "re-embed those utterances (fp16 overflow?) or allow dropping them",
            )
        if n_bad == len(X):
            raise CmError(f"{path}: every row of {name} holds NaN or inf", "re-embed in float32", option="fp32")
        keep = np.flatnonzero(finite)
        utt_ids, X = utt_ids[keep], _compact_rows(X, keep)
    return LayerData(layer=name, utt_ids=utt_ids, X=X, n_nonfinite=n_bad)


def _check_unique(path: Path, utt_ids: "np.ndarray") -> None:
    if len(set(utt_ids.tolist())) != len(utt_ids):
        raise CmError(f"{path}: duplicate utt_id values in the embeddings", "each utterance must be embedded once")


def read_layers(path: str | os.PathLike, layers: Sequence[str | int]) -> tuple["np.ndarray", "np.ndarray"]:
    """``(utt_ids, X)`` of several equal-width layers, ``X`` float32 ``(N, L, D)``, every row kept.

    Each layer is decoded straight into its slice of one preallocated array (no per-layer
    matrices to stack afterwards), so the peak is about the result: what a feature cache of
    pooled statistics (``cm train --features``) needs at corpus scale.
    """
    import numpy as np
    import pyarrow.parquet as pq

    from cm_cli.core.artifacts import table_files

    path = Path(path)
    available = _layers_present(path)
    names = [layer_column(layer, available) for layer in layers]
    if not names:
        raise CmError(f"{path}: no layers asked for")
    widths = {name: _schema_width(path, name) for name in names}
    if None in widths.values():  # variable-length list columns (not written by cm embed): read the first to learn it
        ids, first = _scan_layer(path, names[0])
        widths = {name: first.shape[1] for name in names}
        del first
    if len(set(widths.values())) > 1:
        raise CmError(
            f"{path}: layer widths differ ({', '.join(f'{k} {v}' for k, v in widths.items())}); "
            "layers stacked into one (N, L, D) array need one width",
            "choose equal-width layers",
        )
    files = table_files(path, "embeddings")
    n_total = sum(pq.ParquetFile(file).metadata.num_rows for file in files)
    X = np.empty((n_total, len(names), widths[names[0]]), dtype=np.float32)
    ids, _ = _scan_layer(path, names[0], out=X[:, 0])
    _check_unique(path, ids)
    for index, name in enumerate(names[1:], start=1):  # same rows, same order: the ids are decoded once
        _scan_layer(path, name, out=X[:, index], with_ids=False)
    return ids, X


def load_layer(path: str | os.PathLike, layer: str | int) -> tuple["np.ndarray", "np.ndarray"]:
    """``(utt_ids, X)`` of one layer, every row kept: ids as a str array, ``X`` float32 ``(N, D)``."""
    data = read_layer(path, layer, drop_nonfinite=None)
    return data.utt_ids.astype(str), data.X
