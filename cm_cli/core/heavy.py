"""Lazy, robust imports of the heavy libraries (torch, torchaudio, transformers).

PyPI's torchaudio wheel is built against CUDA; next to a CPU-only torch its
compiled extension fails to load, which breaks ``import torchaudio`` and, through
it, ``import transformers``. cm only needs torchaudio's pure-Python parts
(transforms, resampling, features), so when the extension cannot load we import
torchaudio with its extension marked unavailable instead of failing. Nothing in
site-packages is modified. Call these inside functions, never at module level.
"""

from __future__ import annotations

import functools
import sys
import types

__all__ = ["import_torch", "import_torchaudio", "import_transformers", "torchaudio_extension_loaded"]

_EXTENSION_LOADED: bool | None = None


def import_torch():
    import torch

    return torch


def _stub_extension() -> types.ModuleType:
    stub = types.ModuleType("torchaudio._extension")
    stub.__doc__ = "Stand-in installed by cm: torchaudio's compiled extension could not be loaded."
    stub._IS_TORCHAUDIO_EXT_AVAILABLE = False
    stub._IS_ALIGN_AVAILABLE = False
    stub._check_cuda_version = lambda: None

    def fail_if_no_align(func):
        @functools.wraps(func)
        def unavailable(*args, **kwargs):
            raise RuntimeError(
                f"torchaudio.{func.__name__} needs torchaudio's compiled extension, "
                "which cannot load next to this torch build"
            )

        return unavailable

    stub.fail_if_no_align = fail_if_no_align
    return stub


def import_torchaudio():
    """``import torchaudio``, falling back to its pure-Python parts when the extension fails."""
    global _EXTENSION_LOADED
    import_torch()
    try:
        import torchaudio
    except (OSError, ImportError, RuntimeError) as first_error:
        for name in [n for n in sys.modules if n == "torchaudio" or n.startswith("torchaudio.")]:
            del sys.modules[name]
        sys.modules["torchaudio._extension"] = _stub_extension()
        try:
            import torchaudio
        except Exception:
            del sys.modules["torchaudio._extension"]
            raise first_error from None
        _EXTENSION_LOADED = False
    else:
        if _EXTENSION_LOADED is None:
            _EXTENSION_LOADED = bool(getattr(torchaudio._extension, "_IS_TORCHAUDIO_EXT_AVAILABLE", False))
    return torchaudio


def torchaudio_extension_loaded() -> bool:
    import_torchaudio()
    return bool(_EXTENSION_LOADED)


def import_transformers():
    """``import transformers`` after making sure torchaudio (which it probes) imports."""
    try:
        import_torchaudio()
    except Exception:
        pass  # transformers works without torchaudio; only audio helpers need it
    import transformers

    return transformers
