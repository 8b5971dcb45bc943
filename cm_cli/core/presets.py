"""Presets: named YAML files of command options (never paths or devices).

A preset is looked up as a path first, then by name among ``presets/*.yaml``
shipped inside the package (``cm_cli/presets``) and the project's ``presets/``
folder. Format::

    command: train           # the command it configures
    description: one line shown by `cm presets`
    aliases: [other_name]    # optional
    options: {method: dann, backbone: lcnn, epochs: 4}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cm_cli.core.errors import CmError

__all__ = ["Preset", "PRESET_DIRS", "list_presets", "load_preset", "preset_names", "FORBIDDEN_KEYS", "strict_yaml"]

PACKAGE_PRESETS = Path(__file__).resolve().parent.parent / "presets"
PRESET_DIRS = (PACKAGE_PRESETS,)
# paths and devices belong to the context or the job script, never to a preset
FORBIDDEN_KEYS = {
    "out",
    "manifest",
    "data_root",
    "runs_dir",
    "cache_dir",
    "device",
    "checkpoint",
    "run",
    "input",
    "output",
}


@dataclass(frozen=True)
class Preset:
    name: str
    command: str
    description: str
    options: dict[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    path: Path | None = None


def strict_yaml(text: str, source: str | Path):
    """``yaml.safe_load`` that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        pass

    def mapping(loader, node, deep=False):
        loader.flatten_mapping(node)
        seen: dict = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.setdefault(key, line)
            except TypeError:  # an unhashable key: let the normal constructor report it
                continue
            if first != line:
                raise CmError(
                    f"{source}:{line}: key {key!r} is given twice (first on line {first})",
                    "keep one; cm never lets the last value win silently",
                )
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass


def _parse(path: Path) -> Preset:
    import yaml

    try:
        data = strict_yaml(path.read_text(encoding="utf-8"), path)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise CmError(f"{path}{where}: malformed YAML preset ({getattr(exc, 'problem', exc)})") from None
    except OSError as exc:
        raise CmError(f"{path}: cannot read preset ({exc.strerror})") from None
    if not isinstance(data, dict) or "command" not in data or not isinstance(data.get("options", {}), dict):
        raise CmError(f"{path}: a preset needs 'command' and an 'options' mapping")
    options: dict = {}
    for key, value in (data.get("options") or {}).items():
        name = str(key).replace("-", "_")
        if name in options:
            raise CmError(
                f"{path}: option {name!r} is given twice (as {key!r} and another spelling)",
                "keep one; cm never lets the last value win silently",
            )
        options[name] = value
    bad = sorted(FORBIDDEN_KEYS & set(options))
    if bad:
        raise CmError(
            f"{path}: presets hold command options only, not {', '.join(bad)}",
            "pass paths and devices on the command line or in the environment",
        )
    return Preset(
        name=path.stem,
        command=str(data["command"]),
        description=str(data.get("description", "")).strip(),
        options=options,
        aliases=tuple(str(a) for a in data.get("aliases", []) or []),
        path=path,
    )


def list_presets(command: str | None = None) -> list[Preset]:
    seen: dict[str, Preset] = {}
    for directory in PRESET_DIRS:
        for path in sorted(directory.glob("*.yaml")):
            preset = _parse(path)
            seen.setdefault(preset.name, preset)
    presets = sorted(seen.values(), key=lambda p: p.name)
    return [p for p in presets if command is None or p.command == command]


def preset_names(command: str | None = None) -> list[str]:
    """Names and aliases, for completion (cheap: reads only file names when command is None)."""
    if command is None:
        names = {p.stem for d in PRESET_DIRS for p in d.glob("*.yaml")}
        return sorted(names)
    return sorted({n for p in list_presets(command) for n in (p.name, *p.aliases)})


def load_preset(name_or_path: str, *, command: str | None = None) -> Preset:
    candidate = Path(name_or_path).expanduser()
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        if not candidate.is_file():
            raise CmError(f"{candidate}: no such preset file")
        preset = _parse(candidate)
    else:
        matches = [p for p in list_presets() if name_or_path in (p.name, *p.aliases)]
        if not matches:
            known = ", ".join(preset_names(command)) or "none"
            raise CmError(
                f"unknown preset {name_or_path!r}", f"known presets{' for ' + command if command else ''}: {known}"
            )
        preset = matches[0]
    if command is not None and preset.command != command:
        raise CmError(f"preset {preset.name!r} configures `cm {preset.command}`, not `cm {command}`")
    return preset
