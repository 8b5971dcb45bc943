"""The training methods: one module per method, one registration line each (``register`` below).

``cm train --method`` offers ``method_names()``; ``TrainConfig.validate`` resolves a name
with ``get_method`` (an unknown one is a one-line error listing the choices). A method
is registered by dotted path so that listing the names (``cm train --help``) imports
neither torch nor the method modules. See docs/training.md, "Adding a method".
"""

from __future__ import annotations

import importlib

from cm_cli.core.errors import UsageError

__all__ = ["register", "method_names", "get_method", "LOSSES"]

_REGISTRY: dict[str, object] = {}
LOSSES = ("ce", "ocsoftmax")


def register(name: str, target) -> None:
    """Offer ``target`` (a ``Method`` subclass, or ``"module:Class"``) as ``--method name``."""
    _REGISTRY[str(name)] = target


def method_names() -> list[str]:
    return list(_REGISTRY)


def get_method(name: str):
    """The ``Method`` class registered as ``name``."""
    target = _REGISTRY.get(str(name))
    if target is None:
        raise UsageError(f"unknown method {name!r}", f"choose one of {', '.join(_REGISTRY)}")
    if isinstance(target, str):
        module, attr = target.split(":")
        target = getattr(importlib.import_module(module), attr)
        _REGISTRY[str(name)] = target
    return target


register("erm", "cm_cli.training.methods.erm:Erm")
register("dann", "cm_cli.training.methods.dann:Dann")
register("sam", "cm_cli.training.methods.sam:Sam")
register("asam", "cm_cli.training.methods.sam:Asam")
register("coral", "cm_cli.training.methods.coral:Coral")
register("mmd", "cm_cli.training.methods.mmd:Mmd")
register("groupdro", "cm_cli.training.methods.groupdro:GroupDro")
