"""What this install can do: torch and devices, codec providers, renderable conditions, extras, disk.

Why: cm degrades quietly in one place only, the install (a pip-only machine has PyAV's
FFmpeg but no speex or GSM encoder; a CPU wheel of torch has no CUDA). ``cm doctor``
reads it all in one place and says what each missing piece changes, so an error in a
long job (a missing encoder, a tracker that is not installed) is never the first news.
Nothing here prints, downloads or writes; every check is local.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from cm_cli.core.errors import CmError

__all__ = [
    "Finding",
    "DoctorReport",
    "diagnose",
    "torch_info",
    "codec_status",
    "condition_status",
    "toy_condition_status",
    "extras_status",
    "storage_status",
]


@dataclass
class Finding:
    """A missing piece: what it is, what it changes for the user, and how to get it."""

    what: str
    effect: str
    fix: str


@dataclass
class DoctorReport:
    torch: dict
    providers: list[dict]
    codecs: list[dict]
    conditions: list[dict]
    toy_conditions: list[dict]
    extras: list[dict]
    storage: list[dict]
    findings: list[Finding] = field(default_factory=list)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["ok"] = not self.findings
        return data


def torch_info() -> dict:
    """torch version, the build's CUDA, and the devices it sees (imports torch)."""
    try:
        import torch
    except Exception as exc:  # noqa: BLE001 - not installed or a broken wheel
        return {"installed": False, "error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}
    cuda = bool(torch.cuda.is_available())
    devices = ["cpu"]
    if cuda:
        devices += [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if mps:
        devices.append("mps")
    return {
        "installed": True,
        "version": torch.__version__,
        "cuda_build": torch.version.cuda,
        "cuda_available": cuda,
        "mps_available": mps,
        "devices": devices,
        "threads": torch.get_num_threads(),
    }


def provider_status() -> list[dict]:
    """Every codec provider in the order cm asks them (PyAV in-process, ffmpeg binaries)."""
    from cm_cli.degrade.codecs import CODECS
    from cm_cli.degrade.ffmpeg import encoders_of, providers
    from cm_cli.degrade.pyav import pyav_encoders

    wanted = {e for c in CODECS.values() for e in c.encoders}
    out = []
    for p in providers():
        encoders = pyav_encoders() if p.in_process else encoders_of(p.path)
        out.append(
            {
                "provider": p.path,
                "origin": p.origin,
                "in_process": p.in_process,
                "speech_encoders": sorted(wanted & set(encoders)),
            }
        )
    return out


def codec_status() -> list[dict]:
    """Each codec of the registry: which provider and encoder serve it here, if any."""
    from cm_cli.degrade.codecs import CODECS, codec_provider

    out = []
    for name, codec in CODECS.items():
        found = codec_provider(name)
        out.append(
            {
                "codec": name,
                "available": found is not None,
                "encoder": found[1] if found else None,
                "provider": found[0].origin if found else None,
                "needs": codec.encoder_hint,
                "description": codec.description,
            }
        )
    return out


def _missing(names) -> list[str]:
    """What the degradations ``names`` lack here, in words ('libspeex encoder', 'EnCodec weights ...')."""
    from cm_cli.degrade.registry import describe_provider, get_degradation

    out = []
    for name in names:
        available, text = describe_provider(get_degradation(name))
        if not available:
            out.append(text.removeprefix("missing: "))
    return list(dict.fromkeys(out))


def _renderable(specs) -> tuple[bool, str]:
    """(every spec renders here, what is missing)."""
    from cm_cli.degrade.registry import validate_spec

    for spec in specs:
        try:
            validate_spec(spec)
        except CmError as exc:
            steps = [step.name for step in spec.steps] if hasattr(spec, "steps") else []
            return False, "; ".join(_missing(steps)) or exc.message
    return True, ""


def condition_status() -> list[dict]:
    """ASVspoof 5's C01-C11: can this install render every level of each?"""
    from cm_cli.degrade.conditions import CONDITIONS

    out = []
    for cid, condition in CONDITIONS.items():
        missing = _missing(condition.provider)
        ok = not missing and _renderable(condition.specs())[0]
        out.append(
            {"condition": cid, "description": condition.description, "available": ok, "missing": "; ".join(missing)}
        )
    return out


def toy_condition_status() -> list[dict]:
    """The toy corpus's coded eval conditions (cm demo's study): all of them must render everywhere."""
    from cm_cli.core.specs import parse_spec
    from cm_cli.degrade.conditions import get_condition, is_condition
    from cm_cli.degrade.toy_conditions import DEFAULT_TOY_CONDITIONS, OUT_OF_DOMAIN, describe_condition

    out = []
    for name in DEFAULT_TOY_CONDITIONS:
        specs = get_condition(name).specs() if is_condition(name) else [name]
        ok, reason = _renderable([parse_spec(spec) if isinstance(spec, str) else spec for spec in specs])
        out.append(
            {
                "condition": name,
                "description": describe_condition(name),
                "available": ok,
                "never_seen": name in OUT_OF_DOMAIN,
                "missing": reason,
            }
        )
    return out


# optional packages: (module, pip extra or package, what it is for, what its absence changes)
EXTRAS = (
    (
        "tensorboard",
        "cm-cli[tensorboard]",
        "cm train --log-to tensorboard",
        "--log-to tensorboard is refused; history.parquet still records every step",
    ),
    (
        "wandb",
        "cm-cli[wandb]",
        "cm train --log-to wandb",
        "--log-to wandb is refused; history.parquet still records every step",
    ),
    (
        "mlflow",
        "cm-cli[mlflow]",
        "cm train --log-to mlflow",
        "--log-to mlflow is refused; history.parquet still records every step",
    ),
    (
        "av",
        "av",
        "in-process codecs and decoding of m4a/ogg/webm/amr/...",
        "every codec needs an ffmpeg binary, and compressed audio containers need pydub with a system ffmpeg",
    ),
)


def extras_status() -> list[dict]:
    out = []
    for module, package, used_for, effect in EXTRAS:
        installed = importlib.util.find_spec(module) is not None
        out.append(
            {
                "package": module,
                "installed": installed,
                "install": f"pip install '{package}'",
                "used_for": used_for,
                "effect_if_missing": effect,
            }
        )
    return out


def _free_bytes(path: Path) -> int | None:
    """Free space on the file system that holds ``path`` (or its nearest existing parent)."""
    probe = Path(path).expanduser().absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free
    except OSError:
        return None


def storage_status(places: Mapping[str, Path | str | None]) -> list[dict]:
    """Each configured directory: where, whether it exists and is writable, free space there."""
    out = []
    for name, path in places.items():
        if path is None:
            continue
        p = Path(path).expanduser()
        exists = p.is_dir()
        writable = os.access(p if exists else _existing_parent(p), os.W_OK)
        out.append(
            {
                "name": name,
                "path": str(p),
                "exists": exists,
                "writable": writable,
                "free_gb": None if (free := _free_bytes(p)) is None else round(free / 1e9, 1),
            }
        )
    return out


def _existing_parent(path: Path) -> Path:
    probe = path.absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


LOW_DISK_GB = 5.0  # the small toy study with its caches takes well under 1 GB; a real corpus needs 100+


def _findings(report: DoctorReport) -> list[Finding]:
    found: list[Finding] = []
    t = report.torch
    if not t.get("installed"):
        found.append(
            Finding(
                "torch does not import",
                "no training, scoring, embedding or analysis",
                "pip install torch (the CPU wheel is enough for the toy study)",
            )
        )
    elif not t.get("cuda_available") and not t.get("mps_available"):
        build = (
            "a CPU-only build"
            if not t.get("cuda_build")
            else f"built for CUDA {t['cuda_build']}, but no GPU is visible"
        )
        found.append(
            Finding(
                f"no GPU: torch {t.get('version')} is {build}",
                "everything runs on the CPU: fine for the toy study, slow for SSL backbones",
                "run on a GPU node with a CUDA build of torch; --device cuda then works",
            )
        )
    if not any(p["in_process"] for p in report.providers):
        found.append(
            Finding(
                "PyAV (package av) is not importable",
                "every codec starts ffmpeg processes; compressed audio needs a system ffmpeg",
                "pip install av",
            )
        )
    missing = [c for c in report.codecs if not c["available"]]
    if missing:
        names = ", ".join(f"{c['codec']} ({c['needs']})" for c in missing)
        found.append(
            Finding(
                f"codecs no provider here encodes: {names}",
                "specs, policies and --degrade sweeps that use them are refused before any audio is coded",
                "install an ffmpeg built with those encoders (e.g. your distribution's) and put it "
                "on PATH or set CM_FFMPEG",
            )
        )
    blocked = [c for c in report.conditions if not c["available"]]
    if blocked:
        ids = ", ".join(c["condition"] for c in blocked)
        found.append(
            Finding(
                f"ASVspoof 5 conditions this install cannot render: {ids}",
                "cm degrade --condition, policies and presets using them (e.g. aug_codec_asvspoof5_all) "
                "are refused; the other conditions are unaffected",
                "put an ffmpeg with the missing encoders on PATH or set CM_FFMPEG (no maintained pip "
                "package encodes Speex or GSM in-process); EnCodec: cm download --model encodec",
            )
        )
    toy = [c for c in report.toy_conditions if not c["available"]]
    if toy:
        found.append(
            Finding(
                f"toy conditions this install cannot render: {', '.join(c['condition'] for c in toy)}",
                "cm demo and cm download toy --coded are refused",
                "pip install av (PyAV 18.1 or newer)",
            )
        )
    for extra in report.extras:
        if not extra["installed"]:
            found.append(Finding(f"{extra['package']} is not installed", extra["effect_if_missing"], extra["install"]))
    for place in report.storage:
        if not place["writable"]:
            found.append(
                Finding(
                    f"{place['name']} {place['path']} is not writable",
                    "commands writing there fail",
                    f"choose another {place['name']} (global option or environment variable)",
                )
            )
        elif place["free_gb"] is not None and place["free_gb"] < LOW_DISK_GB:
            found.append(
                Finding(
                    f"only {place['free_gb']} GB free under {place['name']} {place['path']}",
                    "long jobs may stop on a full disk (cm then keeps the previous artifact)",
                    "free space or move it elsewhere",
                )
            )
    return found


def diagnose(places: Mapping[str, Path | str | None] | None = None) -> DoctorReport:
    """Every check, and the findings: what is missing and what that changes."""
    report = DoctorReport(
        torch=torch_info(),
        providers=provider_status(),
        codecs=codec_status(),
        conditions=condition_status(),
        toy_conditions=toy_condition_status(),
        extras=extras_status(),
        storage=storage_status(places or {}),
    )
    report.findings = _findings(report)
    return report


def as_jsonable(value: Any) -> Any:
    """Paths as text, for ``--json``."""
    if isinstance(value, dict):
        return {k: as_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_jsonable(v) for v in value]
    return str(value) if isinstance(value, Path) else value
