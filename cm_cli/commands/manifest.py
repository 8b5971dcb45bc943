"""`cm manifest`: one Parquet table of every utterance of a corpus, all splits."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from cm_cli.commands._common import Corpus, ForceOpt, OutDir, console, emit, get_ctx, print_dry_run, rich_reporter


class Phase(str, enum.Enum):
    eval = "eval"
    progress = "progress"
    hidden = "hidden"
    all = "all"


def manifest(
    ctx: typer.Context,
    corpus: Annotated[Corpus, typer.Option("--corpus", "-c", help="Corpus under the data root.")] = Corpus.asvspoof5,
    out: OutDir = None,
    validate: Annotated[
        bool, typer.Option("--validate", help="Check every audio file exists and probe duration and sample rate.")
    ] = False,
    subset: Annotated[
        Optional[int],
        typer.Option("--subset", help="Keep N utterances, stratified by split, label, attack and codec.", min=1),
    ] = None,
    protocol: Annotated[
        Optional[List[Path]],
        typer.Option(
            "--protocol",
            help="Protocol or key file(s) to read instead of the corpus layout's (2019 LA, 2021 LA/DF; .gz accepted; In-the-Wild: meta.csv; MLAAD: its root folder; Codecfake: label/*.txt).",
            show_default=False,
        ),
    ] = None,
    audio_dir: Annotated[
        Optional[Path],
        typer.Option(
            "--audio-dir",
            help="Folder holding the audio named in the protocol (MLAAD: the M-AILABS root).",
            show_default=False,
        ),
    ] = None,
    phase: Annotated[
        Phase,
        typer.Option("--phase", help="ASVspoof 2021 only: evaluation phase to keep (eval, progress, hidden, all)."),
    ] = Phase.eval,
    force: ForceOpt = False,
) -> None:
    """Build a manifest (utterances, labels, attacks, codecs, splits) from a corpus's protocols."""
    from cm_cli.core.errors import UsageError
    from cm_cli.core.progress import use_reporter
    from cm_cli.data.corpora.registry import corpus_spec, corpus_specs
    from cm_cli.data.manifests import make_manifest

    c = get_ctx(ctx)
    spec = corpus_spec(corpus.value)
    takes_protocol = [s.name for s in corpus_specs() if s.accepts_protocol]
    with_phases = [s.name for s in corpus_specs() if s.phases]
    out_dir = out or c.runs_dir / "manifests" / corpus.value
    options = {"corpus": corpus.value, "out": str(out_dir), "validate": validate, "subset": subset, "seed": c.seed}
    if (protocol or audio_dir) and not spec.accepts_protocol:
        raise UsageError(
            f"--protocol/--audio-dir are not supported for {corpus.value}",
            f"they apply to {', '.join(takes_protocol)}; {corpus.value} is read from the data root",
        )
    if phase is not Phase.eval and not spec.phases:
        raise UsageError(f"--phase applies to {' and '.join(with_phases)} only")
    corpus_root = c.corpus_root(corpus.value)
    prepare_kwargs: dict = {}
    extra_options: dict = {}
    if spec.accepts_protocol:
        prepare_kwargs = {
            "protocol": [str(p) for p in protocol] if protocol else None,
            "audio_dir": str(audio_dir) if audio_dir else None,
        }
        extra_options = {
            "protocol": [str(Path(p).resolve()) for p in protocol] if protocol else None,
            "audio_dir": str(audio_dir.resolve()) if audio_dir else None,
        }
        if spec.phases:
            prepare_kwargs["phase"] = extra_options["phase"] = phase.value
        if protocol and not corpus_root.exists():
            corpus_root = audio_dir if audio_dir else Path(protocol[0]).parent
        options.update(extra_options)
    if c.dry_run:
        print_dry_run(c, "manifest", options)
        return
    with use_reporter(rich_reporter(c)):
        result = make_manifest(
            corpus.value,
            out_dir,
            data_root=c.data_root,
            corpus_root=corpus_root,
            validate=validate,
            subset=subset,
            seed=c.seed,
            workers=c.workers,
            force=force,
            extra_options=extra_options or None,
            prepare_kwargs=prepare_kwargs or None,
        )
    payload = {"manifest": str(result.path), "corpus": corpus.value, "skipped": result.skipped, **result.counts}
    emit(c, payload, lambda: _print_counts(result))


def _print_counts(result) -> None:
    from rich.table import Table

    out = console()
    table = Table(
        title=f"{result.path}" + ("  (already built: reused)" if result.skipped else ""), title_justify="left"
    )
    for column in ("split", "n", "bonafide", "spoof", "speakers", "attacks", "codecs"):
        table.add_column(column, justify="right" if column not in ("split", "attacks", "codecs") else "left")
    for split, info in result.counts.get("splits", {}).items():
        attacks = " ".join(f"{k}:{v}" for k, v in info["attacks"].items())
        codecs = " ".join(f"{k}:{v}" for k, v in info["codecs"].items())
        table.add_row(
            split, str(info["n"]), str(info["bonafide"]), str(info["spoof"]), str(info["speakers"]), attacks, codecs
        )
    out.print(table)
