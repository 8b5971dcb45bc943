"""Synthetic embeddings and manifests with planted effects, shared by the analysis and CLI tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cm_cli.data.manifest import normalise_manifest


def write_embeddings(directory: Path, utt_ids, layers: dict[str, np.ndarray], *, dtype=np.float16) -> Path:
    """Write DESIGN.md's embeddings.parquet (utt_id + fixed-size-list columns) and a cm.json."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {"utt_id": pa.array([str(u) for u in utt_ids], type=pa.string())}
    value_type = pa.float16() if dtype == np.float16 else pa.float32()
    for name, X in layers.items():
        X = np.asarray(X, dtype=dtype)
        arrays[name] = pa.FixedSizeListArray.from_arrays(pa.array(X.reshape(-1), type=value_type), X.shape[1])
    pq.write_table(pa.table(arrays), directory / "embeddings.parquet")
    (directory / "cm.json").write_text('{"kind": "embeddings", "status": "complete"}\n')
    return directory


def write_manifest(path: Path, rows: pd.DataFrame) -> Path:
    df = rows.copy()
    defaults = {
        "path": lambda d: [f"{u}.flac" for u in d["utt_id"]],
        "split": "eval",
        "corpus": "toy",
        "codec": None,
        "codec_q": None,
        "domain": "clean",
        "duration": 1.0,
        "sample_rate": 16000,
        "attack_family": None,
    }
    for column, value in defaults.items():
        if column not in df.columns:
            df[column] = value(df) if callable(value) else value
    df = normalise_manifest(df)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path, index=False)
    return path


def spoof_world(
    *,
    n_speakers: int = 12,
    per_speaker: int = 6,
    n_attacks: int = 5,
    dim: int = 16,
    distinct: str = "A05",
    seed: int = 0,
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Bona fide and spoofed rows where every attack but ``distinct`` shifts along one shared
    direction, while ``distinct`` shifts along its own orthogonal direction (planted LOAO effect)."""
    rng = np.random.default_rng(seed)
    attacks = [f"A{i:02d}" for i in range(1, n_attacks + 1)]
    records, vectors = [], []
    shared, own = np.zeros(dim), np.zeros(dim)
    shared[0], own[1] = 3.0, 3.0
    for s in range(n_speakers):
        speaker = f"S{s:03d}"
        offset = rng.normal(0, 0.3, dim)
        for k in range(per_speaker):
            records.append({"utt_id": f"B_{s}_{k}", "label": "bonafide", "attack": None, "speaker": speaker})
            vectors.append(rng.normal(0, 1, dim) + offset)
        for a in attacks:
            for k in range(per_speaker // 2):
                records.append({"utt_id": f"{a}_{s}_{k}", "label": "spoof", "attack": a, "speaker": speaker})
                shift = own if a == distinct else shared
                vectors.append(rng.normal(0, 1, dim) + offset + shift)
    rows = pd.DataFrame(records)
    X = np.stack(vectors)
    noise = rng.normal(0, 1, X.shape)
    return rows, {"layer_00": noise, "layer_01": X}
