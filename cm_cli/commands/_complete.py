"""Shell completion callbacks: presets of the command being completed, spec chains, encodable codecs.

Why a module of its own: completion runs on every <TAB>, so these read registries
(presets by file, the degradation registry) and never import torch; each returns what
the shell may insert, with a help text where zsh and fish can show one.
"""

from __future__ import annotations

import typer

__all__ = ["complete_preset", "complete_spec", "complete_codec"]


def complete_preset(ctx: typer.Context, incomplete: str) -> list[str]:
    """Presets whose command is the one being completed (`cm train --preset` offers train presets only);
    every preset where the command has none of its own (`cm presets show`)."""
    from cm_cli.core.presets import preset_names

    command = ctx.info_name if ctx is not None else None
    names = (preset_names(command) if command else []) or preset_names()
    return [n for n in names if n.startswith(incomplete)]


def complete_spec(incomplete: str) -> list[tuple[str, str]]:
    """Completion of a degradation chain (`--chain`, `--degrade`): step names after a '+' or at the start,
    then ``name:key=`` for the step's parameters, then a parameter's choices."""
    from cm_cli.degrade.registry import REGISTRY

    head, plus, last = incomplete.rpartition("+")
    prefix = head + plus
    name, colon, rest = last.partition(":")
    if not colon:
        return [(prefix + n, deg.description) for n, deg in sorted(REGISTRY.items()) if n.startswith(name)]
    deg = REGISTRY.get(name)
    if deg is None:
        return []
    parts = rest.split(":")
    done, current = parts[:-1], parts[-1]
    used = {p.partition("=")[0] for p in done}
    base = prefix + name + ":" + "".join(p + ":" for p in done)
    key, eq, value = current.partition("=")
    if not eq:
        return [(f"{base}{p.name}=", p.help) for p in deg.params if p.name.startswith(key) and p.name not in used]
    param = deg.param(key)
    if param is None:
        return []
    if param.choices:
        shown = [f"{c:g}" if isinstance(c, float) else str(c) for c in param.choices]
        return [(f"{base}{key}={c}", param.help) for c in shown if c.startswith(value)]
    if param.default is not None and str(param.default).startswith(value):
        default = f"{param.default:g}" if isinstance(param.default, float) else str(param.default)
        return [(f"{base}{key}={default}", f"{param.help} (default)")]
    return []


def complete_codec(incomplete: str) -> list[tuple[str, str]]:
    """Codec names for ``--codec``: those this install encodes first; the others marked with what they need."""
    from cm_cli.degrade.registry import REGISTRY, describe_provider

    usable, marked = [], []
    for name, deg in REGISTRY.items():
        if deg.kind not in ("codec", "neural") or not name.startswith(incomplete):
            continue
        available, provider = describe_provider(deg)
        if available:
            usable.append((name, deg.description))
        else:
            marked.append((name, f"NOT ENCODABLE HERE ({provider}; see cm doctor)"))
    return usable + marked
