"""The Context's worker count and device reach the commands that load data or models (`cm eval --run`, `cm patch`)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("argv, expected", [((), 0), (("--workers", "3"), 3)])
def test_patch_and_eval_get_the_context_workers(cm_env, run_cm, monkeypatch, argv, expected):
    import cm_cli.analysis.patching as patching
    import cm_cli.evaluation as evaluation

    seen = {}

    class Stop(Exception):
        pass

    def fake(name):
        def call(*args, **kwargs):
            seen[name] = kwargs
            raise Stop()

        return call

    monkeypatch.setattr(patching, "run_patching", fake("patch"))
    monkeypatch.setattr(evaluation, "evaluate_model", fake("eval"))
    manifest = cm_env / "m.parquet"
    manifest.write_bytes(b"")
    run = cm_env / "run"
    (run / "checkpoints").mkdir(parents=True)
    with pytest.raises(Stop):  # the command reached the library call
        run_cm(
            *argv,
            "--device",
            "cpu",
            "patch",
            "--base",
            run,
            "--donor",
            run,
            "--manifest",
            manifest,
            "--out",
            cm_env / "p",
        )
    assert seen["patch"]["workers"] == expected and str(seen["patch"]["device"]) == "cpu"
    with pytest.raises(Stop):
        run_cm(*argv, "--device", "cpu", "eval", "--run", run, "--manifest", manifest, "--out", cm_env / "e")
    assert seen["eval"]["workers"] == expected and str(seen["eval"]["torch_device"]) == "cpu"
