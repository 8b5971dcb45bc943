"""Reading score and key files made by anyone into one table for ``cm_cli.metrics``.

Scores: higher = more bona fide. Accepted inputs: Parquet (a file or a directory of
parts), CSV/TSV with a header (separator detected), official ASVspoof score files
(``filename cm-score``, whitespace, with or without a header), and as keys: label
files (``filename cm-label``) and the ASVspoof 5 / 2021 LA / 2021 DF / 2019 LA protocol
files (recognised by their column count and a bonafide/spoof column). The result has
``utt_id``, ``score`` (float64), ``label`` (``bonafide``/``spoof``) and every other
column carried through. A trial id listed twice is an error (count and first id)
unless every copy agrees and ``dedupe`` is asked for. Kept apart from the metrics so
they stay free of I/O.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from cm_cli.core.errors import CmError
from cm_cli.core.labels import SCORE_FILE_LABELS, label_classes

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

__all__ = [
    "ID_COLUMNS",
    "SCORE_COLUMNS",
    "LABEL_COLUMNS",
    "PROTOCOL_LAYOUTS",
    "ScoreColumns",
    "read_any_table",
    "label_values",
    "read_scores",
    "read_key",
    "join_key",
    "join_manifest",
    "load_scores",
    "drop_duplicate_trials",
]

ID_COLUMNS = ("utt_id", "filename", "flac_file", "FLAC_FILE_NAME", "file", "trial", "utt")
SCORE_COLUMNS = ("score", "cm-score", "cm_score", "scores")
LABEL_COLUMNS = ("label", "cm-label", "cm_label", "key", "KEY")
LABEL_TOKENS = set(SCORE_FILE_LABELS)  # label spellings that mark a column of a headerless file as the label

# headerless protocol/key layouts by column count: names of the columns in order
PROTOCOL_LAYOUTS: dict[int, tuple[str, ...]] = {
    2: ("utt_id", "label"),
    5: ("speaker", "utt_id", "env", "attack", "label"),  # ASVspoof 2019 LA
    8: ("speaker", "utt_id", "codec", "transmission", "attack", "label", "trim", "subset"),  # 2021 LA
    10: ("speaker", "utt_id", "gender", "codec", "codec_q", "codec_seed", "attack_tag", "attack", "label", "tmp"),  # 5
    13: (
        "speaker",
        "utt_id",
        "codec",
        "source",
        "attack",
        "label",
        "trim",
        "subset",
        "vocoder",
        "task_1",
        "task_2",
        "task_3",
        "task_4",
    ),  # 2021 DF
}


@dataclass(frozen=True)
class ScoreColumns:
    """Which columns hold the id, the score and the label, and the bona fide label value
    (compared as text, so ``0`` matches an integer column). None: detect."""

    score_col: str | None = None
    label_col: str | None = None
    bonafide_value: str | None = None
    id_col: str | None = None


def _first_line(path: Path) -> str | None:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.strip():
                    return line.rstrip("\r\n")
    except OSError as exc:
        raise CmError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_any_table(path: str | Path, *, name: str | None = None) -> "pd.DataFrame":
    """A Parquet file/directory or a text table, with protocol/score layouts named."""
    import pandas as pd

    path = Path(path)
    if path.is_dir() or path.suffix == ".parquet":
        from cm_cli.core.artifacts import read_table

        df = read_table(path, name=name)
        if len(df) == 0:
            raise CmError(f"{path}: empty table (no rows)")
        return df
    if not path.exists():
        raise CmError(f"{path}: no such file")
    first = _first_line(path)
    if first is None:
        raise CmError(f"{path}: empty file", "a score file needs one line per trial")
    if "\t" in first:
        sep, fields = "\t", first.split("\t")
    elif "," in first:
        sep, fields = ",", first.split(",")
    else:
        sep, fields = r"\s+", first.split()
    fields = [f.strip() for f in fields]
    has_label_token = any(f.lower() in LABEL_TOKENS for f in fields)
    header = not has_label_token and not any(_is_number(f) for f in fields)
    df = _read_delimited(path, sep, len(fields), header=header) if sep != r"\s+" else None
    if df is None:
        try:
            df = pd.read_csv(
                path,
                sep=sep,
                header=0 if header else None,
                dtype=str,
                keep_default_na=False,
                engine="python" if sep == r"\s+" else "c",
                comment=None,
            )
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
            raise CmError(f"{path}: not a readable score/key table ({str(exc).splitlines()[0]})") from None
    if len(df) == 0:
        raise CmError(f"{path}: no rows after the header", "a score file needs one line per trial")
    if not header:
        df.columns = _headerless_names(df, path)
    df.columns = [str(c).strip() for c in df.columns]
    return df


def _read_delimited(path: Path, sep: str, n_fields: int, *, header: bool) -> "pd.DataFrame | None":
    """A tab/comma table read by pyarrow's multithreaded CSV reader, every column as text (empty stays "");
    None when pyarrow refuses it (the pandas reader then reports the problem)."""
    import pyarrow as pa
    from pyarrow import csv

    names = None if header else [str(i) for i in range(n_fields)]
    try:
        if header:
            names = (_first_line(path) or "").lstrip("\ufeff").split(sep)
            read = csv.ReadOptions(column_names=names, skip_rows=1)
        else:
            read = csv.ReadOptions(column_names=names)
        convert = csv.ConvertOptions(
            column_types={name: pa.string() for name in names},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )
        table = csv.read_csv(
            str(path), read_options=read, parse_options=csv.ParseOptions(delimiter=sep), convert_options=convert
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError, OSError, ValueError):
        return None
    df = table.to_pandas()
    return df if header else df.set_axis(range(n_fields), axis=1)


def _headerless_names(df: "pd.DataFrame", path: Path) -> list[str]:
    n = df.shape[1]
    sample = df.head(2000)
    label_cols = [i for i in range(n) if sample.iloc[:, i].str.lower().isin(LABEL_TOKENS).all()]
    layout = PROTOCOL_LAYOUTS.get(n)
    if label_cols:
        if layout and layout.index("label") in label_cols:
            return list(layout)
        names = [f"col_{i}" for i in range(n)]
        names[label_cols[0]] = "label"
        names[1 if n >= 3 and label_cols[0] != 1 else 0] = "utt_id"
        return names
    numeric = [i for i in range(n) if sample.iloc[:, i].map(_is_number).all()]
    if n == 2 and numeric == [1]:
        return ["utt_id", "score"]
    if numeric:  # e.g. ASVspoof 2019 CM scores: utt_id attack key score
        names = [f"col_{i}" for i in range(n)]
        names[numeric[-1]] = "score"
        names[0] = "utt_id" if numeric[-1] != 0 else names[0]
        return names
    raise CmError(
        f"{path}: cannot tell the columns of this headerless file ({n} columns)",
        "give it a header row (utt_id, score, label) or use Parquet",
    )


def _pick(
    df: "pd.DataFrame", explicit: str | None, candidates: Sequence[str], what: str, source: str, *, required: bool
) -> str | None:
    if explicit is not None:
        if explicit not in df.columns:
            raise CmError(
                f"{source}: no {what} column {explicit!r}", f"columns found: {', '.join(map(str, df.columns))}"
            )
        return explicit
    for name in candidates:
        if name in df.columns:
            return name
    if required:
        raise CmError(
            f"{source}: no {what} column (looked for {', '.join(candidates)})",
            f"name it; columns found: {', '.join(map(str, df.columns))}",
            option=f"{what}_col",
        )
    return None


def label_values(series: "pd.Series") -> "pd.Series":
    """Values as text for comparison: integral floats lose their ``.0``; nulls stay null."""
    import pandas as pd

    if pd.api.types.is_float_dtype(series):
        values = series.to_numpy()
        finite = series.dropna()
        if len(finite) and (finite == finite.round()).all():
            return pd.Series([None if pd.isna(v) else str(int(v)) for v in values], index=series.index, dtype="string")
    return series.astype("string").str.strip()


def _normalise_labels(df: "pd.DataFrame", label_col: str, bonafide_value: str | None, source: str) -> "pd.Series":
    """``label_classes`` of each distinct label text once, spread back to the rows (a key has two or a few
    dozen distinct labels and up to a million rows); missing labels take the row-wise path and its error."""
    import numpy as np
    import pandas as pd

    column = df[label_col]
    if not pd.api.types.is_float_dtype(column):
        codes, uniques = pd.factorize(column.astype(object), use_na_sentinel=True)
        if (codes >= 0).all():
            classes = label_classes(
                label_values(pd.Series(uniques, dtype=object)),
                source=source,
                column=label_col,
                bonafide_value=bonafide_value,
                counts=np.bincount(codes, minlength=len(uniques)),
            )
            return pd.Series(classes[codes], index=df.index, dtype=object)
    classes = label_classes(label_values(column), source=source, column=label_col, bonafide_value=bonafide_value)
    return pd.Series(classes, index=df.index, dtype=object)


def _to_float(column: "pd.Series") -> "pd.Series":
    """Scores as float64: Arrow's cast where every value parses (fast), else pandas (bad values -> NaN)."""
    import pandas as pd

    if isinstance(column.dtype, pd.StringDtype) or column.dtype == object:
        try:
            import pyarrow as pa
            import pyarrow.compute as pc

            values = pc.cast(pa.array(column, from_pandas=True), pa.float64()).to_numpy(zero_copy_only=False)
            return pd.Series(values, index=column.index, dtype="float64")
        except (ImportError, TypeError, ValueError, pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    return pd.to_numeric(column, errors="coerce").astype("float64")


def _standardise(
    df: "pd.DataFrame", columns: ScoreColumns, source: str, *, want_score: bool, want_label: bool
) -> "pd.DataFrame":
    out = df.copy()
    id_col = _pick(df, columns.id_col, ID_COLUMNS, "id", source, required=False)
    if id_col is not None:
        out["utt_id"] = df[id_col].astype(str).str.strip()
    if want_score:
        score_col = _pick(df, columns.score_col, SCORE_COLUMNS, "score", source, required=True)
        out["score"] = _to_float(df[score_col])
    label_col = (
        _pick(df, columns.label_col, LABEL_COLUMNS, "label", source, required=want_label) if want_label else None
    )
    if label_col is not None:
        out["label"] = _normalise_labels(df, label_col, columns.bonafide_value, source)
    return out


def read_scores(path: str | Path, columns: ScoreColumns = ScoreColumns(), *, labels: bool = True) -> "pd.DataFrame":
    """A score table: ``score``, ``utt_id`` where the file has ids, and ``label`` when
    ``labels`` (then a label column is required)."""
    df = read_any_table(path, name="scores")
    return _standardise(df, columns, str(path), want_score=True, want_label=labels)


def read_key(path: str | Path, columns: ScoreColumns = ScoreColumns()) -> "pd.DataFrame":
    """A key: ``utt_id`` and ``label`` plus any protocol columns (``-`` read as null)."""
    import pandas as pd

    df = read_any_table(path)
    key_columns = ScoreColumns(
        label_col=columns.label_col, bonafide_value=columns.bonafide_value, id_col=columns.id_col
    )
    out = _standardise(df, key_columns, str(path), want_score=False, want_label=True)
    if "utt_id" not in out.columns:
        raise CmError(f"{path}: no id column in the key", f"columns found: {', '.join(map(str, df.columns))}")
    for column in out.columns:
        if column not in ("utt_id", "label") and not pd.api.types.is_numeric_dtype(out[column]):
            values = out[column].astype(object)
            out[column] = values.where(values != "-", None)
    return out


def _examples(values: Sequence[str], k: int = 3) -> str:
    values = list(values)
    return ", ".join(map(str, values[:k])) + (", ..." if len(values) > k else "")


def _check_unique(df: "pd.DataFrame", source: str) -> None:
    if df["utt_id"].is_unique:
        return
    dup = df["utt_id"][df["utt_id"].duplicated()]
    if len(dup):
        raise CmError(
            f"{source}: {len(dup)} duplicate id(s), e.g. {_examples(dup.unique())}", "each trial must appear once"
        )


def _id_codes(*columns: "pd.Series") -> list["np.ndarray"]:
    """One integer code per distinct id across all ``columns`` (one hash pass, Arrow's, over every id)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    arrays = []
    for column in columns:
        array = pa.array(column if isinstance(column.dtype, pd.StringDtype) else column.astype(str))
        arrays.append(pc.cast(array, pa.large_string()) if array.type != pa.large_string() else array)
    chunks = [chunk for a in arrays for chunk in (a.chunks if isinstance(a, pa.ChunkedArray) else [a])]
    encoded = pc.dictionary_encode(pa.chunked_array(chunks, type=pa.large_string()))
    codes = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in encoded.chunks] or [np.zeros(0, int)])
    bounds = np.cumsum([0] + [len(c) for c in columns])
    return [codes[bounds[i] : bounds[i + 1]].astype(np.int64) for i in range(len(columns))]


def _repeated(codes: "np.ndarray") -> bool:
    import numpy as np

    return bool(codes.size) and int(np.bincount(codes).max()) > 1


def join_key(
    scores: "pd.DataFrame",
    key: "pd.DataFrame",
    *,
    scores_source: str = "scores",
    key_source: str = "key",
    codes: "tuple[np.ndarray, np.ndarray] | None" = None,
) -> "pd.DataFrame":
    """Scores with the key's labels and columns; every id must be in both, exactly once.

    ``codes``: ``_id_codes(scores.utt_id, key.utt_id)`` when the caller has them (one hash pass in all)."""
    import numpy as np

    for df, source in ((scores, scores_source), (key, key_source)):
        if "utt_id" not in df.columns:
            raise CmError(f"{source}: no id column to join on", f"columns found: {', '.join(map(str, df.columns))}")
    score_codes, key_codes = codes if codes is not None else _id_codes(scores["utt_id"], key["utt_id"])
    for df, source, found_codes in ((scores, scores_source, score_codes), (key, key_source, key_codes)):
        if _repeated(found_codes):
            _check_unique(df, source)
    key_ids = key["utt_id"].to_numpy(dtype=object)
    row_of_code = np.full(int(max(score_codes.max(initial=-1), key_codes.max(initial=-1))) + 1, -1, dtype=np.int64)
    row_of_code[key_codes] = np.arange(len(key))
    position = row_of_code[score_codes]
    found = position >= 0
    n_no_score = len(key) - int(np.count_nonzero(found))  # both sides unique: every found key row is hit once
    if not found.all() or n_no_score:
        no_key = sorted(scores["utt_id"].to_numpy(dtype=object)[~found])
        hit = np.zeros(len(key), dtype=bool)
        hit[position[found]] = True
        no_score = sorted(key_ids[~hit])
        parts = []
        if no_key:
            parts.append(f"{len(no_key)} scored id(s) missing from {key_source} (e.g. {_examples(no_key)})")
        if no_score:
            parts.append(f"{len(no_score)} key id(s) without a score (e.g. {_examples(no_score)})")
        raise CmError("; ".join(parts), "the score file and the key must list the same trials")
    extra = [c for c in key.columns if c not in scores.columns]
    if "label" in scores.columns:
        extra = [c for c in extra if c != "label"]
    out = scores.copy()
    for column in extra:
        out[column] = key[column].iloc[position].set_axis(out.index)
    return out


def join_manifest(
    df: "pd.DataFrame", manifest: "pd.DataFrame", *, source: str = "scores", manifest_source: str = "manifest"
) -> "pd.DataFrame":
    """Add the manifest's columns (codec, attack, domain, ...) to scored trials by ``utt_id``."""
    if "utt_id" not in df.columns:
        raise CmError(
            f"{source}: no id column to join with the manifest", f"columns found: {', '.join(map(str, df.columns))}"
        )
    _check_unique(df, source)
    _check_unique(manifest, manifest_source)
    missing = sorted(set(df["utt_id"]) - set(manifest["utt_id"]))
    if missing:
        raise CmError(
            f"{len(missing)} scored id(s) missing from {manifest_source} (e.g. {_examples(missing)})",
            "use the manifest the scores were made from",
        )
    extra = ["utt_id"] + [c for c in manifest.columns if c not in df.columns]
    return df.merge(manifest[extra], on="utt_id", how="left", validate="one_to_one")


def drop_duplicate_trials(df: "pd.DataFrame", *, dedupe: bool = False, source: str = "scores") -> "pd.DataFrame":
    """The table with each trial id once. Any repeated id is a one-line ``CmError`` naming the
    count and the first id, unless ``dedupe`` and every copy has the same score and label."""
    if "utt_id" not in df.columns or df.attrs.get("unique_ids") == len(df):
        return df
    repeated = df["utt_id"].duplicated(keep=False)
    if not repeated.any():
        return df
    ids = df.loc[repeated, "utt_id"]
    first = ids.iloc[0]
    n_ids = int(ids.nunique())
    compared = [c for c in ("utt_id", "score", "label") if c in df.columns]
    conflicting = int(df.loc[repeated, compared].astype(str).drop_duplicates()["utt_id"].duplicated().sum())
    what = f"{source}: {n_ids} trial id(s) appear more than once ({int(repeated.sum())} rows), first {first!r}"
    if conflicting:
        raise CmError(
            f"{what}, with conflicting {' or '.join(c for c in compared if c != 'utt_id')} values; "
            "each trial must appear once"
        )
    if not dedupe:
        raise CmError(f"{what}; every copy agrees", "deduplicate to keep one row per trial", option="dedupe")
    return df.loc[~df["utt_id"].duplicated(keep="first")].reset_index(drop=True)


def _has_label_column(path: str | Path) -> bool:
    return any(c in LABEL_COLUMNS for c in read_any_table(path, name="scores").columns)


PHASES_2021 = ("progress", "eval", "hidden_track")  # the subset column of the ASVspoof 2021 keys


def _keep_eval_phase(scores: "pd.DataFrame", key: "pd.DataFrame") -> tuple["pd.DataFrame", "pd.DataFrame", dict | None]:
    """With an ASVspoof 2021 key of several phases, the ``eval`` phase only, as the official eval-package's
    ``--subset eval`` (and cm's ASV reader) keep it; a record of what was left out."""
    if "subset" not in key.columns or "utt_id" not in scores.columns:
        return scores, key, None
    phases = key["subset"].astype(str)
    present = set(phases.unique())
    if not present <= set(PHASES_2021) or "eval" not in present or len(present) == 1:
        return scores, key, None
    other = set(key.loc[phases != "eval", "utt_id"])
    drop = scores["utt_id"].isin(other).to_numpy()
    record = {"subset": "eval", "phases_in_key": sorted(present), "scored_trials_left_out": int(drop.sum())}
    return scores[~drop].reset_index(drop=True), key[(phases == "eval").to_numpy()].reset_index(drop=True), record


def load_scores(
    path: str | Path,
    columns: ScoreColumns = ScoreColumns(),
    *,
    key: str | Path | None = None,
    manifest: str | Path | None = None,
    dedupe: bool = False,
) -> "pd.DataFrame":
    """Scores joined with an optional key and manifest: ``utt_id?``, ``score``, ``label``, extras."""
    if key is not None:  # labels come from the key; --label-col/--bonafide-value apply to it
        df = read_scores(path, ScoreColumns(score_col=columns.score_col, id_col=columns.id_col), labels=False)
        key_df = read_key(key, ScoreColumns(label_col=columns.label_col, bonafide_value=columns.bonafide_value))
        df, key_df, subset = _keep_eval_phase(df, key_df)
        codes = _id_codes(df["utt_id"], key_df["utt_id"]) if "utt_id" in df.columns and "utt_id" in key_df else None
        if codes is None or _repeated(codes[0]):  # repeated score ids: the error naming them, or --dedupe
            df = drop_duplicate_trials(df, dedupe=dedupe, source=str(path))
            codes = None
        df = join_key(
            df.drop(columns=["label"], errors="ignore"),
            key_df,
            scores_source=str(path),
            key_source=str(key),
            codes=codes,
        )
        df.attrs["unique_ids"] = len(df)  # join_key checked them: later checks of this table skip the hash pass
        if subset:
            df.attrs["subset"] = subset
    else:
        has_labels = columns.label_col is not None or manifest is None or _has_label_column(path)
        df = drop_duplicate_trials(read_scores(path, columns, labels=has_labels), dedupe=dedupe, source=str(path))
    if manifest is not None:
        from cm_cli.core.artifacts import read_table

        man = read_table(manifest, name="manifest")
        df = join_manifest(df, man, source=str(path), manifest_source=str(manifest))
        if "label" not in df.columns:
            raise CmError(f"{path}: no labels in the scores or the manifest")
    return df
