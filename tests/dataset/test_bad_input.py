"""Bad input gets a typed error, never a crash, a hang or a huge allocation."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastdicom
from fastdicom.errors import FastDicomError, InvalidDicomError


def _el(tag: int, vr: bytes, value: bytes, length: int | None = None) -> bytes:
    n = len(value) if length is None else length
    if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT"):
        return struct.pack("<HH2sHL", tag >> 16, tag & 0xFFFF, vr, 0, n) + value
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr, n) + value


def _part10(body: bytes, ts: bytes = b"1.2.840.10008.1.2.1\x00") -> bytes:
    meta = _el(0x00020010, b"UI", ts)
    glen = _el(0x00020000, b"UL", struct.pack("<L", len(meta)))
    return b"\0" * 128 + b"DICM" + glen + meta + body


CASES = {
    "length past end": _part10(_el(0x00100010, b"PN", b"Doe^John", length=200)),
    "long length past end": _part10(_el(0x7FE00010, b"OW", b"\0\0", length=0x7FFFFFF0)),
    "sequence never ends": _part10(
        _el(0x00081140, b"SQ", b"", length=0xFFFFFFFF)
        + b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
        + _el(0x00081150, b"UI", b"1.2\0")
    ),
    "item longer than sequence": _part10(
        _el(0x00081140, b"SQ", b"\xfe\xff\x00\xe0\x40\x00\x00\x00" + _el(0x00081150, b"UI", b"1.2\0"))
    ),
    "garbage in sequence": _part10(_el(0x00081140, b"SQ", b"\x01\x02\x03\x04\x05\x06\x07\x08")),
    "header cut": _part10(_el(0x00100010, b"PN", b"Doe^John"))[:-11],
    "fragment undefined": _part10(
        _el(0x7FE00010, b"OB", b"", length=0xFFFFFFFF) + b"\xfe\xff\x00\xe0\xff\xff\xff\xff" + b"\0" * 16
    ),
    "deep nesting": _part10(
        (_el(0x00081140, b"SQ", b"", length=0xFFFFFFFF) + b"\xfe\xff\x00\xe0\xff\xff\xff\xff") * 500
    ),
    "meta length lies": b"\0" * 128 + b"DICM" + _el(0x00020010, b"UI", b"1.2", length=60000),
    "not dicom": b"\xff\xfe\x00\xe0garbage-garbage-garbage",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_input_raises_typed_error(name, backend):
    with pytest.raises(InvalidDicomError) as info:
        ds = fastdicom.read(CASES[name], backend=backend)
        for elem in ds:
            _ = elem.value
            if elem.vr == "SQ":
                for item in elem.value:
                    list(item)
    assert isinstance(info.value, ValueError)
    assert info.value.offset is not None


def test_error_names_tag_and_offset(backend):
    with pytest.raises(InvalidDicomError) as info:
        fastdicom.read(CASES["length past end"], backend=backend)
    assert info.value.tag == 0x00100010
    assert info.value.offset == 128 + 4 + 12 + 28
    assert "(0010,0010)" in str(info.value)


def _touch_all(ds, depth=0):
    for elem in ds:
        _ = elem.value
        if elem.vr == "SQ":
            for item in elem.value:
                _touch_all(item, depth + 1)


SEED = _part10(
    _el(0x00080005, b"CS", b"ISO_IR 100")
    + _el(0x00081140, b"SQ", b"", length=0xFFFFFFFF)
    + b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
    + _el(0x00081150, b"UI", b"1.2.3\0")
    + b"\xfe\xff\x0d\xe0\x00\x00\x00\x00\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    + _el(0x00100010, b"PN", b"Doe^John")
    + _el(0x00280010, b"US", b"\x02\x00")
    + _el(0x7FE00010, b"OB", b"", length=0xFFFFFFFF)
    + b"\xfe\xff\x00\xe0\x00\x00\x00\x00\xfe\xff\x00\xe0\x04\x00\x00\x00abcd\xfe\xff\xdd\xe0\x00\x00\x00\x00"
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_read_survives_mutations(backend, data):
    buf = bytearray(SEED)
    for _ in range(data.draw(st.integers(1, 8))):
        kind = data.draw(st.sampled_from(["flip", "cut", "insert", "length"]))
        pos = data.draw(st.integers(0, max(0, len(buf) - 1)))
        if kind == "flip" and buf:
            buf[pos] = data.draw(st.integers(0, 255))
        elif kind == "cut":
            del buf[pos:]
        elif kind == "insert":
            buf[pos:pos] = data.draw(st.binary(max_size=16))
        elif kind == "length" and pos + 4 <= len(buf):
            buf[pos : pos + 4] = data.draw(
                st.sampled_from([b"\xff\xff\xff\xff", b"\xff\xff\x00\x00", b"\x00\x00\x00\x80"])
            )
    try:
        ds = fastdicom.read(bytes(buf), backend=backend)
        _touch_all(ds)
        fastdicom.to_bytes(ds)
    except FastDicomError:
        pass


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=600))
def test_read_survives_random_bytes(backend, blob):
    try:
        ds = fastdicom.read(blob, backend=backend)
        _touch_all(ds)
    except FastDicomError:
        pass
