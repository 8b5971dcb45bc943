"""The layer reader at scale (issue 18): values exact, rows handled as before, memory about the result."""

from __future__ import annotations

import sys
import tracemalloc

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cm_cli.core.errors import CmError
from cm_cli.embedding import store
from cm_cli.embedding.store import EmbeddingWriter, load_layer, read_layer, read_layers


def _write(path, ids, layers, *, value_type="float16", row_group_bytes=store.ROW_GROUP_BYTES, batch=1000):
    writer = EmbeddingWriter(path, value_type=value_type, row_group_bytes=row_group_bytes)
    for start in range(0, len(ids), batch):
        writer.write(ids[start : start + batch], {k: v[start : start + batch] for k, v in layers.items()}, {})
    writer.commit()
    return path


def test_float16_values_round_trip_exactly_across_row_groups_and_batches(tmp_path, monkeypatch):
    # every float16 value is a float32 value: the float32 matrix must equal the stored values bit for bit,
    # whatever the row groups (tiny here) and the decoding batches (a few rows here) cut
    rng = np.random.default_rng(0)
    n, d = 1000, 16
    stored = (rng.standard_normal((n, d)) * 100).astype(np.float16)
    stored[5] = np.float16(store.FLOAT16_MAX)
    ids = [f"u{i:04d}" for i in range(n)]
    path = _write(
        tmp_path / "e.parquet", ids, {"layer_00": stored, "layer_01": -stored}, row_group_bytes=4096, batch=77
    )
    assert pq.ParquetFile(path).metadata.num_row_groups > 5
    monkeypatch.setattr(store, "_BATCH_BYTES", 64 * 4 * d)  # 64 rows per batch
    data = read_layer(path, 1)
    assert data.X.dtype == np.float32 and data.n_nonfinite == 0
    np.testing.assert_array_equal(data.X, -stored.astype(np.float32))
    assert data.utt_ids.tolist() == ids


@pytest.mark.parametrize("value", [pa.float16(), pa.float32(), pa.float64()])
def test_a_sliced_batch_fills_its_own_rows(value):
    # batches can be slices of a larger array: the values start at the slice's offset
    flat = np.arange(20, dtype=np.float64)
    array = pa.FixedSizeListArray.from_arrays(pa.array(flat, type=value), 2).slice(3, 4)
    out = np.full((4, 2), -1, dtype=np.float32)
    store._fill_rows(array, out, "layer_00", "f")
    np.testing.assert_array_equal(out, flat[6:14].reshape(4, 2))
    with_null = pa.array([[1, 2], None, [5, 6], [7, 8]], type=pa.list_(value, 2)).slice(1, 3)
    store._fill_rows(with_null, out[:3], "layer_00", "f")
    assert np.isnan(out[0]).all() and out[1:3].tolist() == [[5, 6], [7, 8]]


def test_parts_are_read_in_order(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    ids = [f"u{i}" for i in range(6)]
    X = np.arange(12, dtype=np.float32).reshape(6, 2)
    for k in range(2):
        _write(
            out / f"part-{k:05d}-of-00002.parquet",
            ids[3 * k : 3 * k + 3],
            {"layer_00": X[3 * k : 3 * k + 3]},
            value_type="float32",
        )
    ids_read, X_read = load_layer(out, "layer_00")
    assert ids_read.tolist() == ids
    np.testing.assert_array_equal(X_read, X)


def test_nonfinite_rows_across_batches_are_dropped_in_order(tmp_path, monkeypatch):
    X = np.arange(40, dtype=np.float32).reshape(20, 2)
    X[[1, 7, 8, 19], 0] = [np.nan, np.inf, -np.inf, np.nan]
    ids = [f"u{i:02d}" for i in range(20)]
    path = _write(tmp_path / "e.parquet", ids, {"layer_00": X}, value_type="float32", batch=3)
    monkeypatch.setattr(store, "_BATCH_BYTES", 1)  # the minimum batch: 64 rows; smaller tables, one batch
    keep = [i for i in range(20) if i not in (1, 7, 8, 19)]
    data = read_layer(path, 0)
    assert data.n_nonfinite == 4 and data.utt_ids.tolist() == [ids[i] for i in keep]
    np.testing.assert_array_equal(data.X, X[keep])
    kept = read_layer(path, 0, drop_nonfinite=None)
    assert kept.n_nonfinite == 4 and kept.X.shape == (20, 2)
    np.testing.assert_array_equal(kept.X, X)  # NaN positions equal too
    with pytest.raises(CmError, match=r"4 row\(s\) of layer_00 hold NaN or inf \(first: u01\)"):
        read_layer(path, 0, drop_nonfinite=False)


def test_null_rows_and_variable_lists(tmp_path):
    values = pa.array([None, [1.0, 2.0], None, [3.0, 4.0]], type=pa.list_(pa.float16()))
    pq.write_table(pa.table({"utt_id": ["a", "b", "c", "d"], "layer_00": values}), tmp_path / "embeddings.parquet")
    ids, X = load_layer(tmp_path / "embeddings.parquet", 0)
    assert ids.tolist() == ["a", "b", "c", "d"] and X.shape == (4, 2)
    assert np.isnan(X[[0, 2]]).all()
    np.testing.assert_array_equal(X[[1, 3]], [[1, 2], [3, 4]])
    data = read_layer(tmp_path / "embeddings.parquet", 0)
    assert data.utt_ids.tolist() == ["b", "d"] and data.n_nonfinite == 2
    ragged = pa.array([[1.0, 2.0], [3.0]], type=pa.list_(pa.float32()))
    pq.write_table(pa.table({"utt_id": ["a", "b"], "layer_00": ragged}), tmp_path / "ragged.parquet")
    with pytest.raises(CmError, match="vectors of different lengths"):
        read_layer(tmp_path / "ragged.parquet", 0)


def test_duplicate_ids_are_an_error(tmp_path):
    path = _write(tmp_path / "e.parquet", ["a", "b", "a"], {"layer_00": np.zeros((3, 2), dtype=np.float32)})
    with pytest.raises(CmError, match="duplicate utt_id"):
        read_layer(path, 0)


def test_read_layers_stacks_equal_width_layers_without_copies(tmp_path):
    rng = np.random.default_rng(1)
    layers = {f"layer_{k:02d}": rng.standard_normal((50, 4)).astype(np.float16) for k in range(3)}
    layers["pooled"] = np.zeros((50, 2), dtype=np.float16)
    ids = [f"u{i}" for i in range(50)]
    path = _write(tmp_path / "e.parquet", ids, layers, row_group_bytes=512, batch=7)
    got_ids, X = read_layers(path, ["layer_00", 1, "layer_02"])
    assert got_ids.tolist() == ids and X.shape == (50, 3, 4) and X.dtype == np.float32
    for k in range(3):
        np.testing.assert_array_equal(X[:, k], layers[f"layer_{k:02d}"].astype(np.float32))
    with pytest.raises(CmError, match="layer widths differ"):
        read_layers(path, ["layer_00", "pooled"])


_POOLS = []  # arrow pools used in a test stay alive as long as anything they allocated might


def test_reading_a_layer_allocates_about_the_result_once(tmp_path, monkeypatch):
    """Peak extra memory while reading one layer of a planted 20,000 x 64 float16 table.

    Measured deterministically, with no timing and no RSS: ``tracemalloc`` counts every
    numpy buffer and Python object allocated during the call (numpy reports its buffers to
    tracemalloc), and an Arrow proxy memory pool installed as the default pool for the
    call counts every Arrow buffer (Parquet pages, decoded batches) with its high-water
    mark. The sum of the two peaks bounds the true peak from above. The result is the
    float32 matrix plus its ids (the object array and its str objects). The old reader
    held the whole column as Arrow float16, a float32 copy and the matrix (2.75x the
    result here); the batch reader holds the result plus one batch and a set of the ids
    for the duplicate check (1.5x here, the ids' share shrinking as D grows).
    """
    rng = np.random.default_rng(0)
    n, d = 20_000, 64
    X = rng.standard_normal((n, d)).astype(np.float32)
    X[::97, 3] = np.inf  # some rows to drop: dropping compacts in place
    ids = [f"u{i:06d}" for i in range(n)]
    path = _write(tmp_path / "e.parquet", ids, {"layer_00": X, "layer_01": X}, row_group_bytes=1 << 18)
    monkeypatch.setattr(store, "_BATCH_BYTES", 1 << 16)  # batches small against the table, as at corpus scale
    read_layer(path, 1)  # imports and first-call caches outside the measurement
    base = pa.default_memory_pool()
    for drop in (None, True):
        pool = pa.proxy_memory_pool(base)
        _POOLS.append(pool)
        pa.set_memory_pool(pool)
        tracemalloc.start()
        try:
            data = read_layer(path, 1, drop_nonfinite=drop)
            _, python_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            pa.set_memory_pool(base)
        result = data.X.nbytes + data.utt_ids.nbytes + sum(sys.getsizeof(u) for u in data.utt_ids)
        peak = python_peak + pool.max_memory()
        assert data.n_nonfinite == len(range(0, n, 97))
        assert peak < 2 * result, (drop, peak / result)
