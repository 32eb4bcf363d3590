"""The Rust tokenizer and its pure-Python twin give the same tables, items and errors."""

from __future__ import annotations

import pytest

import fastdicom
from fastdicom import _backends
from fastdicom.errors import InvalidDicomError

from ..corpus import corpus_files

try:
    rust = _backends.resolve("parse", "rust")[1]
except ImportError:
    rust = None
py = _backends.resolve("parse", "python")[1]

pytestmark = pytest.mark.skipif(rust is None or _backends.forced() == "python", reason="native backend not in use")

FILES = corpus_files()  # a file not installed here skips in tests/conftest.py


def _walk(ds, mod):
    """All (level records, item lists) of a data set, recursively, with the given parser."""
    out = []
    t = ds._table
    out.append([t.record(i) for i in range(len(t))] + [("end", t.end, t.explicit_vr, t.sorted)])
    for elem in ds:
        if elem.vr == "SQ":
            for item in elem.value:
                out += _walk(item, mod)
    return out


@pytest.mark.parametrize("cf", FILES, ids=lambda cf: cf.path)
def test_same_tables(cf):
    path = cf.resolve()
    results = []
    for backend in ("rust", "python"):
        try:
            ds = fastdicom.read(path, backend=backend)
            results.append(("ok", _walk(ds, backend)))
        except InvalidDicomError as exc:
            results.append(("error", exc.message, exc.tag, exc.offset))
    assert results[0] == results[1]


@pytest.mark.parametrize("cut", [0, 1, 7, 8, 11, 12, 100, 131, 132, 140, 300, 1000])
def test_same_errors_on_truncation(cut):
    path = next((f.resolve() for f in FILES if f.path.endswith("CT_small.dcm")), None)
    if path is None:
        pytest.skip("CT_small.dcm not installed")
    data = path.read_bytes()[:cut]
    outcome = []
    for backend in ("rust", "python"):
        try:
            ds = fastdicom.read(data, backend=backend)
            outcome.append(("ok", [e.tag for e in ds]))
        except InvalidDicomError as exc:
            outcome.append(("error", exc.message, exc.tag, exc.offset))
    assert outcome[0] == outcome[1]


def test_parse_items_and_fragments_agree():
    buf = bytearray()
    buf += b"\xe0\x7f\x10\x00OB\x00\x00\xff\xff\xff\xff"
    buf += b"\xfe\xff\x00\xe0\x04\x00\x00\x00" + b"\x00\x00\x00\x00"
    buf += b"\xfe\xff\x00\xe0\x02\x00\x00\x00ab"
    buf += b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    for mod in (rust, py):
        t = mod.parse_dataset(bytes(buf), 0, len(buf), True, True)
        rec = t.record(0)
        frags = mod.parse_fragments(bytes(buf), rec.value_offset, rec.value_length, True, rec.tag)
        assert [(f.value_offset, f.value_length) for f in frags] == [(20, 4), (32, 2)]
