"""Degradations are declared by their own modules and discovered on first use (issue 28: no closed list)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from cm_cli.core.errors import CmError
from cm_cli.core.specs import parse_spec
from cm_cli.degrade import registry
from cm_cli.degrade.registry import (
    REGISTRY,
    Degradation,
    Param,
    apply_spec,
    register_degradation,
    step_bitrate_kbps,
    validate_spec,
)

BUILT_IN = {
    "codecs": ["mp3", "aac", "m4a", "vorbis", "amr-nb", "amr-wb", "opus", "speex", "g726", "g722", "gsm", "g723_1"],
    "g711": ["mulaw", "alaw"],
    "neural": ["encodec", "dac", "mimi"],
    "device": ["mic", "speaker", "bluetooth", "cable"],
    "channel": ["telephony", "lowpass", "highpass", "bandpass", "bandstop", "resample", "gain", "clip", "trim"],
    "noise": ["noise"],
    "rawboost": ["rawboost"],
    "reverb": ["reverb"],
}


def test_each_degradation_is_declared_by_the_module_that_implements_it():
    for module, names in BUILT_IN.items():
        for name in names:
            assert REGISTRY[name].run.__module__ == f"cm_cli.degrade.{module}", name
    assert REGISTRY["clean"].run.__module__ == "cm_cli.degrade.registry"
    assert list(REGISTRY)[:3] == ["clean", "mp3", "aac"] and list(REGISTRY)[-3:] == ["noise", "rawboost", "reverb"]
    # what used to be branches on names in the registry is now each entry's own hook
    bitrate = {s: step_bitrate_kbps(parse_spec(s).steps[0]) for s in ("bluetooth", "bluetooth:mode=sbc:kbps=96")}
    assert bitrate == {"bluetooth": pytest.approx(57 * 8 * 16000 / 120 / 1000), "bluetooth:mode=sbc:kbps=96": 96.0}
    assert step_bitrate_kbps(parse_spec("mulaw").steps[0]) == 64.0
    assert step_bitrate_kbps(parse_spec("mulaw:rate=16000").steps[0]) is None
    assert registry._codec_for(REGISTRY["alaw"], {"impl": "ffmpeg"}) == "alaw-ffmpeg"
    assert registry._codec_for(REGISTRY["alaw"], {"impl": "numpy"}) is None
    with pytest.raises(CmError, match="needs dir=FOLDER"):
        validate_spec("noise:type=file")


def test_importing_the_registry_imports_no_degradation_module_until_it_is_read():
    code = (
        "import sys\n"
        "import cm_cli.degrade.registry as r\n"
        "loaded = lambda: sorted(m for m in sys.modules if m.startswith('cm_cli.degrade.') and m != r.__name__)\n"
        "print(loaded())\n"
        "print(len(r.REGISTRY), 'cm_cli.degrade.reverb' in loaded())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]" and out[1] == f"{len(REGISTRY)} True"


@pytest.fixture
def planted():
    """A dummy degradation declared in one place, as a plugin module would; removed afterwards."""

    def halve(x, ctx, params):
        return x * params["factor"], {"factor": params["factor"]}

    def check(params):
        if params["factor"] > 1:
            raise CmError("halve: factor must not amplify", option="factor")

    deg = register_degradation(
        Degradation(
            "halve",
            "channel",
            "planted: scale by factor",
            halve,
            (Param("factor", float, 0.5, "scale"),),
            check=check,
            bitrate=lambda params: 8.0 * params["factor"],
        ),
        order=55,
    )
    yield deg
    registry._ENTRIES.pop("halve")


def test_a_degradation_declared_in_one_place_is_listed_checked_run_and_completed(planted):
    from typer.testing import CliRunner

    from cm_cli.app import app
    from cm_cli.commands._complete import complete_spec

    names = list(REGISTRY)
    assert names.index("trim") < names.index("halve") < names.index("noise")  # order 55: after the filters
    assert validate_spec("halve:factor=0.25+gain:db=0").canonical() == "halve:factor=0.25+gain:db=0"
    x = np.linspace(-0.5, 0.5, 1600, dtype=np.float32)
    y, info = apply_spec(x, 16000, "halve:factor=0.25")
    assert np.allclose(y, x * 0.25) and info["steps"][0]["factor"] == 0.25
    with pytest.raises(Exception, match="is not a number"):
        validate_spec("halve:factor=x")
    with pytest.raises(CmError, match="must not amplify"):  # the entry's own check hook, no registry edit
        validate_spec("halve:factor=2")
    assert step_bitrate_kbps(parse_spec("halve:factor=0.25").steps[0]) == 2.0
    listed = CliRunner().invoke(app, ["--json", "degrade", "--list"])
    rows = {row["name"]: row for row in json.loads(listed.stdout)["degradations"]}
    assert listed.exit_code == 0 and rows["halve"]["params"] == "factor=0.5" and rows["halve"]["available"]
    assert [value for value, _ in complete_spec("hal")] == ["halve"]


def test_a_second_module_cannot_take_a_declared_name():
    def other(x, ctx, params):
        return x, {}

    other.__module__ = "somewhere.else"
    with pytest.raises(Exception, match="declared twice"):
        register_degradation(Degradation("reverb", "reverb", "clash", other))
    assert REGISTRY["reverb"].run.__module__ == "cm_cli.degrade.reverb"
