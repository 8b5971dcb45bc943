import pytest

from cm_cli.core.errors import CmError
from cm_cli.core.presets import list_presets, load_preset


def test_shipped_presets_parse_and_hold_no_paths():
    presets = list_presets()
    assert presets, "presets/ ships at least one preset"
    for p in presets:
        assert p.command and isinstance(p.options, dict)


def test_preset_from_path_and_forbidden_keys(tmp_path):
    good = tmp_path / "mine.yaml"
    good.write_text("command: manifest\ndescription: d\noptions:\n  subset: 10\n")
    assert load_preset(str(good)).options == {"subset": 10}
    bad = tmp_path / "bad.yaml"
    bad.write_text("command: train\noptions:\n  device: cuda\n")
    with pytest.raises(CmError, match="not device"):
        load_preset(str(bad))
    broken = tmp_path / "broken.yaml"
    broken.write_text("command: [\n")
    with pytest.raises(CmError, match="broken.yaml"):
        load_preset(str(broken))


def test_unknown_preset_lists_known_names():
    with pytest.raises(CmError) as info:
        load_preset("no_such_preset")
    assert "known presets" in (info.value.hint or "")


def test_wrong_command_is_refused(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("command: train\noptions: {}\n")
    with pytest.raises(CmError, match="configures `cm train`"):
        load_preset(str(p), command="eval")
