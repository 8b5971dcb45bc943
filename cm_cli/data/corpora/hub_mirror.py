"""Fetch a corpus's archives from its Hugging Face dataset mirror instead of Zenodo.

Zenodo is slow and cancels long transfers; the hub serves the same archives from a CDN with
resumable, parallel downloads. Files land in the same ``<corpus_root>/downloads/`` folder as
the Zenodo path, so unpacking and everything downstream are unchanged. Each file is checked
against the hub's own sha256 (from its LFS metadata) and, where the corpus README publishes
one, against that md5 too. ``HF_HOME``/``HF_TOKEN`` are honoured by huggingface_hub itself;
``endpoint`` (or ``HF_ENDPOINT``) points at another hub, e.g. a local mirror.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from cm_cli.core.errors import CmError

__all__ = ["HUB_MIRRORS", "hub_mirror", "download_from_hub", "network_errors"]

# corpus -> (repo id, repo type): the organisers' mirror of the Zenodo release
HUB_MIRRORS = {"asvspoof5": ("jungjee/asvspoof5", "dataset")}


def hub_mirror(corpus: str) -> tuple[str, str]:
    if corpus not in HUB_MIRRORS:
        raise CmError(
            f"{corpus} has no Hugging Face mirror",
            f"mirrored corpora: {', '.join(HUB_MIRRORS)}; download from zenodo instead",
            option="source",
        )
    return HUB_MIRRORS[corpus]


def network_errors() -> tuple[type[BaseException], ...]:
    """Every exception a hub call raises for a network or HTTP failure: the hub's own, OSError, and those of
    the HTTP library the installed huggingface_hub uses (httpx, httpx2 or requests: none subclasses OSError)."""
    import importlib

    from huggingface_hub.errors import HfHubHTTPError

    found: list[type[BaseException]] = [HfHubHTTPError, OSError]
    for module, name in (("httpx", "HTTPError"), ("httpx2", "HTTPError"), ("requests", "RequestException")):
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _hub_info(api, repo_id: str, repo_type: str, revision: str | None, names: Sequence[str]) -> dict:
    from huggingface_hub.errors import HfHubHTTPError

    try:
        infos = api.get_paths_info(repo_id, list(names), repo_type=repo_type, revision=revision)
    except HfHubHTTPError as exc:
        raise CmError(
            f"Hugging Face hub: cannot list {repo_id} ({_first_line(exc)})",
            "check the network, HF_TOKEN for gated datasets, or download from zenodo instead",
            option="source",
        ) from None
    except network_errors() as exc:
        raise CmError(
            f"Hugging Face hub unreachable ({type(exc).__name__}: {_first_line(exc)})",
            "check the network (HF_ENDPOINT, proxies) or download from zenodo instead",
            option="source",
        ) from None
    return {info.path: info for info in infos}


def download_from_hub(
    items,
    dest_dir: str | os.PathLike,
    *,
    corpus: str,
    endpoint: str | None = None,
    revision: str | None = None,
    workers: int = 4,
):
    """``FileResult``s for ``items`` (``DownloadItem``s) fetched from the corpus's hub mirror into ``dest_dir``."""
    from concurrent.futures import ThreadPoolExecutor

    from huggingface_hub import HfApi, hf_hub_download

    from cm_cli.core.artifacts import sha256_file
    from cm_cli.core.progress import task
    from cm_cli.data.download import FileResult, md5sum

    repo_id, repo_type = hub_mirror(corpus)
    endpoint = endpoint or os.environ.get("HF_ENDPOINT") or None
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    infos = _hub_info(HfApi(endpoint=endpoint), repo_id, repo_type, revision, [i.name for i in items])
    missing = [i.name for i in items if i.name not in infos]
    if missing:
        raise CmError(
            f"{repo_id} on the hub lacks {len(missing)} file(s) (first: {missing[0]})",
            "the mirror may be incomplete: download from zenodo instead",
            option="source",
        )

    def fetch(item) -> FileResult:
        info = infos[item.name]
        sha = info.lfs.sha256 if getattr(info, "lfs", None) else None
        size = info.lfs.size if getattr(info, "lfs", None) else info.size
        target = dest / item.name
        present = target.is_file() and target.stat().st_size == size and (sha is None or sha256_file(target) == sha)
        if not present:
            try:
                path = Path(
                    hf_hub_download(
                        repo_id, item.name, repo_type=repo_type, revision=revision, local_dir=dest, endpoint=endpoint
                    )
                )
            except network_errors() as exc:
                raise CmError(
                    f"{item.name}: download from the hub failed ({_first_line(exc)})",
                    "rerun to resume, or download from zenodo instead",
                    option="source",
                ) from None
            if path.resolve() != target.resolve():
                os.replace(path, target)
        if sha is not None and sha256_file(target) != sha:
            target.unlink()
            raise CmError(
                f"{item.name}: sha256 differs from the hub's; the file was removed", "rerun to fetch it again"
            )
        md5 = md5sum(target) if item.md5 else None
        if item.md5 and md5 != item.md5:
            raise CmError(
                f"{item.name}: md5 {md5} differs from the published {item.md5}",
                "the hub copy is not the released file: download from zenodo instead",
                option="source",
            )
        return FileResult(
            item.name,
            target,
            target.stat().st_size,
            "present" if present else "downloaded",
            md5=md5,
            verified=bool(sha or item.md5),
            attempts=0 if present else 1,
        )

    with task(len(items), f"downloading {corpus} from the Hugging Face hub") as advance:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            results = []
            for result in pool.map(fetch, items):
                advance(1)
                results.append(result)
    return results
