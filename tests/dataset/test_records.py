"""The records the tokenizer hands out: one set of named classes, built by both twins, equal on the corpus.

``open_dataset`` gives an ``Opened``, element tables give ``Record``s and
``Columns`` (or hand one element's fields to a factory), and
``parse_items``/``parse_fragments`` give ``Item``s (all from
``fastdicom.dataset._records``), whichever backend built them; and nothing
outside ``Dataset`` writes its instance state.
"""

from __future__ import annotations

import ast
import struct
from pathlib import Path

import pytest

import fastdicom
from fastdicom import _backends
from fastdicom.dataset._records import Columns, Item, Opened, Record
from fastdicom.dataset.write import to_bytes
from fastdicom.dictionary import uid as _uid
from fastdicom.errors import InvalidDicomError

from ..conftest import implementations
from ..corpus import corpus_files

IMPLS = implementations("parse")
FILES = corpus_files()  # a file not installed here skips in tests/conftest.py

try:
    rust = _backends.resolve("parse", "rust")[1]
except ImportError:
    rust = None
py = _backends.resolve("parse", "python")[1]
native_in_use = pytest.mark.skipif(rust is None or _backends.forced() == "python", reason="native backend not in use")


def _el(tag: int, vr: bytes, value: bytes) -> bytes:
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr
    if vr in (b"OB", b"SQ", b"UN", b"UT"):
        return head + b"\0\0" + struct.pack("<L", len(value)) + value
    return head + struct.pack("<H", len(value)) + value


def _part10(body: bytes, ts: bytes = b"1.2.840.10008.1.2.1\0") -> bytes:
    meta = _el(0x00020010, b"UI", ts)
    return b"\0" * 128 + b"DICM" + _el(0x00020000, b"UL", struct.pack("<L", len(meta))) + meta + body


# (0008,0060) CS "CT", (0010,0010) PN "Doe^J ", (0008,1140) SQ undefined length with one item of
# undefined length holding (0008,1150) UI, then (7FE0,0010) OB encapsulated: an empty BOT, one fragment.
BODY = (
    _el(0x00080060, b"CS", b"CT")
    + b"\x08\x00\x40\x11SQ\0\0\xff\xff\xff\xff"
    + b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
    + _el(0x00081150, b"UI", b"1.2\0")
    + b"\xfe\xff\x0d\xe0\0\0\0\0"
    + b"\xfe\xff\xdd\xe0\0\0\0\0"
    + _el(0x00100010, b"PN", b"Doe^J ")
    + b"\xe0\x7f\x10\x00OB\0\0\xff\xff\xff\xff"
    + b"\xfe\xff\x00\xe0\0\0\0\0"
    + b"\xfe\xff\x00\xe0\x04\0\0\0abcd"
    + b"\xfe\xff\xdd\xe0\0\0\0\0"
)
FILE = _part10(BODY)
META_END = 132 + 12 + 8 + 20  # group length element, then the Transfer Syntax UID element
B = META_END  # where the body starts


@pytest.mark.parametrize("name,mod", IMPLS, ids=[n for n, _ in IMPLS])
def test_open_dataset_gives_named_records(name, mod):
    o = mod.open_dataset(memoryview(FILE))
    assert type(o) is Opened
    assert (o.preamble, o.meta_start, o.meta_end, o.transfer_syntax) == (True, 132, META_END, "1.2.840.10008.1.2.1")
    assert (o.little_endian, o.explicit_vr, o.deflated, o.body_start) == (True, True, False, B)
    assert [r.tag for r in o.meta_table.records()] == [0x00020000, 0x00020010]
    t = o.body_table
    recs = t.records()
    assert all(type(r) is Record for r in recs)
    sq_len = 8 + 12 + 8  # the item header, the UI element, the Item Delimitation Item
    assert recs == [
        Record(0x00080060, "CS", B, B + 8, 2, False),
        Record(0x00081140, "SQ", B + 10, B + 22, sq_len, True),
        Record(0x00100010, "PN", B + 58, B + 66, 6, False),
        Record(0x7FE00010, "OB", B + 72, B + 84, 8 + 12, True),
    ]
    assert recs[1].end == recs[2].header_offset
    assert [t.record(i) for i in range(len(t))] == recs
    cols = t.columns()
    assert type(cols) is Columns and cols == Columns(*map(list, zip(*recs)))
    assert cols.tags == t.tags() == [r.tag for r in recs]
    # build: one element's fields straight to a factory, a context first when given
    assert t.build(2, Record) == recs[2]
    assert t.build(2, lambda *fields: fields, "ds") == ("ds", *recs[2])
    with pytest.raises(IndexError):
        t.build(len(t), Record)
    assert t.lookup(0x00100010) == recs[2] and t.lookup(0x00100020) is None
    with pytest.raises(IndexError):
        t.record(len(t))
    # value(): simple VRs decoded, everything else handed back as its record, absent as `missing`
    missing = object()
    assert t.value(FILE, 0x00080060, True, missing) == "CT"
    assert type(t.value(FILE, 0x00100010, True, missing)) is Record
    assert t.value(FILE, 0x00100010, True, missing) == recs[2]
    assert t.value(FILE, 0x00100010, True, missing, lambda *fields: fields, "ds") == ("ds", *recs[2])
    assert t.value(FILE, 0x00080060, True, missing, lambda *fields: fields, "ds") == "CT"
    assert t.value(FILE, 0x00100020, True, missing, Record) is missing
    items = mod.parse_items(FILE, recs[1].value_offset, recs[1].value_length, True, True, 1, recs[1].tag)
    assert items == [Item(B + 22, B + 30, 12, True)] and type(items[0]) is Item
    frags = mod.parse_fragments(FILE, recs[3].value_offset, recs[3].value_length, True, recs[3].tag)
    assert frags == [Item(B + 84, B + 92, 0, False), Item(B + 92, B + 100, 4, False)]
    assert all(type(f) is Item for f in frags)
    assert FILE[frags[1].value_offset : frags[1].value_offset + frags[1].value_length] == b"abcd"


@pytest.mark.parametrize("name,mod", IMPLS, ids=[n for n, _ in IMPLS])
def test_open_dataset_of_a_deflated_or_raw_data_set(name, mod):
    deflated = mod.open_dataset(_part10(b"\x03\x00", b"1.2.840.10008.1.2.1.99"))
    assert (deflated.deflated, deflated.body_table, deflated.body_start) == (True, None, META_END + 2)
    assert deflated.transfer_syntax == _uid.DeflatedExplicitVRLittleEndian
    raw = mod.open_dataset(BODY)
    assert (raw.preamble, raw.meta_table, raw.transfer_syntax) == (False, None, None)
    assert (raw.meta_start, raw.meta_end) == (0, 0)
    assert (raw.little_endian, raw.explicit_vr, raw.body_start) == (True, True, 0)
    assert raw.body_table.record(0) == Record(0x00080060, "CS", 0, 8, 2, False)


def _opened(mod, buf, stop: bool):
    """What ``open_dataset`` says about ``buf``: every field, the tables as their records; or the error."""
    try:
        o = mod.open_dataset(buf, stop)
    except InvalidDicomError as exc:
        return ("error", exc.message, exc.tag, exc.offset)
    assert type(o) is Opened
    out = o._asdict()
    for name in ("meta_table", "body_table"):
        t = out[name]
        if t is not None:
            out[name] = (t.records(), t.columns(), t.tags(), len(t), t.end, t.explicit_vr, t.sorted)
    return out


@native_in_use
@pytest.mark.parametrize("cf", FILES, ids=lambda cf: cf.path)
def test_both_twins_open_the_corpus_alike(cf):
    """Rust and Python build equal ``Opened`` records (and equal element records) for every corpus file."""
    data = memoryview(cf.resolve().read_bytes())
    for stop in (False, True):
        a, b = _opened(rust, data, stop), _opened(py, data, stop)
        assert a == b
        if isinstance(a, dict) and a["body_table"] is not None:
            assert all(type(r) is Record for r in a["body_table"][0])


def test_dataset_keeps_its_record():
    for name, _mod in IMPLS:
        ds = fastdicom.read(FILE, backend=name)
        elem = ds["PatientName"]
        assert (elem._hdr, elem._value_offset, len(elem.raw), elem._undefined) == (B + 58, B + 66, 6, False)
        assert elem.value == "Doe^J"
        assert ds.get(0x00100010) == "Doe^J"  # through the record value() hands back
        assert ds.transfer_syntax == _uid.ExplicitVRLittleEndian
        assert ds.preamble == b"\0" * 128 and ds.file_meta[0x00020010].value == _uid.ExplicitVRLittleEndian
        (item,) = ds["ReferencedImageSequence"].value
        assert item._item_undefined and item.get(0x00081150) == "1.2"
        px = ds["PixelData"]
        assert px.is_undefined_length and px._hdr == B + 72 and px._end == len(FILE)


def test_transfer_syntax_can_be_set():
    """Setting ``transfer_syntax`` names the syntax a data set is written in: File Meta's, and its own."""
    ds = fastdicom.read(FILE)
    ds.transfer_syntax = _uid.ImplicitVRLittleEndian
    assert ds.file_meta[0x00020010].value == _uid.ImplicitVRLittleEndian
    back = fastdicom.read(to_bytes(ds))
    assert back.transfer_syntax == _uid.ImplicitVRLittleEndian and back.is_implicit_vr
    assert back.get("PatientName") == "Doe^J"
    new = fastdicom.Dataset()
    new.add_new("PatientName", "PN", "A^B")
    assert new.transfer_syntax is None
    new.transfer_syntax = _uid.ExplicitVRBigEndian
    assert new.transfer_syntax == _uid.ExplicitVRBigEndian
    back = fastdicom.read(to_bytes(new))
    assert back.transfer_syntax == _uid.ExplicitVRBigEndian and not back.is_little_endian
    assert back.get("PatientName") == "A^B"


def test_json_items_take_their_parents_character_set():
    doc = {
        "00080005": {"vr": "CS", "Value": ["ISO_IR 100"]},
        "00081140": {"vr": "SQ", "Value": [{"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Müller^Jürgen"}]}}]},
    }
    ds = fastdicom.Dataset.from_json(doc)
    (item,) = ds["ReferencedImageSequence"].value
    assert item._parent is ds
    assert bytes(item["PatientName"].raw) == "Müller^Jürgen ".encode("latin-1")  # padded to even length


SRC = Path(fastdicom.__file__).parent
#: Files allowed to write Dataset.__dict__ from outside the class: none.
PENDING: set[str] = set()


def _dict_writes(tree: ast.AST, path: str):
    """``(path, line)`` of every write to some ``x.__dict__`` (item assignment, update/clear/...) outside ``class Dataset``."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "Dataset":
            inside.update(id(n) for n in ast.walk(node))
    for node in ast.walk(tree):
        if id(node) in inside:
            continue
        target = None
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            for t in targets:
                if isinstance(t, ast.Subscript):
                    target = t.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in ("update", "clear", "pop", "popitem", "setdefault", "__setitem__"):
                target = node.func.value
        if isinstance(target, ast.Attribute) and target.attr == "__dict__":
            yield (path, node.lineno)


def test_nothing_outside_dataset_writes_its_dict():
    found = set()
    for p in SRC.rglob("*.py"):
        rel = p.relative_to(SRC).as_posix()
        found.update(_dict_writes(ast.parse(p.read_text(), rel), rel))
    assert {(path, line) for path, line in found if path not in PENDING} == set()


def test_the_dict_write_finder_finds_writes():
    code = "ds.__dict__['_little'] = False\nd.__dict__.update(x)\nclass Dataset:\n    def f(self):\n        self.__dict__['a'] = 1\n"
    assert set(_dict_writes(ast.parse(code), "x.py")) == {("x.py", 1), ("x.py", 2)}
