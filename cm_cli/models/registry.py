"""One backbone registry: ``--backbone NAME`` -> a builder, with defaults for each family.

SSL names (``wavlm``, ``w2v2``, ``xlsr``, ``hubert``) map to their hub ids; any other
hub id (``org/name``) or local model directory is taken as an SSL model too. An
unknown name is a ``CmError`` that lists the registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cm_cli.core.errors import CmError
from cm_cli.models.ssl import SSL_MODELS

__all__ = ["BackboneSpec", "BACKBONES", "backbone_names", "get_backbone"]


@dataclass(frozen=True)
class BackboneSpec:
    """A registry entry: family (``ssl``, ``aasist``, ``ssl_aasist``, ``lcnn``), default id and length policy."""

    name: str
    family: str
    default_id: str | None
    length_policy: str
    target_samples: int | None
    description: str


BACKBONES: dict[str, BackboneSpec] = {
    "aasist": BackboneSpec("aasist", "aasist", None, "repeat", 64600, "AASIST on raw waveforms (use --checkpoint for the ASVspoof 5 baseline)"),
    "lcnn": BackboneSpec("lcnn", "lcnn", None, "full", None, "LFCC-LCNN, trained from scratch, fast on CPU"),
    "ssl_aasist": BackboneSpec("ssl_aasist", "ssl_aasist", SSL_MODELS["xlsr"], "repeat", 64600, "AASIST back end on XLS-R features (SSL_Anti-spoofing)"),
    **{
        name: BackboneSpec(name, "ssl", hub_id, "full", None, f"{hub_id} hidden states")
        for name, hub_id in SSL_MODELS.items()
    },
}


def backbone_names() -> list[str]:
    return list(BACKBONES)


def get_backbone(name: str) -> BackboneSpec:
    """The registry entry for ``name``; a hub id or local model directory is a generic SSL entry."""
    if name in BACKBONES:
        return BACKBONES[name]
    if name and ("/" in name or Path(name).expanduser().is_dir()):
        return BackboneSpec(name, "ssl", name, "full", None, f"{name} hidden states")
    raise CmError(
        f"unknown backbone {name!r}",
        hint="choose one of " + ", ".join(BACKBONES) + ", a Hugging Face hub id (org/name) or a local model directory",
    )
