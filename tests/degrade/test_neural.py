"""EnCodec: a clear error when the weights are not available locally (no download is attempted)."""

from __future__ import annotations

import pytest

from cm_cli.core.errors import CmError
from cm_cli.degrade.registry import validate_spec


def test_encodec_without_local_weights_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(CmError, match="not available locally") as err:
        validate_spec("encodec:kbps=6")
    assert "huggingface-cli download" in err.value.hint


def test_encodec_bitrate_must_be_a_model_bandwidth():
    with pytest.raises(CmError, match="not one of"):
        validate_spec("encodec:kbps=5", check_available=False)


def test_conditions_expand_to_valid_specs():
    from cm_cli.degrade.conditions import CONDITIONS, pick_condition

    for cid, condition in CONDITIONS.items():
        for spec in condition.specs():
            validate_spec(spec, check_available=False)
    a = pick_condition("c07", seed=0, utt_id="x")
    assert a == pick_condition("C07", seed=0, utt_id="x") and [s.name for s in a.steps] == ["mp3", "encodec"]
    with pytest.raises(CmError, match="unknown condition") as err:
        pick_condition("C11", seed=0, utt_id="x")
    assert "C01" in err.value.hint
