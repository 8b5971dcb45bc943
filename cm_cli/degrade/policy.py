"""Augmentation policies: weighted degradation conditions that label every sample they produce.

A policy is a list of entries, each a spec (possibly a ``|`` sweep, drawn uniformly)
or an ASVspoof 5 condition id (``C05``), with a probability. Written inline as
``clean:0.3, mp3:kbps=16|32|64:0.3, C08:0.4`` (the trailing ``:number`` is the
probability) or in YAML as a degrade preset whose ``options.policy`` is that text
or a list of ``{spec: ..., p: ...}``. The label of a sample (its DANN domain) is
``clean``, the canonical spec drawn, or the condition id for condition entries.
``apply_policy`` is the on-the-fly path; expensive results are cached on disk keyed
by the audio content, the drawn spec and its seed.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cm_cli.core.errors import CmError
from cm_cli.core.specs import Spec, expand_sweep

__all__ = [
    "PolicyEntry",
    "Policy",
    "parse_policy",
    "load_policy",
    "apply_policy",
    "draw",
    "default_cache_dir",
    "held_out_conditions",
]


@dataclass(frozen=True)
class PolicyEntry:
    text: str  # as written (spec sweep or condition id)
    probability: float
    condition: str | None = None  # set for C01..C11 entries

    def candidates(self) -> list[Spec]:
        if self.condition:
            from cm_cli.degrade.conditions import get_condition

            return get_condition(self.condition).specs()
        return expand_sweep(self.text)


@dataclass(frozen=True)
class Policy:
    entries: tuple[PolicyEntry, ...]
    name: str = "inline"

    @property
    def probabilities(self) -> np.ndarray:
        p = np.array([e.probability for e in self.entries], dtype=np.float64)
        return p / p.sum()

    def canonical(self) -> str:
        parts = []
        for entry, p in zip(self.entries, self.probabilities):
            body = entry.condition or "|".join(s.canonical() for s in entry.candidates())
            parts.append(f"{body}:{p:.6g}")
        return ", ".join(parts)

    def labels(self) -> list[str]:
        """Every label this policy can produce (for domain heads that need the set up front)."""
        out: list[str] = []
        for entry in self.entries:
            for label in [entry.condition] if entry.condition else [_label(s) for s in entry.candidates()]:
                if label not in out:
                    out.append(label)
        return out


def held_out_conditions(policy: "Policy | str") -> list[str]:
    """ASVspoof 5 conditions a policy never trains on (the unseen side of an out-of-domain test)."""
    from cm_cli.degrade.conditions import CONDITIONS

    if not isinstance(policy, Policy):
        policy = load_policy(policy, check_available=False)
    seen = {entry.condition for entry in policy.entries if entry.condition}
    return [cid for cid in CONDITIONS if cid not in seen]


def _label(spec: Spec) -> str:
    text = spec.canonical()
    return "clean" if text == "clean" else text


def _parse_item(item: str, source: str) -> PolicyEntry:
    from cm_cli.degrade.conditions import is_condition

    text = item.strip()
    probability = 1.0
    head, sep, tail = text.rpartition(":")
    if sep and "=" not in tail:
        try:
            probability = float(tail)
        except ValueError:
            raise CmError(
                f"{source}: policy entry {item.strip()!r} ends in {tail!r}, which is not a probability",
                "write spec:probability, e.g. mp3:kbps=32:0.3",
            ) from None
        text = head.strip()
    if probability < 0 or not np.isfinite(probability):
        raise CmError(f"{source}: probability {probability} of {text!r} must be >= 0")
    if is_condition(text):
        return PolicyEntry(text.upper(), probability, condition=text.upper())
    return PolicyEntry(text, probability)


def parse_policy(value: "str | list | dict", *, name: str = "inline", source: str = "policy") -> Policy:
    """A policy from inline text, a list of ``{spec, p}`` mappings or strings, or ``{policy: ...}``."""
    if isinstance(value, dict):
        if "policy" in value:
            return parse_policy(value["policy"], name=name, source=source)
        if "options" in value and isinstance(value["options"], dict) and "policy" in value["options"]:
            return parse_policy(value["options"]["policy"], name=name, source=source)
        raise CmError(f"{source}: a policy mapping needs a 'policy' key")
    if isinstance(value, str):
        items = [part for part in value.split(",") if part.strip()]
        entries = [_parse_item(part, source) for part in items]
    elif isinstance(value, (list, tuple)):
        entries = []
        for item in value:
            if isinstance(item, str):
                entries.append(_parse_item(item, source))
            elif isinstance(item, dict) and "spec" in item:
                entries.append(_parse_item(f"{item['spec']}:{item.get('p', item.get('prob', 1.0))}", source))
            else:
                raise CmError(f"{source}: policy entry {item!r} is neither 'spec:p' text nor {{spec: ..., p: ...}}")
    else:
        raise CmError(f"{source}: cannot read a policy from {type(value).__name__}")
    if not entries:
        raise CmError(f"{source}: the policy is empty", "e.g. clean:0.5, mp3:kbps=32:0.5")
    if sum(e.probability for e in entries) <= 0:
        raise CmError(f"{source}: policy probabilities sum to zero")
    return Policy(tuple(entries), name=name)


def load_policy(source: "str | Path | Policy", *, check_available: bool = True) -> Policy:
    """A policy from a Policy, a YAML file, a degrade preset name, or inline text; validated."""
    if isinstance(source, Policy):
        policy = source
    else:
        text = str(source)
        path = Path(text).expanduser()
        if path.suffix in (".yaml", ".yml") or path.is_file():
            if not path.is_file():
                raise CmError(f"{path}: no such policy file")
            import yaml

            from cm_cli.core.presets import strict_yaml

            try:  # strict: a key given twice is refused in one line, never the last value winning
                data = strict_yaml(path.read_text(encoding="utf-8"), path)
            except yaml.YAMLError as exc:
                raise CmError(f"{path}: malformed YAML policy ({getattr(exc, 'problem', exc)})") from None
            policy = parse_policy(data, name=path.stem, source=str(path))
        else:
            policy = None
            if "," not in text and ":" not in text and "+" not in text:
                from cm_cli.core.presets import list_presets

                for preset in list_presets("degrade"):
                    if text in (preset.name, *preset.aliases) and "policy" in preset.options:
                        policy = parse_policy(preset.options["policy"], name=preset.name, source=str(preset.path))
                        break
            if policy is None:
                policy = parse_policy(text)
    validate_policy(policy, check_available=check_available)
    return policy


def validate_policy(policy: Policy, *, check_available: bool = True) -> None:
    """Every entry parses and (by default) has its encoder: fail before training starts, not at step 10k."""
    from cm_cli.degrade.registry import validate_spec

    for entry in policy.entries:
        for spec in entry.candidates():
            try:
                validate_spec(spec, check_available=check_available)
            except CmError as exc:
                raise CmError(
                    f"policy {policy.name!r}, entry {entry.text!r}: {exc.message}", exc.hint, option=exc.option
                ) from None


def draw(policy: Policy, rng: np.random.Generator) -> tuple[Spec, str]:
    """One (spec, label) from the policy."""
    entry = policy.entries[int(rng.choice(len(policy.entries), p=policy.probabilities))]
    candidates = entry.candidates()
    spec = candidates[int(rng.integers(len(candidates)))]
    return spec, (entry.condition or _label(spec))


def default_cache_dir() -> Path:
    return Path(os.environ.get("CM_CACHE_DIR") or Path.home() / ".cache" / "cm")


_CACHE_VERSION = "pcm16-flac-1"  # bump when what a cache entry holds changes


def _cache_key(samples: np.ndarray, sr: int, spec: Spec, seed: int, utt_id: str) -> str:
    from cm_cli.degrade.registry import spec_providers

    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(samples, dtype=np.float32).tobytes())
    # steps that draw from the per-utterance generator (noise file/offset, RIR, hum phases)
    random_steps = any(s.name in ("noise", "reverb", "cable") for s in spec.steps)
    digest.update(
        f"|{_CACHE_VERSION}|{sr}|{spec.canonical()}|{spec_providers(spec)}|{seed if random_steps else ''}|"
        f"{utt_id if random_steps else ''}".encode()
    )
    return digest.hexdigest()


def _read_cached(path: Path) -> np.ndarray | None:
    import soundfile as sf

    try:
        data, _ = sf.read(str(path), dtype="int16")
    except Exception:  # noqa: BLE001 - a damaged entry is recomputed and replaced
        return None
    return data


def _write_cached(path: Path, pcm: np.ndarray, sr: int) -> None:
    import soundfile as sf

    from cm_cli.core.artifacts import atomic_path

    try:
        with atomic_path(path, suffix=".flac") as tmp:
            sf.write(str(tmp), pcm, int(sr), format="FLAC", subtype="PCM_16")
    except (CmError, OSError):
        pass  # an unwritable cache only costs speed


def apply_policy(
    samples: np.ndarray,
    sr: int,
    policy: "Policy | str",
    *,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
    utt_id: str = "",
    cache: bool = True,
    cache_dir: str | Path | None = None,
) -> tuple[np.ndarray, str]:
    """Degrade one utterance with a condition drawn from ``policy``; returns (audio, condition label).

    Pass ``rng`` for fresh draws every call (training epochs), or ``seed`` (with
    ``utt_id``) for a reproducible draw. Degraded audio is rounded to 16-bit PCM, as
    `cm degrade` writes it, so on-the-fly and pre-rendered variants are the same data
    and a cached result is bit-identical to a fresh one. Codec results are cached as
    16-bit FLAC under ``cache_dir/degrade`` (default ``$CM_CACHE_DIR``), keyed by the
    input's content, the spec and (for random steps) the seed.
    """
    from cm_cli.data.audio import pcm16
    from cm_cli.degrade.noise import stable_rng
    from cm_cli.degrade.registry import apply_spec

    if not isinstance(policy, Policy):
        policy = load_policy(policy)
    if rng is None:
        rng = stable_rng(0 if seed is None else seed, utt_id, "policy")
    spec, label = draw(policy, rng)
    step_seed = int(rng.integers(2**31))
    if spec.canonical() == "clean":
        return np.asarray(samples, dtype=np.float32).copy(), label
    use_cache = cache and any(s.name not in ("clean", "gain", "clip") for s in spec.steps)
    path = None
    if use_cache:
        key = _cache_key(samples, sr, spec, step_seed, utt_id)
        path = Path(cache_dir or default_cache_dir()) / "degrade" / key[:2] / f"{key}.flac"
        pcm = _read_cached(path) if path.is_file() else None
        if pcm is not None:
            return pcm.astype(np.float32) / np.float32(32768.0), label
    out, _ = apply_spec(samples, sr, spec, seed=step_seed, utt_id=utt_id)
    pcm = pcm16(out)
    if path is not None:
        _write_cached(path, pcm, sr)
    return pcm.astype(np.float32) / np.float32(32768.0), label
