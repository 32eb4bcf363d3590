"""The records the tokenizer hands across the Rust/Python boundary, built by both twins.

``fastdicom._rust`` and its pure-Python twin ``fastdicom.dataset._parse_py``
return instances of these same classes, so a record from either backend has
the same type, the same field names and compares equal to the other's.
They are named tuples, read by name (``rec.value_offset``).

The element table itself holds no Python object per element, and ``Dataset``
asks for none: one element's fields go straight to a factory
(``build(i, factory)``, and ``value(..., factory)`` for a value the table does
not decode), whole tables cross as columns (:class:`Columns`, one list per
field). A :class:`Record` is made for whoever asks for one (``record(i)``,
``lookup``, ``records()``: tools and tests).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, TypeVar

_T = TypeVar("_T")


class Record(NamedTuple):
    """One element of a data set level, located in the buffer (``fastdicom_parse::Record``)."""

    #: The tag as an int, ``0xGGGGEEEE``.
    tag: int
    #: The VR as encoded, or ``""`` for an element encoded in implicit VR.
    vr: str
    #: Offset of the element's first byte (its tag).
    header_offset: int
    #: Offset of the value's first byte.
    value_offset: int
    #: Length of the value; for an undefined length, of the content up to its delimiter.
    value_length: int
    #: The value had undefined length (a Sequence Delimitation Item follows it).
    undefined_length: bool

    @property
    def end(self) -> int:
        """Offset just past the element (past its delimiter for an undefined length)."""
        return self.value_offset + self.value_length + (8 if self.undefined_length else 0)


class Item(NamedTuple):
    """An item of a sequence, or a fragment of encapsulated data (``fastdicom_parse::Item``)."""

    #: Offset of the item tag.
    header_offset: int
    #: Offset of the item's content.
    value_offset: int
    #: Length of the content (without an Item Delimitation Item).
    value_length: int
    #: The item had undefined length (always False for a fragment).
    undefined_length: bool


class Columns(NamedTuple):
    """A whole element table as one list per :class:`Record` field (``ElementTable.columns()``)."""

    tags: list[int]
    vrs: list[str]
    header_offsets: list[int]
    value_offsets: list[int]
    value_lengths: list[int]
    undefined_lengths: list[bool]


class ElementTable(Protocol):
    """What both twins' element tables answer (``fastdicom._rust.ElementTable``, ``_parse_py.ElementTable``)."""

    @property
    def end(self) -> int: ...
    @property
    def explicit_vr(self) -> bool: ...
    @property
    def sorted(self) -> bool: ...
    def __len__(self) -> int: ...
    def find(self, tag: int) -> int: ...
    def lookup(self, tag: int) -> Record | None: ...
    def record(self, i: int) -> Record: ...
    def records(self) -> list[Record]: ...
    def columns(self) -> Columns: ...
    def tags(self) -> list[int]: ...
    def build(self, i: int, factory: Callable[..., _T], context: object = None) -> _T: ...
    def value(
        self,
        buf: Any,
        tag: int,
        little_endian: bool,
        missing: object,
        factory: Callable[..., object] | None = None,
        context: object = None,
    ) -> object: ...


class Opened(NamedTuple):
    """A Part 10 file or raw data set as ``open_dataset`` located it (``fastdicom_parse::Opened``)."""

    #: A 128-byte preamble followed by ``DICM`` was found.
    preamble: bool
    #: The File Meta group's elements, or None without File Meta.
    meta_table: ElementTable | None
    #: Where the File Meta group starts (0 without File Meta).
    meta_start: int
    #: Where the File Meta group ends (0 without File Meta).
    meta_end: int
    #: Transfer Syntax UID from File Meta (first value, padding removed), or None.
    transfer_syntax: str | None
    #: The data set's byte order (from the transfer syntax, else detected).
    little_endian: bool
    #: The VR encoding the transfer syntax names (without one, what the first element shows).
    explicit_vr: bool
    #: The data set is deflated: ``body_table`` is None, the data set must be inflated first.
    deflated: bool
    #: Where the data set starts.
    body_start: int
    #: The top-level data set's elements (None when deflated).
    body_table: ElementTable | None
