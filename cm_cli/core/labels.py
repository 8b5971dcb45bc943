"""The one map from label text to cm's two classes, ``bonafide`` and ``spoof``.

Protocol parsers, score/key readers, the metrics and the report all turn label text into
classes; doing it here, from one registry per vocabulary, keeps them from drifting apart
(one of them used to take ``genuine``, ``1`` or ``true`` as bona fide and file every other
value, typos included, as spoof). Numbers are never guessed: 1 means bona fide in some
toolkits and spoof in others, so a numeric label column needs its bona fide value named.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from cm_cli.core.errors import CmError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = [
    "BONAFIDE",
    "SPOOF",
    "LABELS",
    "ASVSPOOF_KEYS",
    "IN_THE_WILD_LABELS",
    "SCORE_FILE_LABELS",
    "label_class",
    "label_classes",
    "is_bonafide",
    "label_notes",
]

BONAFIDE, SPOOF = "bonafide", "spoof"
LABELS = (BONAFIDE, SPOOF)  # the values of every ``label`` column cm writes

# The KEY column of the ASVspoof 2019 LA, 2021 LA/DF and 5 protocols, and what the official
# evaluation packages compare against (``== 'bonafide'`` / ``== 'spoof'``): exact, lower case.
ASVSPOOF_KEYS: Mapping[str, str] = {"bonafide": BONAFIDE, "spoof": SPOOF}
# In-the-Wild's meta.csv (Müller et al., 2022): ``bona-fide`` / ``spoof``.
IN_THE_WILD_LABELS: Mapping[str, str] = {"bona-fide": BONAFIDE, "bonafide": BONAFIDE, "spoof": SPOOF}
# Score and key files made by anyone: any corpus's spelling, compared stripped and case-insensitively.
SCORE_FILE_LABELS: Mapping[str, str] = {**ASVSPOOF_KEYS, **IN_THE_WILD_LABELS}

_NOTES: contextvars.ContextVar[list | None] = contextvars.ContextVar("cm_label_notes", default=None)

_HINT = "labels must be 'bonafide' (or 'bona-fide') or 'spoof'; otherwise name the bona fide value"


def label_class(text: Any, vocabulary: Mapping[str, str] = SCORE_FILE_LABELS, *, exact: bool = False) -> str | None:
    """``bonafide``/``spoof`` for one label, ``None`` when ``vocabulary`` does not know it.

    ``exact``: compare the text as it is (official protocols); otherwise stripped and lower-cased.
    """
    if text is None or not isinstance(text, str):
        return None
    return vocabulary.get(text if exact else text.strip().lower())


def label_classes(
    values,
    *,
    source: str,
    column: str = "label",
    bonafide_value: str | None = None,
    vocabulary: Mapping[str, str] = SCORE_FILE_LABELS,
    counts=None,
) -> "np.ndarray":
    """Label text -> object array of ``bonafide``/``spoof``; CmError naming unknown or missing values.

    ``bonafide_value``: the bona fide label as text (``0`` matches a column of numbers
    written as text), every other value is spoof; at least one row must have it.
    ``counts``: how many rows each value stands for, when ``values`` are a column's distinct values
    (so a note about normalised spellings counts rows, not distinct texts).
    """
    import numpy as np
    import pandas as pd

    text = pd.Series(values, dtype="object").astype("string").str.strip()
    if bonafide_value is not None:
        wanted = str(bonafide_value).strip()
        is_bona = text == wanted
        if not is_bona.fillna(False).any():
            found = ", ".join(sorted(map(str, text.dropna().unique()))[:10])
            raise CmError(
                f"{source}: no row has {column} == {wanted!r}: only one class", f"values found in {column}: {found}"
            )
        if text.isna().any():
            row = int(text.isna().to_numpy().argmax())
            raise CmError(
                f"{source}: {int(text.isna().sum())} missing value(s) in label column {column!r} (first at row {row})"
            )
        return np.where(is_bona.to_numpy(dtype=bool), BONAFIDE, SPOOF).astype(object)
    classes = text.str.lower().map(dict(vocabulary))
    if classes.isna().any():
        unknown = sorted(set(text[classes.isna() & text.notna()].unique()))
        shown = ", ".join(repr(str(v)) for v in unknown[:8]) or "missing values"
        raise CmError(f"{source}: unknown label value(s) {shown} in column {column!r}", _HINT, option="bonafide_value")
    _note_normalised(
        pd.Series(values, dtype="object").astype("string"), vocabulary, source=source, column=column, counts=counts
    )
    return classes.to_numpy(dtype=object)


@contextlib.contextmanager
def label_notes() -> Iterator[list[str]]:
    """Collect, for the caller to report, a note per label column whose values were normalised.

    Decision (docs/hostile-input.md): score and key files made by anyone are read case- and
    space-insensitively (``Bonafide``, `` SPOOF ``), but the official ASVspoof scorers
    compare ``== 'bonafide'`` exactly and would count none of those rows, so every such
    column is reported with its count rather than accepted silently.
    """
    notes: list[str] = []
    token = _NOTES.set(notes)
    try:
        yield notes
    finally:
        _NOTES.reset(token)


def _note_normalised(raw, vocabulary: Mapping[str, str], *, source: str, column: str, counts=None) -> None:
    import pandas as pd

    notes = _NOTES.get()
    if notes is None:
        return
    weights = pd.Series(1 if counts is None else list(counts), index=raw.index, dtype="int64")
    inexact = raw.notna() & ~raw.isin(list(vocabulary))
    if not inexact.any():
        return
    per_value = weights[inexact].groupby(raw[inexact].to_numpy(dtype=object)).sum().sort_values(ascending=False)
    shown = ", ".join(f"{str(v)!r} x{int(n)}" for v, n in per_value.head(5).items())
    notes.append(
        f"{source}: {int(per_value.sum())} label(s) in column {column!r} normalised to the official spelling "
        f"({shown}); the official ASVspoof scorers compare labels exactly and would not count them"
    )


def is_bonafide(values, *, source: str, column: str = "label", bonafide_value: str | None = None) -> "np.ndarray":
    """Boolean mask of bona fide rows (``label_classes`` rules: unknown or missing labels are an error)."""
    return label_classes(values, source=source, column=column, bonafide_value=bonafide_value) == BONAFIDE
