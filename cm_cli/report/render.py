"""Assemble the report: collect artifacts, build sections, write report.md, report.html and LaTeX tables.

The HTML is self-contained (figures inlined as base64 PNG, CSS in the page), so it
can be mailed or attached to a paper review as one file. Markdown links the same
PNGs under ``figures/``.
"""

from __future__ import annotations

import base64
import html
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from cm_cli.core.errors import CmError
from cm_cli.report.blocks import Figure, FigureDir, Note, Section
from cm_cli.report.tables import Table, to_html, to_latex, to_markdown

__all__ = ["ReportResult", "build_report", "render_markdown", "render_html"]


@dataclass
class ReportResult:
    """Paths written and what was found or skipped."""

    out: Path
    markdown: Path
    html: Path
    figures: list[Path] = field(default_factory=list)
    tables: list[Path] = field(default_factory=list)
    counts: dict = field(default_factory=dict)
    corpora: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "out": str(self.out),
            "report_md": str(self.markdown),
            "report_html": str(self.html),
            "figures": [str(p) for p in self.figures],
            "tables": [str(p) for p in self.tables],
            "counts": self.counts,
            "corpora": self.corpora,
            "skipped": self.skipped,
        }


def _walk(section: Section, depth: int = 2) -> Iterable[tuple[int, object]]:
    yield depth, section
    for block in section.blocks:
        if isinstance(block, Section):
            yield from _walk(block, depth + 1)
        else:
            yield depth, block


# --------------------------------------------------------------------------- markdown


def render_markdown(
    title: str, intro: Sequence[str], sections: Sequence[Section], *, figures_rel: str = "figures"
) -> str:
    lines = [f"# {title}", ""]
    lines += [*intro, ""]
    for section in sections:
        for depth, block in _walk(section):
            if isinstance(block, Section):
                lines += [f"{'#' * min(depth, 6)} {block.title}", ""]
            elif isinstance(block, Table):
                lines += [to_markdown(block), ""]
            elif isinstance(block, Figure):
                lines += [f"![{block.caption}]({figures_rel}/{block.path.name})", "", f"*{block.caption}*", ""]
            elif isinstance(block, Note):
                lines += [f"> Skipped: {block.text}", ""]
            else:
                lines += [str(block), ""]
    return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------------- html

_CSS = """
:root { --ink: #1b1b1b; --muted: #5f5f5f; --rule: #d6d6d6; --accent: #3b6aa0; }
* { box-sizing: border-box; }
body { font: 15px/1.55 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--ink);
       max-width: 1080px; margin: 2rem auto; padding: 0 1.5rem; background: #fff; }
h1 { font-size: 1.9rem; margin-bottom: .2rem; }
h2 { font-size: 1.45rem; border-bottom: 2px solid var(--ink); padding-bottom: .2rem; margin-top: 2.6rem; }
h3 { font-size: 1.15rem; margin-top: 1.8rem; }
h4, h5, h6 { font-size: 1rem; margin-top: 1.4rem; color: var(--muted); }
code { font: .88em/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; background: #f3f3f3;
       padding: .05rem .25rem; border-radius: 3px; }
pre { background: #f6f6f6; border: 1px solid var(--rule); padding: .7rem; overflow-x: auto; font-size: .8rem; }
pre code { background: none; padding: 0; }
.table-wrap { max-width: 100%; overflow-x: auto; margin: 0 0 1.4rem; }
table { border-collapse: collapse; margin: 0; font-size: .85rem; }
p.caption { text-align: left; font-style: italic; color: var(--muted); margin: .8rem 0 .35rem; font-size: .85rem; }
th, td { padding: .28rem .6rem; }
td { max-width: 28rem; overflow-wrap: anywhere; }
th, td.num { white-space: nowrap; }
thead th { border-top: 2px solid var(--ink); border-bottom: 1px solid var(--ink); text-align: left; }
tbody tr:last-child td { border-bottom: 2px solid var(--ink); }
tbody tr:nth-child(even) { background: #f8f8f8; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1rem 0 1.6rem; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--rule); }
figcaption { font-size: .85rem; color: var(--muted); margin-top: .3rem; }
.note { border-left: 3px solid #c9a227; background: #fbf7ea; padding: .4rem .8rem; margin: .6rem 0; font-size: .9rem; }
.meta { color: var(--muted); font-size: .9rem; }
nav.toc { border: 1px solid var(--rule); padding: .6rem 1.2rem; margin: 1rem 0 2rem; font-size: .9rem; }
nav.toc ul { margin: .2rem 0; padding-left: 1.2rem; }
"""


def _table_html(table: Table) -> str:
    """The caption above, at the page's width, and the table in a box that scrolls sideways when it is wider
    than the page: neither is cut at the right edge, and the page itself never scrolls."""
    markup = to_html(table)
    caption = re.search(r"<caption>(.*?)</caption>", markup, flags=re.S)
    if caption is None:
        return f'<div class="table-wrap">{markup}</div>'
    markup = markup.replace(caption.group(0), "", 1)
    return f'<p class="caption">{caption.group(1)}</p><div class="table-wrap">{markup}</div>'


def _inline(text: str) -> str:
    """Escape, then render `code` and **bold** spans."""
    escaped = html.escape(text, quote=False)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)


def _paragraph(text: str) -> str:
    if text.startswith("```"):
        body = text.strip("`").lstrip("\n")
        return f"<pre><code>{html.escape(body.rstrip())}</code></pre>"
    if text.lstrip().startswith("- "):
        items = [line.strip()[2:] for line in text.splitlines() if line.strip().startswith("- ")]
        return "<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>"
    return f"<p>{_inline(text)}</p>"


def _image(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def render_html(title: str, intro: Sequence[str], sections: Sequence[Section]) -> str:
    toc = ['<nav class="toc"><strong>Contents</strong><ul>']
    for section in sections:
        toc.append(f'<li><a href="#{section.anchor}">{html.escape(section.title)}</a>')
        subs = [b for b in section.blocks if isinstance(b, Section)]
        if subs:
            toc.append(
                "<ul>"
                + "".join(f'<li><a href="#{section.anchor}--{s.anchor}">{html.escape(s.title)}</a></li>' for s in subs)
                + "</ul>"
            )
        toc.append("</li>")
    toc.append("</ul></nav>")
    body = [f"<h1>{html.escape(title)}</h1>"]
    body += [_paragraph(p).replace("<p>", '<p class="meta">', 1) for p in intro]
    body += toc
    for section in sections:
        for depth, block in _walk(section):
            if isinstance(block, Section):
                anchor = section.anchor if block is section else f"{section.anchor}--{block.anchor}"
                body.append(f'<h{min(depth, 6)} id="{anchor}">{html.escape(block.title)}</h{min(depth, 6)}>')
            elif isinstance(block, Table):
                body.append(_table_html(block))
            elif isinstance(block, Figure):
                body.append(
                    f'<figure><img src="{_image(block.path)}" alt="{html.escape(block.caption)}">'
                    f"<figcaption>{_inline(block.caption)}</figcaption></figure>"
                )
            elif isinstance(block, Note):
                body.append(f'<p class="note"><strong>Skipped:</strong> {_inline(block.text)}</p>')
            else:
                body.append(_paragraph(str(block)))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


# --------------------------------------------------------------------------- build


def _common_base(paths: Sequence[Path]) -> Path | None:
    try:
        return Path(os.path.commonpath([str(p.resolve()) for p in paths]))
    except ValueError:
        return None


def _prepare_out(out: Path) -> None:
    from cm_cli.core.artifacts import ensure_writable_dir, read_json

    ensure_writable_dir(out)
    record = out / "cm.json"
    if record.is_file():
        kind = (read_json(record) or {}).get("kind")
        if kind not in (None, "report"):
            raise CmError(
                f"{out} already holds a '{kind}' artifact, not a report",
                "write the report to another directory",
                option="out",
            )
    for sub, pattern in (("figures", "*.png"), ("tables", "*.tex")):
        for stale in (out / sub).glob(pattern) if (out / sub).is_dir() else []:
            stale.unlink()


def _collect(dirs: Sequence[str | os.PathLike], out: Path):
    """The artifacts under ``dirs``, never the report's own ``out``; none found is an error naming what was sought."""
    from cm_cli.report.collect import LOOKED_FOR, collect

    collection = collect(dirs, exclude=[out])
    if collection.empty:
        looked = "; ".join(LOOKED_FOR)
        raise CmError(
            f"no cm artifacts found under {', '.join(str(d) for d in dirs)} (looked for: {looked})",
            "give the output directories of cm train, cm eval, cm loao, cm probe, cm cka or cm patch",
        )
    return collection


def _runs_section(collection, fig: FigureDir, corpora: list[str]) -> Section:
    """The runs table and the cross-corpus table; corpora are named so nobody reads them as pooled."""
    from cm_cli.report.sections_eval import HINTS, cross_corpus_table, run_table

    runs_section = Section("Runs")
    if collection.runs:
        runs_section.add(run_table(collection.runs, fig.table_name("runs")))
    else:
        runs_section.add(Note(f"No training runs found: run {HINTS['run']}"))
    if len(corpora) > 1:
        runs_section.add(
            f"Results come from {len(corpora)} corpora ({', '.join(corpora)}); each has its own section "
            "and they are never pooled."
        )
    across = cross_corpus_table(collection.evals, fig.table_name("cross-corpus"))
    if across is not None:
        runs_section.add(across)
    return runs_section


def _sections(collection, fig: FigureDir, corpora: list[str]) -> list[Section]:
    """Runs, one section per corpus, analysis and provenance, in reading order."""
    from cm_cli.report.sections_analysis import analysis_section, provenance_section
    from cm_cli.report.sections_eval import corpus_section

    base = _common_base(collection.roots)
    sections = [_runs_section(collection, fig, corpora)]
    for corpus in corpora:
        sections.append(
            corpus_section(
                corpus,
                [r for r in collection.runs if r.corpus == corpus],
                [e for e in collection.evals if e.corpus == corpus],
                fig,
            )
        )
    sections.append(analysis_section(collection, fig, base=base))
    sections.append(provenance_section(collection, fig, base=base))
    return sections


def _intro(dirs: Sequence[str | os.PathLike], counts: dict) -> list[str]:
    """What was found and the units and conventions every number below uses."""
    found = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    return [
        f"Generated {time.strftime('%Y-%m-%d %H:%M')} by `cm report` from "
        f"{', '.join(f'`{d}`' for d in dirs)}: {found}. EER and error rates in %, "
        "DCF normalised (p_spoof 0.05, C_miss 1, C_fa 10 unless the evaluation says otherwise), "
        "scores higher = more bona fide."
    ]


def _inventory(sections: Sequence[Section]) -> tuple[list[Table], list[Path], list[str]]:
    """Tables, figure paths and skip notes of all sections, for LaTeX export and the result record."""
    tables, figures_written, skipped = [], [], []
    for section in sections:
        for _, block in _walk(section):
            if isinstance(block, Table):
                tables.append(block)
            elif isinstance(block, Figure):
                figures_written.append(block.path)
            elif isinstance(block, Note):
                skipped.append(block.text)
    return tables, figures_written, skipped


def _write_pages(out: Path, title: str, intro: list[str], sections: Sequence[Section]) -> tuple[Path, Path]:
    """report.md and report.html, both written before either is renamed into place."""
    from cm_cli.core.artifacts import atomic_path

    markdown = out / "report.md"
    html_path = out / "report.html"
    md_text, html_text = render_markdown(title, intro, sections), render_html(title, intro, sections)
    # both written before either is renamed: a full disk leaves neither, not a report.md without its html
    with atomic_path(markdown) as md_tmp, atomic_path(html_path) as html_tmp:
        md_tmp.write_text(md_text, encoding="utf-8")
        html_tmp.write_text(html_text, encoding="utf-8")
    return markdown, html_path


def _write_latex(out: Path, tables: Sequence[Table]) -> list[Path]:
    """One .tex per table and an index that \\inputs them all, for pasting into a paper."""
    from cm_cli.core.artifacts import atomic_path

    tex_paths: list[Path] = []
    for table in tables:
        path = out / "tables" / f"{table.name}.tex"
        with atomic_path(path) as tmp:
            tmp.write_text(to_latex(table), encoding="utf-8")
        tex_paths.append(path)
    index = out / "tables" / "all_tables.tex"
    with atomic_path(index) as tmp:
        tmp.write_text(
            "% \\usepackage{booktabs}\n" + "".join(f"\\input{{tables/{p.stem}}}\n" for p in tex_paths), encoding="utf-8"
        )
    tex_paths.append(index)
    return tex_paths


def build_report(
    dirs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    latex: bool = False,
    title: str = "Countermeasure report",
    argv: Sequence[str] | None = None,
) -> ReportResult:
    """Collect the artifacts under ``dirs`` and write the report into ``out``.

    Raises ``CmError`` listing what was looked for when nothing is found.
    """
    from cm_cli.core.artifacts import OutputDir

    out = Path(out)
    collection = _collect(dirs, out)
    _prepare_out(out)
    fig = FigureDir(out / "figures")
    corpora = collection.corpora()
    sections = _sections(collection, fig, corpora)
    counts = collection.counts()
    intro = _intro(dirs, counts)
    tables, figures_written, skipped = _inventory(sections)

    options = {"dirs": [str(Path(d).resolve()) for d in dirs], "latex": latex, "title": title}
    with OutputDir(out, kind="report", options=options, inputs=[], force=True, argv=argv) as directory:
        markdown, html_path = _write_pages(out, title, intro, sections)
        tex_paths = _write_latex(out, tables) if latex else []
        result = ReportResult(
            out=out,
            markdown=markdown,
            html=html_path,
            figures=figures_written,
            tables=tex_paths,
            counts=counts,
            corpora=corpora,
            skipped=skipped,
        )
        directory.finish(
            outputs={"report_md": str(markdown), "report_html": str(html_path)},
            summary={
                "counts": counts,
                "corpora": corpora,
                "n_figures": len(figures_written),
                "n_skipped": len(skipped),
            },
        )
    return result
