"""`cm download`: fetch corpora (or build the embedded toy corpus) under the data root."""

from __future__ import annotations

import enum
from typing import Annotated, Optional

import typer

from cm_cli.commands._common import ForceOpt, complete_corpus, console, emit, get_ctx, print_dry_run, rich_reporter


class Source(str, enum.Enum):
    zenodo = "zenodo"
    huggingface = "huggingface"


class Subset(str, enum.Enum):
    protocols = "protocols"
    dev = "dev"
    full = "full"


def download(
    ctx: typer.Context,
    corpus: Annotated[
        Optional[str],
        typer.Argument(
            help="Corpus to fetch: toy builds the embedded synthetic corpus.",
            autocompletion=complete_corpus,
            show_default=False,
        ),
    ] = None,
    size: Annotated[str, typer.Option("--size", help="toy only: small or medium.")] = "small",
    coded: Annotated[
        bool,
        typer.Option(
            "--coded/--clean-only", help="toy only: add coded eval copies (mp3, opus, speex, gsm) as ASVspoof 5 does."
        ),
    ] = True,
    subset: Annotated[
        Subset, typer.Option("--subset", help="protocols (keys only), dev (plus development audio) or full.")
    ] = Subset.full,
    list_: Annotated[
        bool, typer.Option("--list", help="List the downloadable corpora, their files, sizes and licences.")
    ] = False,
    source: Annotated[
        Source,
        typer.Option(
            "--source",
            help="Where real corpora come from: zenodo (the release) or huggingface (the organisers' hub mirror, asvspoof5).",
        ),
    ] = Source.zenodo,
    base_url: Annotated[
        Optional[str],
        typer.Option(
            "--base-url",
            help="Mirror: files are fetched from BASE_URL/<file name> (env CM_MIRROR); with --source huggingface, the hub endpoint.",
            show_default=False,
        ),
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Files downloaded in parallel.", min=1)] = 4,
    retries: Annotated[
        int, typer.Option("--retries", help="Retries per file (exponential backoff, Retry-After honoured).", min=0)
    ] = 5,
    aria2: Annotated[bool, typer.Option("--aria2", help="Use aria2c for the transfers when it is on PATH.")] = False,
    unpack: Annotated[
        bool, typer.Option("--unpack/--no-unpack", help="Unpack the archives into the corpus folder.")
    ] = True,
    model: Annotated[
        Optional[str],
        typer.Option(
            "--model",
            help="Download a pretrained model into the cache instead of a corpus: a zoo name (--list-models) or a hub id.",
            show_default=False,
        ),
    ] = None,
    list_models: Annotated[
        bool,
        typer.Option(
            "--list-models", help="List the zoo's published detectors: source, licence, paper, expected input."
        ),
    ] = False,
    force: ForceOpt = False,
) -> None:
    """Download a corpus into the data root (``toy``: build the synthetic corpus)."""
    from cm_cli.core.errors import UsageError
    from cm_cli.core.progress import use_reporter

    c = get_ctx(ctx)
    if list_:
        _list(c)
        return
    if list_models:
        _list_models(c)
        return
    if model is not None:
        _download_model(c, model, base_url=base_url, retries=retries, force=force)
        return
    if corpus is None:
        raise UsageError("name a corpus to download", "e.g. `cm download toy`, or `cm download --list`")
    if corpus != "toy":
        _download_real(
            c,
            corpus,
            subset=subset.value,
            base_url=base_url,
            jobs=jobs,
            retries=retries,
            aria2=aria2,
            unpack=unpack,
            source=source.value,
        )
        return
    target = c.corpus_root("toy")
    options = {"corpus": corpus, "size": size, "seed": c.seed, "target": str(target), "coded": coded}
    if c.dry_run:
        print_dry_run(c, "download", options)
        return
    from cm_cli.data.corpora.toy import build_toy_corpus

    with use_reporter(rich_reporter(c)):
        info = build_toy_corpus(target, size=size, seed=c.seed, force=force, workers=c.workers)
        added: dict[str, int] = {}
        if coded:
            from cm_cli.degrade.toy_conditions import add_coded_eval_conditions

            added = add_coded_eval_conditions(target, seed=c.seed, workers=c.workers)
    payload = {
        "corpus": "toy",
        "root": str(info.root),
        "size": info.size,
        "seed": info.seed,
        "built": info.built,
        "n_files": info.n_files + sum(added.values()),
        "counts": info.counts,
        "coded_eval_copies": added,
    }
    verb = "built" if info.built else "already present"
    emit(c, payload, f"toy corpus ({info.size}, seed {info.seed}) {verb} at {info.root}: {info.n_files} files")


def _download_real(
    c,
    corpus: str,
    *,
    subset: str,
    base_url: Optional[str],
    jobs: int,
    retries: int,
    aria2: bool,
    unpack: bool,
    source: str = "zenodo",
) -> None:
    from cm_cli.core.errors import UsageError
    from cm_cli.core.progress import use_reporter
    from cm_cli.data.corpora.sources import CORPUS_SOURCES

    if corpus not in CORPUS_SOURCES:
        raise UsageError(f"unknown corpus {corpus!r}", f"available: toy, {', '.join(CORPUS_SOURCES)}")
    mirror = base_url or (c.env.get("CM_MIRROR") if source == "zenodo" else None)
    root = c.corpus_root(corpus)
    if source == "huggingface":
        from cm_cli.data.corpora.hub_mirror import hub_mirror

        hub_mirror(corpus)
    options = {
        "corpus": corpus,
        "subset": subset,
        "source": source,
        "base_url": mirror,
        "target": str(root),
        "jobs": jobs,
        "retries": retries,
        "aria2": aria2,
        "unpack": unpack,
    }
    if c.dry_run:
        print_dry_run(c, "download", options)
        return
    from cm_cli.data.corpora.fetch import download_corpus

    with use_reporter(rich_reporter(c)):
        result = download_corpus(
            corpus,
            root,
            subset=subset,
            base_url=mirror,
            unpack=unpack,
            workers=jobs,
            retries=retries,
            aria2=aria2,
            source_name=source,
        )
    payload = {
        "corpus": corpus,
        "subset": subset,
        "root": str(root),
        "changed": result.changed,
        "files": result.files,
        "unpacked": result.unpacked,
        "warnings": result.warnings,
    }

    def human() -> None:
        out = console()
        for w in result.warnings:
            out.print(f"[yellow]warning:[/] {w}")
        n_new = sum(f["status"] == "downloaded" for f in result.files)
        n_unpacked = sum(not u["skipped"] for u in result.unpacked)
        if not result.changed:
            out.print(f"{corpus} ({subset}) already downloaded and unpacked at {root}: nothing to do")
        else:
            out.print(
                f"{corpus} ({subset}) at {root}: {n_new} file(s) downloaded, "
                f"{len(result.files) - n_new} already present, {n_unpacked} archive(s) unpacked"
            )

    emit(c, payload, human)


def _download_model(c, name: str, *, base_url: Optional[str] = None, retries: int = 5, force: bool = False) -> None:
    from cm_cli.core.errors import CmError
    from cm_cli.models.zoo import ZOO

    if name in ZOO:
        _download_zoo(c, name, base_url=base_url, retries=retries, force=force)
        return
    try:
        from cm_cli.models.hub import download_model
    except ImportError:
        raise CmError(
            "model downloads are not available in this installation (cm_cli.models.hub is missing)",
            "update cm, or fetch the model with huggingface_hub directly",
        ) from None
    _check_model_name(name)
    if c.dry_run:
        print_dry_run(c, "download", {"model": name, "cache_dir": str(c.cache_dir)})
        return
    path = download_model(name, cache_dir=c.cache_dir)
    emit(c, {"model": name, "path": str(path)}, f"model {name} at {path}")


def _check_model_name(name: str) -> None:
    """A bare name must be a zoo, backbone or extra model name (a hub id has an org/)."""
    from pathlib import Path

    from cm_cli.core.errors import CmError
    from cm_cli.models.hub import EXTRA_MODELS
    from cm_cli.models.registry import SSL_MODELS
    from cm_cli.models.zoo import ZOO

    if "/" in name or name in SSL_MODELS or name in EXTRA_MODELS or Path(name).expanduser().is_dir():
        return
    raise CmError(
        f"unknown model {name!r}; zoo: {', '.join(ZOO)}; backbones: {', '.join(SSL_MODELS)}; "
        f"other: {', '.join(EXTRA_MODELS)}",
        "or give a Hugging Face hub id (org/name)",
    )


def _download_zoo(c, name: str, *, base_url: Optional[str], retries: int, force: bool) -> None:
    from cm_cli.models.zoo import download_zoo_model

    if c.dry_run:
        print_dry_run(c, "download", {"model": name, "cache_dir": str(c.cache_dir), "base_url": base_url})
        return
    record = download_zoo_model(name, cache_dir=c.cache_dir, base_url=base_url, retries=retries, force=force)

    def human() -> None:
        check = {True: "sha256 verified", False: "sha256 NOT pinned: recorded " + str(record.get("sha256"))}
        verified = check.get(record.get("verified"), "")
        console().print(f"model {name} {record['status']} at {record['path']}" + (f" ({verified})" if verified else ""))

    emit(c, record, human)


def _list_models(c) -> None:
    from cm_cli.models.zoo import list_models

    models = list_models(cache_dir=c.cache_dir)

    def human() -> None:
        from rich.markup import escape

        out = console()
        out.print("model zoo: `cm download --model NAME`, then `--model NAME` in cm eval / embed / patch")
        for m in models:
            pinned = (
                "shipped in the package"
                if m["kind"] == "packaged"
                else (m["sha256"] or "not pinned: " + str(m["sha256_note"]))
            )
            here = "[green]ready[/]" if m["cached"] else "not downloaded"
            out.print(f"\n[bold]{m['name']}[/]  {escape(m['title'])}  ({here})")
            expected = f"{m['sample_rate']} Hz, {m['length_policy']}"
            for label, value in (
                ("trained on", m["trained_on"]),
                ("input", expected),
                ("score", m["score"]),
                ("licence", m["licence"]),
                ("paper", m["paper"]),
                ("source", m["source"]),
                ("sha256", pinned),
            ):
                out.print(f"  {label}: {escape(str(value))}", soft_wrap=True)

    emit(c, {"models": models}, human)


def _list(c) -> None:
    from cm_cli.data.corpora.hub_mirror import HUB_MIRRORS
    from cm_cli.data.corpora.sources import CORPUS_SOURCES, SUBSETS

    corpora = []
    for source in CORPUS_SOURCES.values():
        mirror = HUB_MIRRORS.get(source.name)
        corpora.append(
            {
                "corpus": source.name,
                "title": source.title,
                "licence": source.licence,
                "homepage": source.homepage,
                "sources": ["zenodo" if any(f.zenodo_record for f in source.files) else "web"]
                + ([f"huggingface ({mirror[0]})"] if mirror else []),
                "layout": source.layout,
                "subset_notes": source.subset_notes,
                "files": [
                    {
                        "name": f.name,
                        "url": f.url,
                        "subset": f.subset,
                        "size": f.size,
                        "md5": f.md5,
                        "zenodo_record": f.zenodo_record,
                        "checksum": "published" if f.md5 else ("zenodo" if f.zenodo_record else "none"),
                    }
                    for f in source.files
                ],
            }
        )
    payload = {
        "subsets": list(SUBSETS),
        "corpora": [
            {"corpus": "toy", "title": "embedded synthetic corpus", "licence": "generated locally", "files": []}
        ]
        + corpora,
    }

    def human() -> None:
        from rich.table import Table

        table = Table(title="downloadable corpora (subsets nest: protocols < dev < full)", title_justify="left")
        for column in ("corpus", "file", "subset", "size", "md5", "sources", "licence"):
            table.add_column(column, no_wrap=column in ("corpus", "file"))
        table.add_row("toy", "(built locally, --size)", "", "", "", "", "generated")
        for entry in corpora:
            for i, f in enumerate(entry["files"]):
                size = (
                    f"{f['size'] / 1e9:.1f} GB"
                    if f["size"]
                    else ("at download (Zenodo)" if f["zenodo_record"] else "?")
                )
                table.add_row(
                    entry["corpus"] if i == 0 else "",
                    f["name"],
                    f["subset"],
                    size,
                    f["checksum"],
                    ", ".join(entry["sources"]) if i == 0 else "",
                    entry["licence"] if i == 0 else "",
                )
        console().print(table)

    emit(c, payload, human)
