import pytest

from cm_cli.core.errors import CmError
from cm_cli.core.specs import canonical_spec, expand_sweep, normalise_value, parse_spec, spec_slug


def test_canonical_sorts_keys_and_normalises_numbers():
    assert canonical_spec("noise:type=pink:snr=10.0") == "noise:snr=10:type=pink"
    assert canonical_spec("MP3:KBPS=32.0+noise:snr=1e1") == "mp3:kbps=32+noise:snr=10"
    assert canonical_spec("gain:db=-6.50") == "gain:db=-6.5"


def test_step_order_is_part_of_the_condition():
    assert canonical_spec("mp3+noise") != canonical_spec("noise+mp3")


def test_sweep_expands_in_written_order_and_dedupes():
    specs = expand_sweep("mp3:kbps=8|16|32|16.0")
    assert [s.canonical() for s in specs] == ["mp3:kbps=8", "mp3:kbps=16", "mp3:kbps=32"]


def test_sweep_cartesian_product():
    specs = expand_sweep("mp3:kbps=16|32+noise:snr=5|10")
    assert [s.canonical() for s in specs] == [
        "mp3:kbps=16+noise:snr=5",
        "mp3:kbps=16+noise:snr=10",
        "mp3:kbps=32+noise:snr=5",
        "mp3:kbps=32+noise:snr=10",
    ]


def test_parse_refuses_a_sweep_where_one_condition_is_expected():
    with pytest.raises(CmError, match="sweep of 2"):
        parse_spec("mp3:kbps=8|16")


@pytest.mark.parametrize("bad", ["", "mp3:kbps", "mp3:kbps=", "mp3::", "mp3:kbps=1:kbps=2", "bad name", "mp3:kbps=inf"])
def test_malformed_specs_raise(bad):
    with pytest.raises(CmError):
        parse_spec(bad)


def test_slug_is_file_safe_and_unique_per_canonical_form():
    assert spec_slug("mp3:kbps=32+noise:type=pink:snr=10") == "mp3_kbps-32+noise_snr-10_type-pink"
    assert spec_slug("noise:snr=10:type=pink") == spec_slug("noise:type=pink:snr=10.0")
    a, b = spec_slug("noise:dir=/a/b"), spec_slug("noise:dir=/a-b")
    assert a != b and "/" not in a


def test_normalise_value():
    assert normalise_value("32") == 32 and isinstance(normalise_value("32.0"), int)
    assert normalise_value("0.50") == 0.5
    assert normalise_value("pink") == "pink"
