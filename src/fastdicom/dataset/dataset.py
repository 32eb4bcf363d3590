"""``Dataset`` and ``Element``: lazy, zero-copy views over parsed DICOM bytes.

A parsed ``Dataset`` holds the buffer (a memoryview, usually of a memory
mapped file) and the element table the tokenizer built for its level. An
``Element`` is created when asked for; its ``.raw`` is a memoryview of the
encoded value and its ``.value`` is decoded on first access. Sequences are
parsed item by item when their value is read.

Changing a data set (setting, deleting) copies its element list once
(copy-on-write); the elements themselves keep pointing at the buffer, so
unchanged values are written back byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..dictionary import entry as dict_entry
from ..dictionary import private_entry, tag_of
from ..errors import InvalidDicomError
from . import values as _values
from .charset import python_codecs
from .valuerep import IS, UID, DSfloat, MultiValue, PersonName

_UNSET = object()
_new_element = object.__new__
#: VRs whose value ``Dataset.get`` decodes straight from the buffer (no character set, no nesting).
_DIRECT = {vr: dec for vr, dec in _values.DECODERS.items() if vr not in _values.CHARSET_TEXT_VRS and vr != "UN"}
_DEFAULT_CODECS = python_codecs(None)

#: Tags whose 'US or SS' VR depends on Pixel Representation (PS3.5 A.1/PS3.6).
_AMBIGUOUS_US_SS = frozenset(
    (
        0x00189810, 0x00221452, 0x00280104, 0x00280105, 0x00280106, 0x00280107, 0x00280108,
        0x00280109, 0x00280110, 0x00280111, 0x00280120, 0x00280121, 0x00281101, 0x00281102,
        0x00281103, 0x00283002, 0x00409211, 0x00409216, 0x00603004, 0x00603006,
    )
)  # fmt: skip


def tag_from_key(key: Any) -> int:
    """Turn a keyword, an int tag or a ``(group, element)`` tuple into an int tag."""
    if isinstance(key, int):
        if not 0 <= key <= 0xFFFFFFFF:
            raise KeyError(f"{key} is not a DICOM tag (0 to 0xFFFFFFFF)")
        return key
    if isinstance(key, str):
        t = tag_of(key)
        if t is None:
            raise KeyError(f"unknown DICOM keyword {key!r}")
        return t
    if isinstance(key, tuple) and len(key) == 2:
        group, element = int(key[0]), int(key[1])
        if not (0 <= group <= 0xFFFF and 0 <= element <= 0xFFFF):
            raise KeyError(f"{key} is not a DICOM tag")
        return (group << 16) | element
    raise TypeError(f"a DICOM tag is a keyword, an int or a (group, element) tuple, not {type(key).__name__}")


_SCALAR_TYPES = {"PN": PersonName, "UI": UID, "DS": DSfloat, "IS": IS}


def _convert_one(vr: str, v: Any) -> Any:
    cls = _SCALAR_TYPES.get(vr)
    if cls is None or v is None or isinstance(v, cls) or (isinstance(v, str) and not v.strip()):
        return v
    if vr in ("PN", "UI"):
        return cls(v) if isinstance(v, str) else cls(str(v))
    try:
        return cls(v)
    except (TypeError, ValueError):
        return v  # kept as given: writing it says what is wrong


def convert_value(vr: str, value: Any) -> Any:
    """A value assigned to an element of VR ``vr`` in the types a read gives (pydicom converts on assignment).

    PN, UI, DS and IS strings (and numbers for DS and IS) become
    :class:`PersonName`, :class:`UID`, :class:`DSfloat` and :class:`IS`;
    lists and tuples of values become a :class:`MultiValue` of those; other
    values are kept as they are.
    """
    if vr == "SQ" or vr in _values.BYTES_VRS:
        return value
    if isinstance(value, (list, tuple)):
        return MultiValue(_convert_one(vr, v) for v in value)
    return _convert_one(vr, value)


class Element:
    """One data element.

    Attributes
    ----------
    tag : int
        The tag as an int, ``0xGGGGEEEE``.
    vr : str
        The value representation (resolved from the dictionary for implicit VR).
    """

    __slots__ = ("tag", "vr", "_raw", "_value", "_ds", "_hdr", "_value_offset", "_undefined", "_dirty", "_seq_enc")

    def __init__(self, tag: int, vr: str, value: Any = _UNSET, *, raw: Any = None) -> None:
        self.tag = tag
        self.vr = vr
        self._raw = raw
        self._value = value if value is _UNSET else convert_value(vr, value)
        self._ds: Dataset | None = None
        # Where a parsed element lies in its data set's buffer (its Record's header_offset, value_offset and
        # undefined_length; the value length is len(_raw)); -1 when not parsed.
        self._hdr = -1
        self._value_offset = -1
        self._undefined = False
        self._dirty = raw is None
        self._seq_enc: tuple[bool, bool] | None = None

    @property
    def _end(self) -> int:
        """Offset just past a parsed element (past its delimiter for an undefined length), else -1."""
        if self._hdr < 0 or self._raw is None:
            return -1
        return self._value_offset + len(self._raw) + (8 if self._undefined else 0)

    # -- values ---------------------------------------------------------
    @property
    def value(self) -> Any:
        """The decoded value (same types and values as pydicom 3)."""
        v = self._value
        if v is _UNSET:
            v = self._value = self._decode()
        return v

    @value.setter
    def value(self, new: Any) -> None:
        self._value = convert_value(self.vr, new)
        self._raw = None
        self._dirty = True
        if self._ds is not None:
            self._ds._touch()

    def _decode(self) -> Any:
        ds = self._ds
        raw = self._raw
        if raw is None:
            return _values.empty_value(self.vr)
        if self.vr == "SQ":
            return self._decode_sequence()
        little = ds._little if ds is not None else True
        mod = ds._mod if ds is not None else None
        if mod is not None:  # plain ASCII text, numbers, tags: the parser's fast path
            v = mod.decode_simple(self.vr, raw, little, _UNSET)
            if v is not _UNSET:
                return v
        codecs = ds._codecs() if ds is not None and self.vr in _values.CHARSET_TEXT_VRS else _DEFAULT_CODECS
        try:
            return _values.decode(self.vr, raw, little, codecs)
        except InvalidDicomError as exc:
            raise InvalidDicomError(exc.message, self.tag, self._hdr if self._hdr >= 0 else None) from None

    def _decode_sequence(self) -> list:
        ds = self._ds
        assert ds is not None
        buf = ds._buf
        little, explicit = self._seq_enc or (ds._little, ds._explicit)
        assert self._hdr >= 0  # a parsed sequence knows where it lies
        start = self._value_offset
        parser = ds._mod
        items = parser.parse_items(buf, start, len(self._raw), little, explicit, ds._depth + 1, self.tag)
        return [
            Dataset._from_buffer(
                buf,
                it.value_offset,
                it.value_offset + it.value_length,
                little,
                explicit,
                parser,
                in_item=True,
                depth=ds._depth + 1,
                parent=ds,
                item_undefined=it.undefined_length,
            )
            for it in items
        ]

    @property
    def raw(self) -> memoryview:
        """The encoded value bytes, without copy for parsed elements."""
        if self._raw is None:
            ds = self._ds
            little = ds._little if ds is not None else True
            codecs = ds._codecs() if ds is not None else _DEFAULT_CODECS
            if self.vr == "SQ":
                from .write import encode_sequence_value

                return memoryview(encode_sequence_value(self, little, ds._explicit if ds is not None else True))
            self._raw = memoryview(_values.encode(self.vr, self._value, little, codecs))
        return self._raw if isinstance(self._raw, memoryview) else memoryview(self._raw)

    @property
    def vm(self) -> int:
        """Value multiplicity."""
        return _values.vm_of(self.vr, self.value)

    # pydicom's spellings
    @property
    def VR(self) -> str:  # noqa: N802
        """The value representation (pydicom's name for :attr:`vr`)."""
        return self.vr

    @VR.setter
    def VR(self, vr: str) -> None:  # noqa: N802
        self.vr = vr

    @property
    def VM(self) -> int:  # noqa: N802
        """Value multiplicity (pydicom's name for :attr:`vm`)."""
        return self.vm

    @property
    def is_private(self) -> bool:
        """Whether the tag is private (odd group)."""
        return bool(self.tag >> 16 & 1)

    @property
    def is_empty(self) -> bool:
        """Whether the element has no value (VM 0)."""
        return self.vm == 0

    @property
    def is_undefined_length(self) -> bool:
        return self._undefined

    @property
    def keyword(self) -> str:
        e = dict_entry(self.tag)
        return e[4] if e is not None and not self.tag >> 16 & 1 else ""

    @property
    def name(self) -> str:
        if self.tag >> 16 & 1:
            if self.tag & 0xFFFF == 0:
                return "Private Group Length"
            if 0x10 <= self.tag & 0xFFFF <= 0xFF:
                return "Private Creator"
            return "Private tag data"
        e = dict_entry(self.tag)
        return e[2] if e is not None else "Unknown"

    def _pristine(self) -> bool:
        if self._dirty:
            return False
        if self.vr == "SQ" and isinstance(self._value, list):
            return all(item._pristine() for item in self._value)
        return True

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Element):
            return NotImplemented
        return self.tag == other.tag and self.vr == other.vr and self.value == other.value

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"({self.tag >> 16:04X},{self.tag & 0xFFFF:04X}) {self.name[:35]:<35} {self.vr}: {_short(self)}"


def _short(elem: Element) -> str:
    if elem.vr == "SQ":
        return f"<Sequence of {len(elem.value)} item(s)>"
    if elem.vr in _values.BYTES_VRS or elem.tag in (0x7FE00010, 0x7FE00008, 0x7FE00009):
        n = len(elem.raw)
        return f"<{n} bytes>" if n > 32 else repr(bytes(elem.raw))
    v = elem.value
    if isinstance(v, UID) and v.keyword:  # as pydicom shows known UIDs: by name
        return v.name
    s = repr(v)
    return s if len(s) <= 80 else s[:77] + "..."


def _new_state(
    buf,
    table,
    mod,
    start,
    end,
    little,
    explicit,
    parent,
    depth,
    stopped,
    item_undefined: bool = False,
    meta_args: tuple | None = None,
    preamble: bytes | None = None,
    filename: str | None = None,
    transfer_syntax: str | None = None,
) -> dict:
    """The instance state of a Dataset (kept in one place for every constructor; called with positional
    arguments on the hot paths: keywords cost more to match than the rest of the call)."""
    return {
        "_buf": buf,
        "_table": table,
        "_mod": mod,
        "_start": start,
        "_end": end,
        "_little": little,
        "_explicit": explicit,
        "_elements": {},
        "_values": {},
        "_modified": False,
        "_parent": parent,
        "_depth": depth,
        "_codecs_cache": None,
        "_item_undefined": item_undefined,
        "_file_meta": None,
        "_meta_args": meta_args,
        "preamble": preamble,
        "filename": filename,
        "_transfer_syntax": transfer_syntax,
        "_stopped_before_pixels": stopped,
    }


class Dataset:
    """A DICOM data set: a mapping of tags to :class:`Element`.

    Examples
    --------
    >>> import fastdicom
    >>> ds = fastdicom.read("ct.dcm", stop_before_pixels=True)  # doctest: +SKIP
    >>> ds.PatientName, ds["InstanceNumber"].value, 0x00100010 in ds  # doctest: +SKIP
    """

    # Instance state, set in one go from _new_state (annotations only: no class attributes).
    _elements: dict[int, Element]
    _modified: bool
    _codecs_cache: tuple[str, ...] | None

    def __init__(self) -> None:
        self.__dict__.update(_new_state(None, None, None, 0, 0, True, True, None, 0, False), _modified=True)

    @classmethod
    def _empty(cls, *, little_endian: bool = True, transfer_syntax: str | None = None) -> Dataset:
        """A new, empty data set whose bytes values are in the given byte order (``from_pydicom``)."""
        ds = cls.__new__(cls)
        ds.__dict__.update(
            _new_state(None, None, None, 0, 0, little_endian, True, None, 0, False, transfer_syntax=transfer_syntax),
            _modified=True,
        )
        return ds

    @classmethod
    def _from_buffer(
        cls,
        buf,
        start: int,
        end: int,
        little: bool,
        explicit: bool,
        mod,
        *,
        in_item: bool = False,
        depth: int = 0,
        parent: Dataset | None = None,
        stop_before_pixels: bool = False,
        item_undefined: bool = False,
    ) -> Dataset:
        table = mod.parse_dataset(buf, start, end, little, explicit, stop_before_pixels, in_item, depth)
        return cls._from_table(
            buf,
            table,
            start,
            end,
            little,
            mod,
            parent=parent,
            depth=depth,
            stop_before_pixels=stop_before_pixels,
            item_undefined=item_undefined,
        )

    @classmethod
    def _from_table(
        cls,
        buf,
        table,
        start: int,
        end: int,
        little: bool,
        mod,
        *,
        depth: int = 0,
        parent: Dataset | None = None,
        stop_before_pixels: bool = False,
        item_undefined: bool = False,
    ) -> Dataset:
        """A data set over ``buf`` from an element table the tokenizer built."""
        ds = cls.__new__(cls)
        # One dict update: Dataset.__setattr__ is reserved for keywords.
        ds.__dict__.update(
            _new_state(
                buf,
                table,
                mod,
                start,
                table.end,
                little,
                table.explicit_vr,
                parent,
                depth,
                stop_before_pixels and table.end < end,
                item_undefined,
            )
        )
        return ds

    @classmethod
    def _from_file(
        cls,
        buf,
        table,
        start: int,
        little: bool,
        mod,
        stop_before_pixels: bool,
        meta_args: tuple | None,
        preamble: bytes | None,
        filename: str | None,
        transfer_syntax: str,
    ) -> Dataset:
        """The top level of a file (``fastdicom.read``) over ``buf[start:]`` from its element table.

        ``meta_args`` is ``(buffer, table, start, end, parser)`` of the File
        Meta group, made into a Dataset when :attr:`file_meta` is first read.
        """
        ds = cls.__new__(cls)
        ds.__dict__.update(
            _new_state(
                buf,
                table,
                mod,
                start,
                table.end,
                little,
                table.explicit_vr,
                None,
                0,
                stop_before_pixels and table.end < len(buf),
                False,
                meta_args,
                preamble,
                filename,
                transfer_syntax,
            )
        )
        return ds

    # -- element creation ------------------------------------------------
    def _element_at(self, i: int) -> Element:
        return self._table.build(i, _element, self)

    def _element(self, tag: int, vr: str, hdr: int, off: int, length: int, undefined: bool) -> Element:
        """The Element of a parsed element from its :class:`~._records.Record`'s fields, in their order.

        The table hands them over (``build``, ``value``, calling ``_element(ds, ...)`` with the data set
        as context: a bound method would cost a lookup through ``__getattr__``) or they come from its
        columns: no record object is made on the way.
        """
        elem = _new_element(Element)
        elem.tag = tag
        elem._raw = self._buf[off : off + length]
        elem._value = self._values.get(tag, _UNSET)
        elem._ds = self
        elem._hdr = hdr
        elem._value_offset = off
        elem._undefined = undefined
        elem._dirty = False
        elem._seq_enc = None
        if not vr or vr == "UN":
            self._resolve_vr(elem, vr)
        else:
            elem.vr = vr
        return elem

    def _resolve_vr(self, elem: Element, encoded: str) -> None:
        """VR of an implicit VR element, or of one encoded as UN (pydicom's rules)."""
        tag = elem.tag
        group = tag >> 16
        if group & 1:  # private: creator elements are LO, the rest from the private dictionary
            el = tag & 0xFFFF
            if el == 0:
                vr = "UL"
            elif 0x10 <= el <= 0xFF:
                vr = "LO"
            else:
                vr = "UN"
                creator = self.get((group, el >> 8)) if el >= 0x1000 else None
                if isinstance(creator, str) and creator:
                    pe = private_entry(tag, creator)
                    if pe is not None and " or " not in pe[0]:
                        vr = pe[0]
            if elem._undefined:
                vr = "SQ"
        else:
            e = dict_entry(tag)
            vr = e[0] if e is not None else "UN"
            if " or " in vr:
                vr = self._correct_ambiguous(tag, vr, elem)
            if vr == "UN" and elem._undefined:
                vr = "SQ"
        if vr == "SQ" and encoded == "UN":
            elem._seq_enc = (True, False)  # CP-246: implicit VR little endian
        elif not encoded:
            elem._seq_enc = (self._little, False)
        elem.vr = vr

    def _correct_ambiguous(self, tag: int, vr: str, elem: Element) -> str:
        if tag == 0x7FE00010:
            return "OB" if elem._undefined else "OW"
        if tag in _AMBIGUOUS_US_SS:
            ds: Dataset | None = self
            while ds is not None:
                rep = ds.get(0x00280103)
                if isinstance(rep, int):
                    return "US" if rep == 0 else "SS"
                ds = ds._parent
            return "US"
        if tag == 0x00283006:  # LUT Data: US when the LUT Descriptor says 1 entry
            desc = self.get(0x00283002)
            first = desc[0] if isinstance(desc, list) else desc
            return "US" if first == 1 else "OW"
        if vr.startswith("OB or OW") or vr == "US or SS or OW":
            return "OW"
        return vr.split(" or ")[0]

    # -- mapping interface -------------------------------------------------
    def _lookup(self, tag: int) -> Element | None:
        elem = self._elements.get(tag)
        if elem is not None or self._modified:
            return elem
        table = self._table
        if table is None:
            return None
        i = table.find(tag)
        if i < 0:
            return None
        elem = self._element_at(i)
        self._elements[tag] = elem
        return elem

    def __getitem__(self, key: Any) -> Element:
        tag = tag_from_key(key)
        elem = self._lookup(tag)
        if elem is None:
            raise KeyError(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) not in data set")
        return elem

    def get(self, key: Any, default: Any = None) -> Any:
        """The value of an element (``default`` if absent)."""
        if key.__class__ is int and 0 <= key <= 0xFFFFFFFF:
            tag = key
        else:
            try:
                tag = tag_from_key(key)
            except KeyError:
                return default
        elem = self._elements.get(tag)
        if elem is not None:
            v = elem._value
            return elem.value if v is _UNSET else v
        if self._modified or self._table is None:
            return default
        # Unmodified data set: decode straight from the record, without an Element.
        values = self._values
        v = values.get(tag, _UNSET)
        if v is not _UNSET:
            return v
        v = self._table.value(self._buf, tag, self._little, _UNSET, _value_from, self)
        if v is _UNSET:
            return default
        values[tag] = v
        return v

    def _value_from(self, tag: int, vr: str, hdr: int, off: int, length: int, undefined: bool) -> Any:
        """The value of a parsed element the table did not decode, from its record's fields (for ``get``)."""
        decoder = _DIRECT.get(vr)
        if decoder is None:  # implicit VR, UN, SQ, text in a character set: through an Element
            elem = self._elements[tag] = self._element(tag, vr, hdr, off, length, undefined)
            return elem.value
        if length == 0:
            return _values.empty_value(vr)
        try:
            return decoder(self._buf[off : off + length], self._little, _DEFAULT_CODECS)
        except InvalidDicomError as exc:
            raise InvalidDicomError(exc.message, tag, hdr) from None

    def __contains__(self, key: Any) -> bool:
        try:
            tag = key if key.__class__ is int and 0 <= key <= 0xFFFFFFFF else tag_from_key(key)
        except (KeyError, TypeError):
            return False
        if tag in self._elements:
            return True
        if self._modified or self._table is None:
            return False
        return self._table.find(tag) >= 0

    def _materialize(self) -> None:
        """Copy-on-write: turn the element table into our own element dict."""
        if self._modified:
            return
        table = self._table
        if table is not None:
            made = self._elements
            elements = {}
            c = table.columns()
            for tag, vr, hdr, off, n, undefined in zip(
                c.tags, c.vrs, c.header_offsets, c.value_offsets, c.value_lengths, c.undefined_lengths
            ):
                elem = made.get(tag)
                elements[tag] = elem if elem is not None else self._element(tag, vr, hdr, off, n, undefined)
            self._elements = elements
        self._modified = True

    def _touch(self) -> None:
        self._codecs_cache = None
        ds: Dataset | None = self
        while ds is not None:
            ds._materialize()
            ds = ds._parent

    def _tags(self) -> list[int]:
        if self._modified:
            return sorted(self._elements)
        table = self._table
        if table is None:
            return []
        return table.tags() if table.sorted else sorted(table.tags())

    def __iter__(self) -> Iterator[Element]:
        table = self._table
        if not self._modified and table is not None and table.sorted:
            elements = self._elements
            c = table.columns()
            for tag, vr, hdr, off, n, undefined in zip(
                c.tags, c.vrs, c.header_offsets, c.value_offsets, c.value_lengths, c.undefined_lengths
            ):
                elem = elements.get(tag)
                if elem is None:
                    elem = elements[tag] = self._element(tag, vr, hdr, off, n, undefined)
                yield elem
            return
        for tag in self._tags():
            yield self[tag]

    def keys(self) -> list[int]:
        return self._tags()

    def values(self) -> list[Element]:
        return list(self)

    def items(self) -> list[tuple[int, Element]]:
        return [(e.tag, e) for e in self]

    def __len__(self) -> int:
        if self._modified:
            return len(self._elements)
        return len(self._table) if self._table is not None else 0

    def __bool__(self) -> bool:
        return True

    def __setitem__(self, key: Any, value: Any) -> None:
        tag = tag_from_key(key)
        self._touch()
        if isinstance(value, Element):
            if value.tag != tag:
                raise ValueError("element tag does not match the key")
            elem = value
            if elem._ds is None or elem._raw is None:
                elem._ds = self
        else:
            elem = Element(tag, self._vr_for_new(tag), value)
            elem._ds = self
        self._elements[tag] = elem

    def __delitem__(self, key: Any) -> None:
        tag = tag_from_key(key)
        if tag not in self:
            raise KeyError(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) not in data set")
        self._touch()
        del self._elements[tag]

    def pop(self, key: Any, default: Any = _UNSET) -> Any:
        tag = tag_from_key(key)
        if tag not in self:
            if default is _UNSET:
                raise KeyError(key)
            return default
        elem = self[tag]
        del self[tag]
        return elem

    def add_new(self, key: Any, vr: str, value: Any) -> Element:
        """Add (or replace) an element with an explicit VR."""
        tag = tag_from_key(key)
        elem = Element(tag, vr, value)
        self[tag] = elem
        return elem

    def _vr_for_new(self, tag: int) -> str:
        e = dict_entry(tag)
        if e is None:
            raise KeyError(f"no dictionary VR for ({tag >> 16:04X},{tag & 0xFFFF:04X}); use add_new(tag, vr, value)")
        vr = e[0]
        if " or " in vr:
            vr = self._correct_ambiguous(tag, vr, Element(tag, vr))
        return vr

    # -- attribute access by keyword -------------------------------------
    def __getattr__(self, name: str) -> Any:
        if name[:1].isupper():
            tag = tag_of(name)
            if tag is not None:
                elem = self._lookup(tag)
                if elem is not None:
                    return elem.value
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name[0] != "_" and name[:1].isupper() and tag_of(name) is not None:
            self[name] = value
        else:
            object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        if name[:1].isupper() and tag_of(name) is not None:
            del self[name]
        else:
            object.__delattr__(self, name)

    def __dir__(self) -> list[str]:
        kws = [e.keyword for e in self if e.keyword]
        return sorted(set(object.__dir__(self)) | set(kws))

    # -- encoding ----------------------------------------------------------
    def _codecs(self) -> tuple[str, ...]:
        c = self._codecs_cache
        if c is None:
            elem = self._lookup(0x00080005)
            if elem is not None:
                c = python_codecs(elem.value)
            elif self._parent is not None:
                c = self._parent._codecs()
            else:
                c = _DEFAULT_CODECS
            self._codecs_cache = c
        return c

    @property
    def transfer_syntax(self) -> str | None:
        """The transfer syntax UID of the data set as read (or as set).

        File Meta's Transfer Syntax UID (0002,0010) when there is one, else
        the syntax the data set was read in (or given). Setting it sets both
        (File Meta's element when there is File Meta): it names the syntax
        :meth:`save` writes in by default, which re-encodes byte order and VR
        encoding as needed. It changes no values: to compress or decompress
        Pixel Data, use :func:`fastdicom.transcode`.
        """
        meta = self.__dict__["_file_meta"]  # not built just for this: the table read gave the syntax
        if meta is not None:
            ts = meta.get(0x00020010)
            if ts:
                return ts
        return self._transfer_syntax

    @transfer_syntax.setter
    def transfer_syntax(self, uid: str) -> None:
        meta = self.file_meta
        if meta is not None:
            elem = meta._lookup(0x00020010)
            if elem is not None:
                elem.value = uid
            else:
                meta.add_new(0x00020010, "UI", uid)
        self.__dict__["_transfer_syntax"] = uid

    @property
    def is_little_endian(self) -> bool:
        return self._little

    @property
    def is_implicit_vr(self) -> bool:
        return not self._explicit

    def _pristine(self) -> bool:
        if self._modified:
            return False
        return all(e._pristine() for e in self._elements.values())

    def _adopt(self, item: Dataset) -> None:
        """Make ``item``, a sequence item built on its own, one of ours: it inherits our character set and
        Pixel Representation, and a change to it marks us changed."""
        item.__dict__["_parent"] = self

    # -- File Meta (built on first use: a header scan never needs it) -------------
    @property
    def file_meta(self) -> Dataset | None:
        """The File Meta Information (group 0002) as a Dataset, or None."""
        d = self.__dict__
        meta = d["_file_meta"]
        if meta is None and d["_meta_args"] is not None:
            buf, table, start, end, mod = d["_meta_args"]
            meta = d["_file_meta"] = Dataset._from_table(buf, table, start, end, True, mod)
            d["_meta_args"] = None
        return meta

    @file_meta.setter
    def file_meta(self, value: Dataset | None) -> None:
        self.__dict__["_file_meta"] = value
        self.__dict__["_meta_args"] = None

    # -- pixels ----------------------------------------------------------------
    @property
    def pixels(self):
        """The frames of Pixel Data (:class:`fastdicom.pixels.Frames`), or None without pixel data."""
        cached = self.__dict__.get("_pixels_cache")
        if cached is not None and not self._modified:
            return cached
        for tag in (0x7FE00010, 0x7FE00008, 0x7FE00009):
            elem = self._lookup(tag)
            if elem is not None:
                break
        else:
            return None
        from ..pixels.frames import Frames

        frames = Frames(self, (tag, elem))
        if not self._modified:
            self.__dict__["_pixels_cache"] = frames
        return frames

    @property
    def pixel_array(self):
        """What pydicom 3's ``pixel_array`` returns for the same file (shape, dtype, values)."""
        from ..pixels import pixel_array

        frames = self.pixels
        if frames is None:
            raise AttributeError("the data set has no Pixel Data")
        return pixel_array(frames, **self.__dict__.get("_pixel_options", {}))

    def pixel_array_options(self, *, as_rgb: bool = True) -> None:
        """Set how :attr:`pixel_array` converts (as pydicom 3's method of that name).

        ``as_rgb=False`` keeps YBR_FULL and YBR_FULL_422 pixels in their
        stored colour space instead of converting them to RGB.
        """
        self.__dict__["_pixel_options"] = {"as_rgb": bool(as_rgb)}

    # -- conversions -------------------------------------------------------
    def to_pydicom(self):
        """Build a ``pydicom.Dataset`` from this data set's elements."""
        from ..interop import to_pydicom

        return to_pydicom(self)

    def save(self, path, transfer_syntax: str | None = None) -> None:
        """Write the data set to ``path`` (see :func:`fastdicom.write`)."""
        from .write import write

        write(path, self, transfer_syntax=transfer_syntax)

    def to_json_dict(
        self,
        bulk_data_threshold: int = 1024,
        bulk_data_element_handler=None,
        suppress_invalid_tags: bool = False,
    ) -> dict:
        """The DICOM JSON Model object of the data set (PS3.18 F.2; see :mod:`fastdicom.dataset.dicomjson`)."""
        from .dicomjson import to_json_dict

        return to_json_dict(self, bulk_data_threshold, bulk_data_element_handler, suppress_invalid_tags)

    def to_json(
        self,
        bulk_data_threshold: int = 1024,
        bulk_data_element_handler=None,
        dump_handler=None,
        suppress_invalid_tags: bool = False,
    ) -> str:
        """The data set as DICOM JSON text."""
        from .dicomjson import to_json

        return to_json(self, bulk_data_threshold, bulk_data_element_handler, dump_handler, suppress_invalid_tags)

    @staticmethod
    def from_json(json_dataset, bulk_data_uri_handler=None) -> Dataset:
        """A data set from DICOM JSON text or object (see :func:`fastdicom.dataset.dicomjson.from_json`)."""
        from .dicomjson import from_json

        return from_json(json_dataset, bulk_data_uri_handler)

    # -- pydicom's idioms, as thin aliases ---------------------------------------
    def data_element(self, name: str) -> Element | None:
        """The element of a keyword, or None (pydicom's ``Dataset.data_element``)."""
        tag = tag_of(name)
        if tag is None:
            return None
        return self._lookup(tag)

    def dir(self, *filters: str) -> list[str]:
        """Sorted keywords of the elements present, those containing any of ``filters`` (case-insensitive)."""
        kws = {e.keyword for e in self if e.keyword}
        if filters:
            wanted = [f.lower() for f in filters]
            kws = {k for k in kws if any(f in k.lower() for f in wanted)}
        return sorted(kws)

    def walk(self, callback, recursive: bool = True) -> None:
        """Call ``callback(dataset, element)`` for every element, into sequence items when ``recursive``."""
        for tag in list(self._tags()):
            elem = self._lookup(tag)
            if elem is None:  # removed by the callback
                continue
            callback(self, elem)
            if recursive and elem.vr == "SQ" and tag in self:
                for item in elem.value:
                    item.walk(callback, recursive)

    def save_as(
        self,
        filename,
        /,
        *,
        implicit_vr: bool | None = None,
        little_endian: bool | None = None,
        enforce_file_format: bool = False,
        overwrite: bool = True,
    ) -> None:
        """pydicom's ``save_as``: write a Part 10 file; ``implicit_vr``/``little_endian`` pick an uncompressed syntax.

        The file always gets File Meta (``enforce_file_format`` is accepted
        for compatibility). ``overwrite=False`` refuses an existing path.
        """
        from ..dictionary import uid as _uid

        ts = None
        if implicit_vr is not None or little_endian is not None:
            implicit = bool(implicit_vr) if implicit_vr is not None else self.is_implicit_vr
            little = bool(little_endian) if little_endian is not None else self.is_little_endian
            if implicit and not little:
                raise ValueError("Implicit VR Big Endian is not a DICOM transfer syntax")
            ts = (
                _uid.ImplicitVRLittleEndian
                if implicit
                else _uid.ExplicitVRLittleEndian
                if little
                else _uid.ExplicitVRBigEndian
            )
            current = self.transfer_syntax
            if current is not None and _uid.is_encapsulated(current) and ts != _uid.ExplicitVRLittleEndian:
                raise ValueError("an encapsulated data set can only be written as Explicit VR Little Endian")
            if current is not None and _uid.is_encapsulated(current):
                ts = None
        if not overwrite:
            import os

            if isinstance(filename, (str, bytes, os.PathLike)) and os.path.exists(filename):
                raise FileExistsError(f"{filename!s} exists and overwrite=False")
        self.save(filename, transfer_syntax=ts)

    def _become(self, other: Dataset) -> None:
        """Take over ``other``'s state (in-place transcoding)."""
        state = dict(other.__dict__)
        state["filename"] = self.__dict__.get("filename")
        self.__dict__.clear()
        self.__dict__.update(state)

    def decompress(self, handler_name: str = "", *, as_rgb: bool = True, generate_instance_uid: bool = True) -> None:
        """Decode compressed Pixel Data in place to Explicit VR Little Endian (pydicom 3's ``decompress``).

        As in pydicom 3, a new SOP Instance UID is generated unless
        ``generate_instance_uid=False``. ``as_rgb=False`` is refused for
        YBR data, which our transcoder always stores as decoded (RGB).
        """
        from ..dictionary import uid as _uid

        ts = self.transfer_syntax
        if ts is None or not _uid.is_encapsulated(ts):
            return
        if not as_rgb and self.get(0x00280004) in ("YBR_FULL", "YBR_FULL_422"):
            raise NotImplementedError("decompress(as_rgb=False) is not supported: frames are stored as decoded")
        self._transcode_in_place(_uid.ExplicitVRLittleEndian, generate_instance_uid)

    def compress(
        self,
        transfer_syntax_uid: str,
        arr=None,
        encoding_plugin: str = "",
        encapsulate_ext: bool = False,
        *,
        generate_instance_uid: bool = True,
        jls_error: int | None = None,
        j2k_cr: list[float] | None = None,
        j2k_psnr: list[float] | None = None,
    ) -> None:
        """Compress Pixel Data in place (pydicom 3's ``compress``) through :func:`fastdicom.transcode`.

        ``jls_error`` is near-lossless JPEG-LS's NEAR; ``j2k_cr`` the target
        ratio of lossy JPEG 2000 (its first layer). ``arr``, ``j2k_psnr``
        and ``encapsulate_ext`` are not supported and raise.
        """
        if arr is not None or j2k_psnr is not None or encapsulate_ext:
            raise NotImplementedError("compress() supports neither arr=, j2k_psnr= nor encapsulate_ext=")
        kwargs: dict[str, Any] = {}
        if jls_error is not None:
            kwargs["near"] = int(jls_error)
        if j2k_cr:
            kwargs["ratio"] = float(j2k_cr[0])
        self._transcode_in_place(transfer_syntax_uid, generate_instance_uid, **kwargs)

    def _transcode_in_place(self, transfer_syntax: str, generate_instance_uid: bool, **kwargs: Any) -> None:
        from ..dictionary.uid import generate_uid
        from ..transcode import transcode

        new = transcode(self, transfer_syntax, **kwargs)
        if new is self:
            return
        if generate_instance_uid:
            uid = generate_uid()
            new.SOPInstanceUID = uid
            meta = new.file_meta
            if meta is not None and 0x00020003 in meta:
                meta[0x00020003] = Element(0x00020003, "UI", uid)
        self._become(new)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Dataset):
            return NotImplemented
        return list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "\n".join(self._lines(0))

    def __str__(self) -> str:
        lines = []
        meta = self.file_meta
        if meta is not None and len(meta):
            lines.append("Dataset.file_meta -------------------------------")
            lines += meta._lines(0)
            lines.append("-------------------------------------------------")
        lines += self._lines(0)
        return "\n".join(lines)

    def _lines(self, indent: int) -> list[str]:
        pad = "   " * indent
        out = []
        for e in self:
            if e.vr == "SQ":
                items = e.value
                out.append(f"{pad}({e.tag >> 16:04X},{e.tag & 0xFFFF:04X})  {e.name}  {len(items)} item(s) ---- ")
                for item in items:
                    out += item._lines(indent + 1)
                    out.append(f"{pad}   ---------")
            else:
                out.append(pad + repr(e))
        return out


# The factories the element tables call with a data set and a record's fields (``build``, ``value``).
_element = Dataset._element
_value_from = Dataset._value_from
