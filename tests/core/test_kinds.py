"""Artifact kinds declared by their producing modules: discovery without heavy imports, and one owner per kind."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cm_cli.core.kinds import get_kind, register_kind, unregister_kind


def test_discovery_finds_the_analysis_kinds_without_heavy_imports():
    code = (
        "import json, sys\nfrom cm_cli.core import kinds\n"
        "names = [k.name for k in kinds.analysis_kinds()]\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'sklearn', 'scipy', 'matplotlib') if m in sys.modules)\n"
        "print(json.dumps({'names': names, 'heavy': heavy, 'bulk': sorted(k.name for k in kinds.kinds() if k.bulk)}))"
    )
    out = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert out["names"] == ["loao", "probes", "cka", "patching", "loao_retrain", "profile"]
    assert out["heavy"] == []
    assert out["bulk"] == ["degraded", "embeddings", "manifest", "model"]


def test_kind_fields_and_owner_conflicts():
    loao = get_kind("loao")
    assert loao.module == "cm_cli.analysis.loao" and loao.summary_file == "loao.json"
    assert get_kind("loao_retrain").summary_file == "loao_plan.json" and get_kind("loao_retrain").optional
    assert get_kind("no_such_kind") is None
    with pytest.raises(ValueError, match="already declared by cm_cli.analysis.loao"):
        register_kind("loao", title="Another LOAO")
    with pytest.raises(ValueError, match="lower case"):
        register_kind("Bad-Name")
    try:
        first = register_kind("dummy_twice", title="Twice")
        assert register_kind("dummy_twice", title="Twice") == first  # a module imported twice
    finally:
        unregister_kind("dummy_twice")
