"""ASV and SASV score files as the corpora ship them -> one table (key, score, ...): cm eval's t-DCF and SASV inputs.

The t-DCF scores a countermeasure in tandem with a fixed ASV system, so it needs that
system's scores with keys ``target`` / ``nontarget`` / ``spoof``. Layouts read:

- a table with a header (TSV/CSV/Parquet) holding a key and a score column
  (``--asv-key-col``/``--asv-score-col``; detected: ``key``, ``asv_key``, ``asv-label``,
  ``asv_label`` and ``score``, ``asv_score``, ``asv-score``), optionally a trial id;
- ASVspoof 2019 LA ``ASVspoof2019.LA.asv.{dev,eval}.gi.trl.scores.txt``: three
  whitespace-separated fields ``SOURCE KEY SCORE`` (source ``bonafide`` or the attack id);
- ASVspoof 2021 LA keys ``ASV/trial_metadata.txt`` (eight fields, key in the sixth, phase in
  the eighth) with ``ASV/ASVTorch_Kaldi/score.txt`` (``SPEAKER TRIAL SCORE``, same rows):
  give the ``ASV`` folder or the ``score.txt``; rows of the chosen phase (``eval``) are kept;
- ASVspoof 5 Track 2 SASV files: a TSV with ``spk filename cm-score asv-score sasv-score``
  and a key TSV ``spk filename cm-label asv-label`` (or the labels in the same file).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from cm_cli.core.errors import CmError
from cm_cli.evaluation.readers import _first_line, _is_number

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["ASV_KEYS", "read_asv_scores", "read_sasv_scores"]

ASV_KEYS = ("target", "nontarget", "spoof")
KEY_COLUMNS = ("key", "asv_key", "asv-label", "asv_label", "asv-key")
SCORE_COLUMNS = ("score", "asv_score", "asv-score")
ID_COLUMNS = ("utt_id", "filename", "trial", "trial_anon", "flac_file")
PHASES_2021 = ("progress", "eval", "hidden_track")


def _first_fields(path: Path) -> tuple[list[str], str]:
    """Fields of the first non-empty line and the separator the table is read with."""
    line = _first_line(path)
    if line is None:
        raise CmError(f"{path}: empty file", "an ASV score file needs one line per trial")
    sep = "\t" if "\t" in line else "," if "," in line else r"\s+"
    return (line.split() if sep == r"\s+" else line.split(sep)), sep


def _read_text(path: Path, *, header: bool) -> "pd.DataFrame":
    import pandas as pd

    first, sep = _first_fields(path)
    try:
        return pd.read_csv(
            path,
            sep=sep,
            header=0 if header else None,
            dtype=str,
            keep_default_na=False,
            engine="python" if sep == r"\s+" else "c",
        )
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise CmError(
            f"{path}: not a readable score table ({str(exc).splitlines()[0]}; first row {first[:4]})"
        ) from None


def _finish(df: "pd.DataFrame", source: str) -> "pd.DataFrame":
    import numpy as np
    import pandas as pd

    df = df.copy()
    df["key"] = df["key"].astype(str).str.strip().str.lower()
    bad = sorted(set(df["key"]) - set(ASV_KEYS))
    if bad:
        raise CmError(
            f"{source}: key values {', '.join(map(repr, bad[:5]))} are not target, nontarget or spoof",
            "name the ASV key column",
            option="asv_key_col",
        )
    scores = pd.to_numeric(df["score"], errors="coerce").to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(scores)):
        first = int(np.flatnonzero(~np.isfinite(scores))[0])
        raise CmError(
            f"{source}: {int(np.count_nonzero(~np.isfinite(scores)))} ASV scores are not finite numbers "
            f"(first at row {first}: {df['score'].iloc[first]!r})",
            "name the score column",
            option="asv_score_col",
        )
    df["score"] = scores
    missing = [k for k in ASV_KEYS if not (df["key"] == k).any()]
    df.attrs["missing_keys"] = missing
    df.attrs["source"] = source
    return df.reset_index(drop=True)


def _pick(
    df: "pd.DataFrame",
    explicit: str | None,
    candidates: Sequence[str],
    what: str,
    source: str,
    *,
    required: bool = True,
) -> str | None:
    if explicit is not None:
        if explicit not in df.columns:
            raise CmError(
                f"{source}: no {what} column {explicit!r}", f"columns found: {', '.join(map(str, df.columns))}"
            )
        return explicit
    found = next((c for c in candidates if c in df.columns), None)
    if found is None and required:
        raise CmError(
            f"{source}: no ASV {what} column (looked for {', '.join(candidates)})",
            f"name it; columns found: {', '.join(map(str, df.columns))}",
            option=f"asv_{what}_col",
        )
    return found


def _read_2021(metadata: Path, scores: Path, phase: str) -> "pd.DataFrame":
    import pandas as pd

    if phase not in PHASES_2021:
        raise CmError(f"ASVspoof 2021 phase {phase!r} unknown", f"use one of {', '.join(PHASES_2021)}")
    meta = _read_text(metadata, header=False)
    table = _read_text(scores, header=False)
    if meta.shape[1] != 8:
        raise CmError(f"{metadata}: expected 8 columns (ASVspoof 2021 ASV trial_metadata.txt), found {meta.shape[1]}")
    if table.shape[1] != 3 or len(table) != len(meta):
        raise CmError(
            f"{scores}: expected 3 columns and {len(meta)} rows like {metadata.name}, "
            f"found {table.shape[1]} columns and {len(table)} rows"
        )
    if not (table[1].to_numpy() == meta[1].to_numpy()).all():
        row = int((table[1] != meta[1]).to_numpy().argmax())
        raise CmError(
            f"{scores}:{row + 1}: trial {table[1].iloc[row]!r} is not the trial of {metadata.name} "
            f"line {row + 1} ({meta[1].iloc[row]!r})"
        )
    keep = (meta[7] == phase).to_numpy()
    if not keep.any():
        raise CmError(f"{metadata}: no trials of phase {phase!r}", f"phases found: {', '.join(sorted(set(meta[7])))}")
    df = pd.DataFrame(
        {
            "utt_id": meta[1],
            "speaker": meta[0],
            "codec": meta[2],
            "transmission": meta[3],
            "attack": meta[4].where(meta[4] != "-", None),
            "key": meta[5],
            "score": table[2],
        }
    )[keep]
    return _finish(df, str(scores))


def read_asv_scores(
    path: str | Path,
    *,
    score_col: str | None = None,
    key_col: str | None = None,
    id_col: str | None = None,
    phase: str = "eval",
) -> "pd.DataFrame":
    """ASV trials as a table: ``key`` and ``score`` (float64), plus ``utt_id``/``attack`` where the file has them."""
    path = Path(path)
    if path.is_dir() and (path / "trial_metadata.txt").is_file():
        found = sorted(path.glob("*/score.txt"))
        if not found:
            raise CmError(
                f"{path}: trial_metadata.txt but no */score.txt beside it",
                "ASVspoof 2021 keys ship ASV/ASVTorch_Kaldi/score.txt",
            )
        return _read_2021(path / "trial_metadata.txt", found[0], phase)
    if path.name == "score.txt" and (path.parent.parent / "trial_metadata.txt").is_file():
        return _read_2021(path.parent.parent / "trial_metadata.txt", path, phase)
    if path.is_file() and path.name == "trial_metadata.txt" and len(_first_fields(path)[0]) == 8:
        beside = sorted(path.parent.glob("*/score.txt"))
        raise CmError(
            f"{path}: this is the ASVspoof 2021 ASV key, which holds no ASV scores; pass its folder "
            f"{path.parent} instead (it holds trial_metadata.txt and "
            f"{beside[0].relative_to(path.parent) if beside else 'ASVTorch_Kaldi/score.txt'})"
        )
    if not path.exists():
        raise CmError(f"{path}: no such ASV score file")
    if path.is_dir() or path.suffix == ".parquet":
        from cm_cli.core.artifacts import read_table

        df = read_table(path)
    else:
        fields = [f.strip() for f in _first_fields(path)[0]]
        headerless = any(f.lower() in ASV_KEYS for f in fields) or any(_is_number(f) for f in fields)
        if headerless:
            df = _read_text(path, header=False)
            if df.shape[1] != 3:
                raise CmError(
                    f"{path}: a headerless ASV score file has 3 columns (SOURCE KEY SCORE, ASVspoof 2019), "
                    f"found {df.shape[1]}",
                    "or give the file a header with key and score columns",
                )
            df = df.rename(columns={0: "source", 1: "key", 2: "score"})
            df["attack"] = df["source"].where(df["source"].str.lower() != "bonafide", None)
            return _finish(df.drop(columns=["source"]), str(path))
        df = _read_text(path, header=True)
    df.columns = [str(c).strip() for c in df.columns]
    source = str(path)
    key = _pick(df, key_col, KEY_COLUMNS, "key", source)
    score = _pick(df, score_col, SCORE_COLUMNS, "score", source)
    ident = _pick(df, id_col, ID_COLUMNS, "id", source, required=False)
    renamed = {key: "key", score: "score"}
    if ident:
        renamed[ident] = "utt_id"
    keep = [c for c in df.columns if c not in renamed and c not in ("key", "score", "utt_id")]
    out = df[list(renamed) + keep].rename(columns=renamed)
    if "utt_id" in out:
        out["utt_id"] = out["utt_id"].astype(str)
    return _finish(out, source)


def read_sasv_scores(path: str | Path, *, key: str | Path | None = None) -> "pd.DataFrame":
    """ASVspoof 5 Track 2 trials: ``speaker, utt_id, key`` (ASV label), ``cm_label`` and the score columns present."""
    path = Path(path)
    if not path.is_file():
        raise CmError(f"{path}: no such SASV score file")
    df = _read_text(path, header=True).rename(columns={"tar_spk_anon": "spk", "trial_anon": "filename"})
    if key is not None:
        keys = _read_text(Path(key), header=True).rename(
            columns={"tar_spk_anon": "spk", "trial_anon": "filename", "asv_label": "asv-label", "cm_label": "cm-label"}
        )
        join = [c for c in ("spk", "filename") if c in df.columns and c in keys.columns]
        if "filename" not in join:
            raise CmError(f"{key}: the SASV key needs a filename column like {path.name}")
        wanted = join + [c for c in ("asv-label", "cm-label") if c in keys.columns]
        merged = df.merge(keys[wanted], on=join, how="left", suffixes=("", "_key"), indicator=True)
        lost = int((merged["_merge"] != "both").sum())
        if lost:
            example = merged.loc[merged["_merge"] != "both", "filename"].iloc[0]
            raise CmError(f"{path}: {lost} of {len(df)} trials have no row in {Path(key).name} (first: {example})")
        df = merged.drop(columns=["_merge"])
    df = df.rename(columns={"asv_label": "asv-label", "cm_label": "cm-label"})
    if "asv-label" not in df.columns:
        raise CmError(f"{path}: no asv-label column", "give the SASV key file", option="sasv_key")
    out = df.rename(
        columns={
            "spk": "speaker",
            "filename": "utt_id",
            "asv-label": "key",
            "cm-label": "cm_label",
            "sasv-score": "sasv_score",
            "cm-score": "cm_score",
            "asv-score": "asv_score",
        }
    )
    if "sasv_score" not in out.columns and not {"cm_score", "asv_score"} <= set(out.columns):
        raise CmError(f"{path}: needs a sasv-score column, or cm-score and asv-score columns")
    import numpy as np
    import pandas as pd

    for column in ("sasv_score", "cm_score", "asv_score"):
        if column in out.columns:
            values = pd.to_numeric(out[column], errors="coerce").to_numpy(dtype=np.float64)
            if not np.all(np.isfinite(values)):
                raise CmError(
                    f"{path}: {int(np.count_nonzero(~np.isfinite(values)))} {column.replace('_', '-')} "
                    "values are NaN or not numbers"
                )
            out[column] = values
    out["score"] = out["sasv_score"] if "sasv_score" in out.columns else out["asv_score"]
    return _finish(out, str(path))
