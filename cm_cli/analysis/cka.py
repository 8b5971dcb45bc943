"""Linear CKA between the layers of one or two embedding sets: which representations changed.

Computed in feature space (never an N x N Gram matrix for the full estimator), with
the biased HSIC of Kornblith et al. (2019) or the unbiased HSIC of Song et al.
(2012) ("debiased" CKA), and a minibatch estimator (Nguyen, Raghu & Kornblith,
2021: the unbiased HSIC accumulated over fixed random minibatches) for large N.
The biased HSIC summed over minibatches is biased upwards by an amount that grows
as the batch shrinks (0.80 for independent 256-d Gaussians at batch 64), so it is
refused there. Identical layers (e.g. a frozen backbone shared by two runs) are
flagged: their CKA is 1 by construction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from cm_cli.core.errors import CmError
from cm_cli.core.kinds import register_kind

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

__all__ = [
    "CKA_COLUMNS",
    "ESTIMATORS",
    "CkaConfig",
    "hsic",
    "linear_cka",
    "minibatch_cka",
    "resolve_estimator",
    "estimator_description",
    "compute_cka",
    "run_cka",
]

CKA_COLUMNS = ["layer_a", "layer_b", "cka", "estimator"]
ESTIMATORS = ("biased", "debiased")

# the artifact kind this module makes, with its report section (cm_cli.core.kinds)
register_kind(
    "cka",
    title="CKA",
    command="`cm cka EMB_A EMB_B --out DIR`",
    marker="cka.parquet",
    tables=("cka",),
    missing="CKA results",
    section="cm_cli.report.sections_analysis:cka_blocks",
    order=30,
)


@dataclass
class CkaConfig:
    estimator: str | None = None  # None: biased for full batch, debiased (unbiased HSIC) with --batch-size
    layers_a: str | None = None
    layers_b: str | None = None
    batch_size: int | None = None  # minibatch estimator when set
    seed: int = 0

    def options(self) -> dict:
        return asdict(self)


def resolve_estimator(estimator: str | None, batch_size: int | None) -> str:
    """The HSIC estimator to use: the default follows the batch mode; biased with minibatches is refused."""
    if estimator is None:
        return "debiased" if batch_size else "biased"
    if estimator not in ESTIMATORS:
        raise CmError(f"unknown CKA estimator {estimator!r}", f"use one of {', '.join(ESTIMATORS)}")
    if estimator == "biased" and batch_size:
        raise CmError(
            "the biased HSIC estimator is refused with minibatches: summed over batches it is biased "
            "upwards by an amount that grows as the batch shrinks (independent representations get "
            "CKA near 0.8 at batch 64)",
            "use the debiased estimator (unbiased HSIC, Song et al. 2012, accumulated over batches as in "
            "Nguyen et al. 2021), or no batch size for the full-batch biased CKA",
            option=("estimator", "batch_size"),
        )
    return estimator


def estimator_description(estimator: str, batch_size: int | None) -> str:
    """A plain sentence on what the CKA value estimates, for summaries and the report."""
    hsic_name = "unbiased HSIC (Song et al. 2012)" if estimator == "debiased" else "biased HSIC (Kornblith et al. 2019)"
    if batch_size:
        return (
            f"linear CKA from the {hsic_name} accumulated over fixed random minibatches of {batch_size} rows "
            "(Nguyen, Raghu & Kornblith 2021)"
        )
    return f"linear CKA from the {hsic_name} on all rows at once"


def _sums(X: "np.ndarray") -> tuple["np.ndarray", "np.ndarray"]:
    """Row squared norms (diagonal of K) and the column sum (K @ 1 = X @ sum)."""
    return (X * X).sum(axis=1), X.sum(axis=0)


def hsic(X: "np.ndarray", Y: "np.ndarray", *, estimator: str = "biased") -> float:
    """HSIC of linear kernels from features (N, Dx), (N, Dy); float64 throughout.

    biased: ||Yc^T Xc||_F^2 / (n-1)^2 with column-centred features.
    debiased: Song et al.'s unbiased estimator with zero-diagonal Gram matrices,
    expanded so only (Dx, Dy) products are formed.
    """
    import numpy as np

    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    n = X.shape[0]
    X = X - X.mean(axis=0)
    Y = Y - Y.mean(axis=0)
    cross = float(np.sum((X.T @ Y) ** 2))  # trace(K L)
    if estimator == "biased":
        return cross / (n - 1) ** 2
    if estimator != "debiased":
        raise CmError(f"unknown CKA estimator {estimator!r}", f"use one of {', '.join(ESTIMATORS)}")
    if n < 4:
        raise CmError(f"the debiased HSIC estimator needs at least 4 rows, got {n}")
    dx, sx = _sums(X)
    dy, sy = _sums(Y)
    trace = cross - float(dx @ dy)  # trace(K~ L~) with zeroed diagonals
    kx1 = X @ sx - dx  # K~ 1
    ly1 = Y @ sy - dy  # L~ 1
    sum_k, sum_l = float(kx1.sum()), float(ly1.sum())
    value = trace + sum_k * sum_l / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * float(kx1 @ ly1)
    return value / (n * (n - 3))


def _ratio(xy: float, xx: float, yy: float) -> float:
    import math

    denominator = math.sqrt(xx * yy) if xx > 0 and yy > 0 else 0.0
    return xy / denominator if denominator > 0 else float("nan")


def linear_cka(X: "np.ndarray", Y: "np.ndarray", *, estimator: str = "biased") -> float:
    """CKA = HSIC(X, Y) / sqrt(HSIC(X, X) HSIC(Y, Y)); 1 for any rotation or isotropic scaling of X."""
    if X.shape[0] != Y.shape[0]:
        raise CmError(f"CKA needs the same rows on both sides, got {X.shape[0]} and {Y.shape[0]}")
    return _ratio(hsic(X, Y, estimator=estimator), hsic(X, X, estimator=estimator), hsic(Y, Y, estimator=estimator))


def _batches(n: int, batch_size: int, seed: int) -> list["np.ndarray"]:
    import numpy as np

    order = np.random.default_rng(seed).permutation(n)
    batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    if len(batches) > 1 and len(batches[-1]) < max(4, batch_size // 2):
        batches[-2] = np.concatenate([batches[-2], batches.pop()])
    return batches


def minibatch_cka(
    X: "np.ndarray", Y: "np.ndarray", *, batch_size: int, estimator: str = "debiased", seed: int = 0
) -> float:
    """CKA from the unbiased HSIC accumulated over the same random minibatches for all three terms."""
    resolve_estimator(estimator, batch_size)
    xy = xx = yy = 0.0
    for rows in _batches(X.shape[0], batch_size, seed):
        a, b = X[rows], Y[rows]
        xy += hsic(a, b, estimator=estimator)
        xx += hsic(a, a, estimator=estimator)
        yy += hsic(b, b, estimator=estimator)
    return _ratio(xy, xx, yy)


def _identical(a: "np.ndarray", b: "np.ndarray") -> bool:
    import numpy as np

    return a.shape == b.shape and bool(np.array_equal(a, b))


def _shared_ids(path_a: Path, path_b: Path) -> tuple["np.ndarray", "np.ndarray", list[str]]:
    """Both sets' utt_ids and the sorted ids they share; sets with nothing in common are refused."""
    from cm_cli.analysis._layers import read_utt_ids

    ids_a, ids_b = read_utt_ids(path_a), read_utt_ids(path_b)
    common = sorted(set(ids_a.tolist()) & set(ids_b.tolist()))
    if not common:
        raise CmError(
            f"{path_a} and {path_b} share no utt_id ({len(ids_a)} and {len(ids_b)} rows, e.g. "
            f"{', '.join(ids_a[:2])} vs {', '.join(ids_b[:2])})",
            "compare embeddings of the same utterances (same manifest and split)",
        )
    return ids_a, ids_b, common


def _load_layers(
    path: Path, layers: list[str], tag: str, notes: list[str]
) -> dict[str, tuple["np.ndarray", "np.ndarray"]]:
    """Each layer's finite rows (utt_ids, X); dropped NaN/inf rows are noted, not silent."""
    from cm_cli.analysis._layers import read_layer

    loaded = {}
    for layer in layers:
        data = read_layer(path, layer)
        if data.n_nonfinite:
            notes.append(f"{tag} {layer}: {data.n_nonfinite} row(s) with NaN/inf dropped")
        loaded[layer] = (data.utt_ids, data.X)
    return loaded


def _compared_rows(loaded_sets: Sequence[dict], common: list[str], n_a: int, n_b: int, notes: list[str]) -> list[str]:
    """The shared utt_ids finite in every compared layer: CKA needs the same rows in every matrix."""
    keep = set(common)
    for loaded in loaded_sets:
        for ids, _ in loaded.values():
            keep &= set(ids.tolist())
    rows = sorted(keep)
    if len(rows) < 4:
        raise CmError(f"only {len(rows)} utterance(s) have finite embeddings in every compared layer; CKA needs more")
    if len(rows) < len(common):
        notes.append(f"{len(common) - len(rows)} shared utterance(s) dropped for NaN/inf in some layer")
    if len(common) < max(n_a, n_b):
        notes.append(f"{n_a - len(common)} row(s) of A and {n_b - len(common)} of B are not in both sets (ignored)")
    return rows


def _matrices(loaded: dict[str, tuple["np.ndarray", "np.ndarray"]], rows: list[str]) -> dict[str, "np.ndarray"]:
    """Each layer's float64 matrix with its rows in the order of ``rows``, so A and B rows pair up."""
    import numpy as np

    matrices = {}
    for layer, (ids, X) in loaded.items():
        position = {u: i for i, u in enumerate(ids.tolist())}
        matrices[layer] = X[[position[u] for u in rows]].astype(np.float64)
    return matrices


def _summed_hsic(M: "np.ndarray", N: "np.ndarray", *, estimator: str, config: CkaConfig) -> float:
    """HSIC on all rows, or summed over the fixed minibatches (the same batches for every term)."""
    if config.batch_size:
        return sum(hsic(M[r], N[r], estimator=estimator) for r in _batches(M.shape[0], config.batch_size, config.seed))
    return hsic(M, N, estimator=estimator)


def _pair_table(
    A: dict,
    B: dict,
    layers_a: list[str],
    layers_b: list[str],
    *,
    estimator: str,
    estimator_name: str,
    config: CkaConfig,
) -> "pd.DataFrame":
    """CKA of every (layer of A, layer of B); with one set the symmetric matrix is computed once per pair."""
    import pandas as pd

    from cm_cli.core.progress import task

    norm_a = {layer: _summed_hsic(M, M, estimator=estimator, config=config) for layer, M in A.items()}
    norm_b = (
        norm_a if B is A else {layer: _summed_hsic(M, M, estimator=estimator, config=config) for layer, M in B.items()}
    )
    records = []
    cache: dict[tuple[str, str], float] = {}
    with task(len(layers_a) * len(layers_b), "cka pairs") as advance:
        for la in layers_a:
            for lb in layers_b:
                key = tuple(sorted((la, lb))) if B is A else (la, lb)  # one set: the matrix is symmetric
                if key not in cache:
                    cache[key] = _ratio(
                        _summed_hsic(A[la], B[lb], estimator=estimator, config=config), norm_a[la], norm_b[lb]
                    )
                records.append({"layer_a": la, "layer_b": lb, "cka": float(cache[key]), "estimator": estimator_name})
                advance(1)
    return pd.DataFrame(records, columns=CKA_COLUMNS)


def _diagonal(table: "pd.DataFrame", A: dict, B: dict, layers_a: list[str]) -> tuple[dict[str, float], list[str]]:
    """CKA of each layer with its namesake, and the layers whose values are identical (CKA 1 by construction)."""
    diagonal = {}
    identical_pairs: list[str] = []
    for layer in layers_a:
        if layer in B:
            diagonal[layer] = float(table.loc[(table["layer_a"] == layer) & (table["layer_b"] == layer), "cka"].iloc[0])
            if _identical(A[layer], B[layer]):
                identical_pairs.append(layer)
    return diagonal, identical_pairs


def _construction_note(same_input: bool, identical_pairs: list[str]) -> str | None:
    """Why some CKA values are 1 by construction rather than a finding, if any are."""
    if same_input:
        return (
            "A and B are the same embeddings: the diagonal is 1 by construction; "
            "the off-diagonal compares layers within one model"
        )
    if identical_pairs:
        return (
            f"layer(s) {', '.join(identical_pairs)} hold identical values in A and B "
            "(e.g. frozen backbone layers): their CKA is 1 by construction, not a finding"
        )
    return None


def compute_cka(
    embeddings_a: str | Path, embeddings_b: str | Path | None = None, *, config: CkaConfig = CkaConfig()
) -> tuple["pd.DataFrame", dict]:
    """CKA of every (layer of A, layer of B) pair on the utterances both sets hold (B defaults to A)."""
    from cm_cli.analysis._layers import resolve_layers

    if config.batch_size is not None and config.batch_size < 8:
        raise CmError(f"batch size must be at least 8, got {config.batch_size}", option="batch_size")
    estimator = resolve_estimator(config.estimator, config.batch_size)
    path_a = Path(embeddings_a)
    path_b = Path(embeddings_b) if embeddings_b is not None else path_a
    same_input = path_a.resolve() == path_b.resolve()
    layers_a = resolve_layers(path_a, config.layers_a)
    layers_b = resolve_layers(path_b, config.layers_b if config.layers_b is not None else config.layers_a)
    ids_a, ids_b, common = _shared_ids(path_a, path_b)
    notes: list[str] = []
    a = _load_layers(path_a, layers_a, "A", notes)
    b = a if same_input and layers_b == layers_a else _load_layers(path_b, layers_b, "B", notes)
    rows = _compared_rows((a, b), common, len(ids_a), len(ids_b), notes)
    A = _matrices(a, rows)
    B = A if b is a else _matrices(b, rows)
    estimator_name = estimator + (f"-minibatch{config.batch_size}" if config.batch_size else "")
    table = _pair_table(A, B, layers_a, layers_b, estimator=estimator, estimator_name=estimator_name, config=config)
    diagonal, identical_pairs = _diagonal(table, A, B, layers_a)
    summary = {
        "embeddings_a": str(path_a),
        "embeddings_b": str(path_b),
        "estimator": estimator_name,
        "hsic": estimator,
        "batch_size": config.batch_size,
        "measures": estimator_description(estimator, config.batch_size),
        "n_rows": len(rows),
        "layers_a": layers_a,
        "layers_b": layers_b,
        "shape": [len(layers_a), len(layers_b)],
        "diagonal": diagonal,
        "identical_inputs": same_input,
        "identical_layers": identical_pairs,
        "notes": notes,
    }
    note = _construction_note(same_input, identical_pairs)
    if note is not None:
        summary["notes"].append(note)
    return table, summary


def run_cka(
    embeddings_a: str | Path,
    embeddings_b: str | Path | None = None,
    *,
    out: str | Path,
    config: CkaConfig = CkaConfig(),
    force: bool = False,
    argv: Sequence[str] | None = None,
) -> dict:
    """Compute CKA and write cka.parquet and cka.json under ``out``."""
    from cm_cli.analysis._output import previous_summary, write_outputs

    options = {
        "embeddings_a": str(embeddings_a),
        "embeddings_b": str(embeddings_b) if embeddings_b else None,
        **config.options(),
    }
    done = previous_summary(out, "cka", options, force=force)
    if done is not None:
        return done
    table, summary = compute_cka(embeddings_a, embeddings_b, config=config)
    inputs = [embeddings_a] + ([embeddings_b] if embeddings_b else [])
    return write_outputs(
        out,
        "cka",
        options,
        tables={"cka.parquet": table},
        summary=summary,
        summary_name="cka.json",
        inputs=inputs,
        force=force,
        argv=argv,
    )
