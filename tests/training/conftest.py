"""Shared fixtures for the training tests: one tiny toy corpus and its manifest per session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def toy_tiny(tmp_path_factory) -> tuple[Path, Path]:
    """(data root holding ``toy/`` at size tiny, manifest path)."""
    from cm_cli.data.corpora.toy import build_toy_corpus
    from cm_cli.data.manifests import make_manifest

    root = tmp_path_factory.mktemp("toydata")
    build_toy_corpus(root / "toy", size="tiny", seed=0, workers=2)
    result = make_manifest("toy", root / "manifest", data_root=root, corpus_root=root / "toy", workers=2)
    return root, result.path
