"""Render report tables (pandas DataFrames of already-formatted cells) as Markdown, HTML and LaTeX.

The report formats numbers once, in the section code, so all three outputs show the
same digits; this module only lays cells out and escapes them for each format.
LaTeX uses booktabs rules (``\\toprule``, ``\\midrule``, ``\\bottomrule``).
"""

from __future__ import annotations

import html
import math
import numbers
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["Table", "fmt", "fmt_pct", "fmt_ci", "to_markdown", "to_html", "to_latex"]


@dataclass
class Table:
    """A captioned table; ``name`` is its file stem (``tables/<name>.tex``) and anchor."""

    name: str
    caption: str
    frame: "pd.DataFrame"


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return isinstance(value, float) and math.isnan(value)
    except TypeError:
        return False


def fmt(value: Any, digits: int = 3) -> str:
    """A number with ``digits`` decimals, integers as is, missing as an en dash."""
    if _missing(value):
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if number.is_integer() and abs(number) >= 1000:
        return f"{int(number)}"
    return f"{number:.{digits}f}"


def fmt_pct(value: Any, digits: int = 2) -> str:
    """A rate stored as a fraction, shown in percent (no sign)."""
    if _missing(value):
        return "–"
    return f"{100.0 * float(value):.{digits}f}"


def fmt_ci(low: Any, high: Any, *, scale: float = 1.0, digits: int = 2) -> str:
    """``[low, high]`` scaled (100 for percent), or an en dash."""
    if _missing(low) or _missing(high):
        return "–"
    return f"[{scale * float(low):.{digits}f}, {scale * float(high):.{digits}f}]"


def _cells(table: Table) -> tuple[list[str], list[list[str]]]:
    header = [str(c) for c in table.frame.columns]
    rows = [["–" if _missing(v) else str(v) for v in row] for row in table.frame.itertuples(index=False)]
    return header, rows


def _numeric(cell: str) -> bool:
    return bool(re.match(r"^[\s+\-−–]*[\d.]+", cell)) or cell in ("–",)


def _align(header: list[str], rows: list[list[str]]) -> list[str]:
    """'r' for columns whose cells all look numeric, else 'l'."""
    aligns = []
    for j in range(len(header)):
        column = [r[j] for r in rows]
        aligns.append("r" if column and all(_numeric(c) for c in column) else "l")
    return aligns


def to_markdown(table: Table) -> str:
    """A GitHub-flavoured Markdown table with its caption above it in italics."""
    header, rows = _cells(table)
    aligns = _align(header, rows)

    def esc(cell: str) -> str:
        return cell.replace("|", "\\|").replace("\n", " ")

    lines = [
        f"*{table.caption}*",
        "",
        "| " + " | ".join(esc(h) for h in header) + " |",
        "|" + "|".join("---:" if a == "r" else ":---" for a in aligns) + "|",
    ]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def to_html(table: Table) -> str:
    """A ``<table>`` with caption; numeric columns right-aligned via a class."""
    header, rows = _cells(table)
    aligns = _align(header, rows)
    parts = [
        f'<table id="tab-{html.escape(table.name)}"><caption>{html.escape(table.caption)}</caption>',
        "<thead><tr>",
    ]
    parts += [f'<th class="{"num" if a == "r" else ""}">{html.escape(h)}</th>' for h, a in zip(header, aligns)]
    parts.append("</tr></thead><tbody>")
    for row in rows:
        parts.append(
            "<tr>"
            + "".join(f'<td class="{"num" if a == "r" else ""}">{html.escape(c)}</td>' for c, a in zip(row, aligns))
            + "</tr>"
        )
    parts.append("</tbody></table>")
    return "".join(parts)


_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "–": "--",
    "−": "$-$",
    "Δ": r"$\Delta$",
    "λ": r"$\lambda$",
}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


def to_latex(table: Table) -> str:
    """A ``table`` float with a booktabs ``tabular``, caption and ``tab:<name>`` label."""
    header, rows = _cells(table)
    aligns = _align(header, rows)
    lines = [
        r"% requires \usepackage{booktabs}",
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{_latex_escape(table.caption)}}}",
        rf"\label{{tab:{table.name}}}",
        rf"\begin{{tabular}}{{{''.join(aligns)}}}",
        r"\toprule",
        " & ".join(_latex_escape(h) for h in header) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(_latex_escape(c) for c in row) + r" \\" for row in rows]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)
