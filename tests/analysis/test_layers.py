"""The layer reader: one column at a time, NaN rows dropped with a count, clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cm_cli.analysis._layers import align_rows, embedding_layers, read_layer, resolve_layers
from cm_cli.core.errors import CmError
from tests.analysis.synth import write_embeddings


def test_reads_one_layer_as_float32_and_resolves_names(tmp_path):
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    emb = write_embeddings(tmp_path / "e", ["a", "b", "c", "d"], {"layer_00": X, "layer_01": X * 2, "pooled": X[:, :2]})
    assert embedding_layers(emb) == ["layer_00", "layer_01", "pooled"]
    assert resolve_layers(emb, "1") == ["layer_01"]
    assert resolve_layers(emb, "0,pooled") == ["layer_00", "pooled"]
    assert resolve_layers(emb, -1) == ["layer_01"]
    data = read_layer(emb, "layer_01")
    assert data.X.dtype == np.float32 and data.X.shape == (4, 3)
    np.testing.assert_allclose(data.X, X * 2)
    assert list(data.utt_ids) == ["a", "b", "c", "d"]


def test_unknown_layer_names_the_available_ones(tmp_path):
    emb = write_embeddings(tmp_path / "e", ["a", "b"], {"layer_00": np.zeros((2, 2))})
    with pytest.raises(CmError) as info:
        resolve_layers(emb, "7")
    assert "layer_00" in info.value.hint


def test_nonfinite_rows_are_dropped_and_counted(tmp_path):
    X = np.ones((5, 3), dtype=np.float32)
    X[1, 0] = np.nan
    X[3, 2] = np.inf
    emb = write_embeddings(tmp_path / "e", list("abcde"), {"layer_00": X}, dtype=np.float32)
    data = read_layer(emb, 0)
    assert data.n_nonfinite == 2 and list(data.utt_ids) == ["a", "c", "e"]
    with pytest.raises(CmError, match="NaN or inf"):
        read_layer(emb, 0, drop_nonfinite=False)


def test_null_vectors_count_as_nonfinite(tmp_path):
    values = pa.array([[1.0, 2.0], None, [3.0, 4.0]], type=pa.list_(pa.float32(), 2))
    pq.write_table(pa.table({"utt_id": ["a", "b", "c"], "layer_00": values}), tmp_path / "embeddings.parquet")
    data = read_layer(tmp_path / "embeddings.parquet", "layer_00")
    assert list(data.utt_ids) == ["a", "c"] and data.n_nonfinite == 1


def test_no_shared_ids_is_an_error_with_examples():
    manifest = pd.DataFrame({"utt_id": ["x1", "x2"]})
    with pytest.raises(CmError, match="share no utt_id"):
        align_rows(np.array(["a", "b"], dtype=object), manifest)
    aligned = align_rows(np.array(["x2", "z"], dtype=object), manifest)
    assert aligned.index.tolist() == [0] and aligned.n_embeddings_only == 1 and aligned.n_manifest_only == 1
