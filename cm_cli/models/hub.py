"""Fetch pretrained SSL weights into a model cache (``cm download --model``).

Cluster compute nodes often have no network: the model is fetched once on a login
node with ``download_model`` and later loaded from the cache with no network access
(``cm_cli.models.ssl.load_ssl_model``). A model already complete in the cache is not
fetched again.

One lookup for every loader (``model_cache_dirs``): a cache directory given explicitly,
else the Hugging Face cache (``HF_HOME``) and then cm's cache (``CM_CACHE_DIR``, default
``~/.cache/cm``), which is where ``cm download --model`` puts what it fetches. Both use
the huggingface_hub layout, so a model fetched by either tool is found by ``cm embed``,
``cm train`` and ``cm degrade`` alike.
"""

from __future__ import annotations

import os
from pathlib import Path

from cm_cli.core.errors import CmError
from cm_cli.models.registry import SSL_MODELS, resolve_ssl_id

__all__ = ["download_model", "cached_model_path", "resolve_model_id", "model_cache_dirs", "cm_cache_dir"]

# non-SSL models cm can fetch by a short name (`cm download --model encodec`: C04/C07 of cm degrade)
EXTRA_MODELS = {
    "encodec": "facebook/encodec_24khz",
    "dac": "descript/dac_16khz",
    "dac_24khz": "descript/dac_24khz",
    "dac_44khz": "descript/dac_44khz",
    "mimi": "kyutai/mimi",
}  # dac, mimi: cm degrade's neural codecs


def resolve_model_id(name_or_id: str) -> str:
    return EXTRA_MODELS.get(name_or_id) or resolve_ssl_id(name_or_id)


# framework weights cm never loads (TensorFlow, Flax, ONNX, Rust)
_IGNORE = ["*.h5", "*.msgpack", "*.ot", "*.onnx", "tf_model*", "flax_model*", "rust_model*"]


def cm_cache_dir() -> Path:
    """cm's own cache (``CM_CACHE_DIR``, default ``~/.cache/cm``), where ``cm download --model`` stores models."""
    return Path(os.environ.get("CM_CACHE_DIR") or Path.home() / ".cache" / "cm").expanduser()


def model_cache_dirs(cache_dir: str | os.PathLike | None = None) -> list[str | None]:
    """Caches looked up, in order: ``cache_dir`` alone when given, else the HF cache (None) and cm's cache."""
    if cache_dir:
        return [str(cache_dir)]
    return [None, str(cm_cache_dir())]


def cached_model_path(name_or_id: str, *, cache_dir: str | os.PathLike | None = None) -> Path | None:
    """The snapshot directory of a model already in a cache (``model_cache_dirs``), or None (never uses the network)."""
    from huggingface_hub import snapshot_download

    repo_id = resolve_model_id(name_or_id)
    for directory in model_cache_dirs(cache_dir):
        try:
            path = Path(snapshot_download(repo_id, cache_dir=directory, local_files_only=True, ignore_patterns=_IGNORE))
        except Exception:  # noqa: BLE001 - not there (LocalEntryNotFoundError and kin), or an id the hub rejects
            continue
        if (path / "config.json").is_file():
            return path
    return None


def download_model(name_or_id: str, *, cache_dir: str | os.PathLike | None = None, revision: str | None = None) -> Path:
    """Download a model (registry name or hub id) into the HF cache; returns its snapshot directory.

    A model already in the cache is returned without network access. Offline or
    unreachable hub -> ``CmError``.
    """
    if not name_or_id:
        raise CmError("no model named", hint="give a registry name (" + ", ".join(SSL_MODELS) + ") or a hub id")
    if Path(name_or_id).expanduser().is_dir():
        return Path(name_or_id).expanduser()
    cache_dir = str(cache_dir) if cache_dir else None
    if revision is None:
        hit = cached_model_path(name_or_id, cache_dir=cache_dir)
        if hit is not None:
            return hit
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    repo_id = resolve_model_id(name_or_id)
    try:
        path = snapshot_download(repo_id, cache_dir=cache_dir, revision=revision, ignore_patterns=_IGNORE)
    except (OfflineModeIsEnabled, LocalEntryNotFoundError) as exc:
        raise CmError(
            f"cannot download {repo_id!r}: no network access (offline mode or hub unreachable)",
            hint=f"run `cm download --model {name_or_id}` on a machine with network access, sharing HF_HOME",
        ) from exc
    except HfHubHTTPError as exc:
        raise CmError(
            f"cannot download {repo_id!r}: {str(exc).splitlines()[0]}",
            hint="check the model id and your Hugging Face token",
        ) from exc
    except OSError as exc:
        raise CmError(
            f"cannot download {repo_id!r}: {exc}", hint="check network access and free disk space in the cache"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - a malformed hub/mirror reply (KeyError, TypeError, JSON, bad file names)
        text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise CmError(
            f"cannot download {repo_id!r}: the hub's reply could not be used ({type(exc).__name__}: {text})",
            hint="check the model id and HF_ENDPOINT: a mirror may be broken or not a Hugging Face hub",
        ) from None
    return Path(path)
