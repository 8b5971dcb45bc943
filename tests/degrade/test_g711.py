"""G.711 in numpy against the standard's segment algorithm (scalar) and audioop, over all 65,536 inputs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from cm_cli.degrade import g711

ALL16 = np.arange(-32768, 32768, dtype=np.int16)


def _ref_ulaw(sample: int) -> int:
    """G.711 mu-law by the book: 14-bit magnitude, bias 33, segment = position of the leading 1, invert all bits."""
    value = sample >> 2
    sign = 0x80 if value < 0 else 0
    magnitude = min(-value if value < 0 else value, 8159) + 33
    segment = max(0, magnitude.bit_length() - 6)  # segment k covers magnitudes [2**(k+5), 2**(k+6))
    if segment > 7:  # beyond the last segment: the largest code
        return (~(sign | 0x7F)) & 0xFF
    step = (magnitude >> (segment + 1)) & 0x0F
    return (~(sign | (segment << 4) | step)) & 0xFF


def _ref_alaw(sample: int) -> int:
    """G.711 A-law by the book: 13-bit value, segment from the leading 1, toggle even bits (0x55), sign 1 = positive."""
    value = sample >> 3
    if value >= 0:
        sign, magnitude = 0x80, value
    else:
        sign, magnitude = 0x00, -value - 1
    segment = max(0, magnitude.bit_length() - 5)
    if segment > 7:
        code = 0x7F
    else:
        step = (magnitude >> 1) & 0x0F if segment < 2 else (magnitude >> segment) & 0x0F
        code = (segment << 4) | step
    return (sign | code) ^ 0x55


def test_ulaw_encoder_matches_segment_algorithm_on_all_inputs():
    reference = np.array([_ref_ulaw(int(s)) for s in ALL16], dtype=np.uint8)
    np.testing.assert_array_equal(g711.lin2ulaw(ALL16), reference)


def test_alaw_encoder_matches_segment_algorithm_on_all_inputs():
    reference = np.array([_ref_alaw(int(s)) for s in ALL16], dtype=np.uint8)
    np.testing.assert_array_equal(g711.lin2alaw(ALL16), reference)


def test_decoders_known_values():
    # ITU tables: mu-law 0xFF and 0x7F are +-0, 0x80 is +32124; A-law 0xD5 is +8, 0xAA is +32256
    assert g711.ulaw2lin(np.array([0xFF, 0x7F, 0x80, 0x00], np.uint8)).tolist() == [0, 0, 32124, -32124]
    assert g711.alaw2lin(np.array([0xD5, 0x55, 0xAA, 0x2A], np.uint8)).tolist() == [8, -8, 32256, -32256]


def test_against_audioop_when_available():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop", reason="audioop was removed in Python 3.13")
    data = ALL16.tobytes()
    np.testing.assert_array_equal(g711.lin2ulaw(ALL16), np.frombuffer(audioop.lin2ulaw(data, 2), np.uint8))
    np.testing.assert_array_equal(g711.lin2alaw(ALL16), np.frombuffer(audioop.lin2alaw(data, 2), np.uint8))
    codes = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(g711.ulaw2lin(codes), np.frombuffer(audioop.ulaw2lin(codes.tobytes(), 2), np.int16))
    np.testing.assert_array_equal(g711.alaw2lin(codes), np.frombuffer(audioop.alaw2lin(codes.tobytes(), 2), np.int16))


def test_float_roundtrip_error_is_small_relative_to_level():
    x = np.linspace(-0.9, 0.9, 4001, dtype=np.float32)
    for roundtrip in (g711.mulaw_roundtrip, g711.alaw_roundtrip):
        y = roundtrip(x)
        assert y.dtype == np.float32 and y.shape == x.shape
        assert np.max(np.abs(y - x) / (np.abs(x) + 1e-2)) < 0.07
