"""``ElementTable.value``: the Rust fast path decodes simple values exactly as the Python decoders do."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastdicom
from fastdicom import _backends
from fastdicom.dataset import _parse_py
from fastdicom.dataset import values as _values
from fastdicom.dataset._records import Record
from fastdicom.dataset.valuerep import IS, UID, DSfloat, MultiValue

from ..corpus import corpus_files

try:
    rust = _backends.resolve("parse", "rust")[1]
except ImportError:
    rust = None
py = _backends.resolve("parse", "python")[1]

pytestmark = pytest.mark.skipif(rust is None or _backends.forced() == "python", reason="native backend not in use")

SIMPLE = tuple(_parse_py._SIMPLE)
LONG = {"UR", "UV", "SV"}
TAG = 0x00091010
MISSING = object()


def _same(a, b) -> bool:
    if isinstance(a, list) and isinstance(b, list):  # MultiValue both: the same types all the way down
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def _element(vr: str, raw: bytes, little: bool) -> bytes:
    e = "<" if little else ">"
    head = struct.pack(e + "HH", TAG >> 16, TAG & 0xFFFF) + vr.encode()
    if vr in LONG:
        return head + b"\0\0" + struct.pack(e + "L", len(raw)) + raw
    return head + struct.pack(e + "H", len(raw)) + raw


def _both(vr: str, raw: bytes, little: bool = True):
    buf = _element(vr, raw, little)
    out = []
    for mod in (rust, py):
        table = mod.parse_dataset(buf, 0, len(buf), little, True)
        out.append(table.value(buf, TAG, little, MISSING))
    return out


def _reference(vr: str, raw: bytes, little: bool = True):
    return _values.empty_value(vr) if not raw else _values.DECODERS[vr](raw, little, ())


text_bytes = st.binary(max_size=40) | st.text(alphabet=" \\\0.+-eE0123456789AZaz", max_size=40).map(str.encode)


@settings(max_examples=400, deadline=None)
@given(vr=st.sampled_from(SIMPLE), raw=text_bytes, little=st.booleans())
def test_fast_path_matches_python_decoders(vr, raw, little):
    if len(raw) % 2:
        raw += b" "
    native, twin = _both(vr, raw, little)
    try:
        ref = _reference(vr, raw, little)
    except fastdicom.errors.InvalidDicomError:
        ref = None
        assert native.__class__ is Record  # the fast path leaves bad lengths to the general path
    if native.__class__ is not Record:
        assert _same(native, ref), (vr, raw, native, ref)
    if twin.__class__ is not Record:
        assert _same(twin, ref)
    for mod in (rust, py):
        v = mod.decode_simple(vr, raw, little, MISSING)
        if v is not MISSING:
            assert _same(v, ref)
        elif mod is rust and native.__class__ is not Record:
            raise AssertionError("decode_simple and ElementTable.value disagree")


@pytest.mark.parametrize(
    "vr,raw,expected",
    [
        ("DS", b"1.5\\-2e3", MultiValue([DSfloat("1.5"), DSfloat("-2e3")])),
        ("DS", b" .5 ", DSfloat(".5")),
        ("DS", b"0.661468", DSfloat("0.661468")),
        ("IS", b"+07 ", IS("+07")),
        ("IS", b"12", IS("12")),
        ("UI", b"1.2.840\0", UID("1.2.840")),
        ("UI", b"\0", ""),
        ("CS", b"ORIGINAL\\PRIMARY ", MultiValue(["ORIGINAL", "PRIMARY"])),
        ("US", b"\x01\x00\x02\x00", MultiValue([1, 2])),
        ("AT", b"\x10\x00\x20\x00", 0x00100020),
        ("FD", struct.pack("<d", 2.5), 2.5),
        ("DS", b"", None),
        ("CS", b"", ""),
    ],
)
def test_fast_path_decodes_plain_values(vr, raw, expected):
    native, twin = _both(vr, raw)
    assert _same(native, expected)
    assert _same(twin, expected)
    assert str(native) == str(twin) == str(expected)


@pytest.mark.parametrize("vr,raw", [("DS", b"nan "), ("DS", b"1_0 "), ("IS", b"1.0 "), ("CS", b"\xe9 "), ("LO", b"AB")])
def test_fast_path_hands_back_the_record(vr, raw):
    native, _ = _both(vr, raw)
    head = 12 if vr in LONG else 8
    assert native == Record(TAG, vr, 0, head, len(raw), False)


def test_missing_tag():
    buf = _element("CS", b"AB", True)
    for mod in (rust, py):
        assert mod.parse_dataset(buf, 0, len(buf), True, True).value(buf, 0x00100010, True, MISSING) is MISSING


# Every listed file: one that is not installed here skips (or fails under
# FASTDICOM_REQUIRE_CORPUS=1) in tests/conftest.py, it does not vanish.
FILES = corpus_files()


def _read(path, backend):
    try:
        return fastdicom.read(path, backend=backend)
    except fastdicom.errors.InvalidDicomError as exc:
        return ("refused", exc.message, exc.tag, exc.offset)


@pytest.mark.parametrize("cf", FILES, ids=lambda cf: cf.path)
def test_get_agrees_across_backends(cf):
    """Every top-level value through ``Dataset.get`` is the same on both backends; a file that is malformed on
    purpose is refused by both with the same error."""
    path = cf.resolve()
    a, b = _read(path, "rust"), _read(path, "python")
    if isinstance(a, tuple) or isinstance(b, tuple):
        assert a == b
        return
    for tag in a._table.tags():
        try:
            va = a.get(tag)
        except fastdicom.errors.FastDicomError as exc:
            va = ("error", str(exc))
        try:
            vb = b.get(tag)
        except fastdicom.errors.FastDicomError as exc:
            vb = ("error", str(exc))
        if isinstance(va, list) and va and isinstance(va[0], fastdicom.Dataset):
            continue
        assert _same(va, vb) or repr(va) == repr(vb), hex(tag)
