"""C-FIND Attribute Matching (PS3.4 C.2.2.2), compiled once per identifier, used by every query service.

:func:`compile_query` turns an identifier (a :class:`~fastdicom.Dataset` whose
values are decoded, so matching works on text whatever character set the
query came in) into a :class:`Query`: one :class:`Key` per attribute, of the
kind the standard names for its value:

======================  ========================================================
Kind                    the key's value, and what matches it (PS3.4 clause)
======================  ========================================================
``UNIVERSAL``           zero length (or ``*``, or an SQ with an empty item): all
                        entities; the attribute is returned (C.2.2.2.3)
``SINGLE``              one value: the stored value equals it (C.2.2.2.1); text
                        compared without its insignificant spaces, numbers as
                        numbers, dates and times as points in time
``UID_LIST``            UIDs separated by backslashes: any of them (C.2.2.2.2)
``WILDCARD``            ``*`` (any run of characters) and ``?`` (one) in AE, CS,
                        LO, LT, PN, SH, ST, UC, UR, UT (C.2.2.2.4)
``RANGE``               DA, TM, DT ``a-b``, ``-b``, ``a-``, inclusive; a bound
                        stands for its whole precision, so ``-17`` includes
                        17:59 (C.2.2.2.5)
``SEQUENCE``            an SQ with one item of keys: some stored item matches
                        them all (C.2.2.2.6)
``MULTIPLE``            several values (not UI): any of them, each matched as a
                        single, wild card or range value (C.2.2.2.7)
``EMPTY``               ``""``: the attribute is absent or has no value
                        (C.2.2.2.9? Empty Value Matching)
======================  ========================================================

A stored attribute with several values matches when one of them does (Modalities
in Study ``CT\\MR`` matches ``MR``). Person names: case-insensitive by default (the
standard lets PN matching ignore case; Orthanc does the same), literal with
``MatchOptions(pn_case_insensitive=False)``; trailing empty components are not
significant (``Doe^John^^`` is ``Doe^John``). Fuzzy semantic PN matching
(accents and case ignored, each component group matched on its own) and combined
date-time range matching apply only when their extended negotiation was agreed
(``MatchOptions(fuzzy_pn=True, combined_datetime=True)``).

Specific Character Set (0008,0005) and Query/Retrieve Level (0008,0052) are never
matched. Binary VRs (OB, OW, ...) cannot be matched: a non-empty key of one raises
:class:`QueryError`, which a service answers with a failure status.

:meth:`Query.answer` builds a response identifier from a matching data set. The archive index narrows
its candidates in SQL (:func:`fastdicom.archive.index.prefilter`, from each compiled :class:`Key`) and
leaves the decision to :meth:`Query.matches`.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import FastDicomError

#: Never matched: they say how to read the identifier, or what to search.
NOT_MATCHED = frozenset((0x00080005, 0x00080052))
#: VRs whose values may hold wild cards (C.2.2.2.4).
WILDCARD_VRS = frozenset(("AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"))
#: VRs that cannot be matched, only returned.
BINARY_VRS = frozenset(("OB", "OD", "OF", "OL", "OV", "OW", "UN"))
#: Text VRs whose leading and trailing spaces are not significant (PS3.5 Table 6.2-1); the rest keep leading ones.
_STRIP_BOTH = frozenset(("AE", "CS", "DS", "IS", "LO", "SH", "UC", "PN", "DA", "TM", "DT", "UI", "AS"))
_NUMBER_VRS = frozenset(("DS", "IS", "FL", "FD", "SL", "SS", "UL", "US", "SV", "UV"))
#: Date and time attributes matched together under combined date-time matching (PS3.4 C.2.2.2.5.3): (DA, TM).
COMBINED_PAIRS = (
    (0x00080020, 0x00080030),  # Study Date, Study Time
    (0x00080021, 0x00080031),  # Series Date, Series Time
    (0x00080022, 0x00080032),  # Acquisition Date, Acquisition Time
    (0x00080023, 0x00080033),  # Content Date, Content Time
    (0x00100030, 0x00100032),  # Patient's Birth Date, Time
    (0x00400002, 0x00400003),  # Scheduled Procedure Step Start Date, Time
    (0x00400004, 0x00400005),  # Scheduled Procedure Step End Date, Time
    (0x00400244, 0x00400245),  # Performed Procedure Step Start Date, Time
    (0x00400250, 0x00400251),  # Performed Procedure Step End Date, Time
)
#: Most key values a query may hold (a list of UIDs included), and the deepest sequence nesting.
MAX_VALUES = 1_000_000
MAX_DEPTH = 16


class QueryError(FastDicomError):
    """An identifier that cannot be matched: a binary key, a malformed range, too many values."""

    def __init__(self, message: str, tag: int | None = None) -> None:
        self.tag = tag
        where = f" (tag ({tag >> 16:04X},{tag & 0xFFFF:04X}))" if tag is not None else ""
        super().__init__(message + where)


class Kind(enum.Enum):
    UNIVERSAL = "universal"
    SINGLE = "single"
    UID_LIST = "uid-list"
    WILDCARD = "wildcard"
    RANGE = "range"
    SEQUENCE = "sequence"
    MULTIPLE = "multiple"
    EMPTY = "empty"


@dataclass(frozen=True)
class MatchOptions:
    """How text is compared: what the SCP's configuration and the extended negotiation decide."""

    #: PN compared without regard to case (the default, as Orthanc); False: literally.
    pn_case_insensitive: bool = True
    #: Fuzzy semantic matching of person names (negotiated): accents and case ignored, groups matched alone.
    fuzzy_pn: bool = False
    #: Combined date-time range matching (negotiated): a DA and its TM key as one range.
    combined_datetime: bool = False
    #: Relational queries (negotiated): keys of levels below the query level match through the entities below.
    relational: bool = False


# -- normalising values -------------------------------------------------------------------------


def _text(vr: str, v: Any) -> str:
    s = str(v)
    return s.strip(" ") if vr in _STRIP_BOTH else s.rstrip(" ")


def _pn_groups(s: str) -> list[str]:
    """Component groups without their trailing empty components, trailing empty groups dropped."""
    groups = [g.rstrip("^").strip(" ") for g in s.split("=")]
    while groups and not groups[-1]:
        groups.pop()
    return groups


def _fold(s: str, fuzzy: bool) -> str:
    s = s.casefold()
    if fuzzy:
        s = "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))
        s = " ".join(s.replace("^", " ").split())
    return s


def _time_point(s: str, high: bool) -> str:
    """A TM value as HHMMSS.FFFFFF, its missing places the lowest (or, with ``high``, the highest) they can be."""
    m = _TM.fullmatch(s.strip().replace(":", ""))
    if m is None:
        raise ValueError(f"not a time: {s!r}")
    whole, frac = m.group(1), m.group(2) or ""
    if int(whole[:2]) > 23 or int(whole[2:4] or 0) > 59 or int(whole[4:6] or 0) > 60:  # 60: a leap second
        raise ValueError(f"not a time: {s!r}")
    if high:
        return whole + "235959"[len(whole) :] + "." + (frac + "999999")[:6]
    return whole + "000000"[len(whole) :] + "." + (frac + "000000")[:6]


def _date_point(s: str) -> str:
    s = s.strip().replace(".", "")
    if len(s) != 8 or not s.isdigit() or not (1 <= int(s[4:6]) <= 12 and 1 <= int(s[6:8]) <= 31):
        raise ValueError(f"not a date: {s!r}")
    return s


_TM = re.compile(r"(\d{2}|\d{4}|\d{6})(?:\.(\d{1,6}))?")
_DT = re.compile(r"(\d{4}(?:\d{2}){0,5})(?:\.(\d{1,6}))?(?:[+-]\d{4})?")


def _dt_point(s: str, high: bool) -> str:
    """A DT value (its offset from UTC ignored) as YYYYMMDDHHMMSS.FFFFFF, filled like a time."""
    m = _DT.fullmatch(s.strip())
    if m is None:
        raise ValueError(f"not a date-time: {s!r}")
    whole, frac = m.group(1), m.group(2) or ""
    if high:
        return whole + "99991231235959"[len(whole) :] + "." + (frac + "999999")[:6]
    return whole + "00000101000000"[len(whole) :] + "." + (frac + "000000")[:6]


def _point(vr: str, s: str, high: bool = False) -> str:
    if vr == "DA":
        return _date_point(s)
    if vr == "TM":
        return _time_point(s, high)
    return _dt_point(s, high)


def _split_range(vr: str, s: str) -> tuple[str, str] | None:
    """``(low, high)`` of a range value (either may be ''), or None when the value is not a range."""
    if "-" not in s:
        return None
    if vr != "DT":
        low, _, high = s.partition("-")
        return low, high
    for i, c in enumerate(s):  # a DT may hold a negative UTC offset: the separator leaves valid DTs on both sides
        if c != "-":
            continue
        low, high = s[:i], s[i + 1 :]
        try:
            if low:
                _dt_point(low, False)
            if high:
                _dt_point(high, True)
        except ValueError:
            continue
        return low, high
    return None


# -- keys ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """One compiled key attribute: its tag, VR, kind, and what it matches against."""

    tag: int
    vr: str
    kind: Kind
    #: SINGLE: the normalised value; UID_LIST: a frozenset; WILDCARD: the compiled pattern;
    #: RANGE: (low, high) points; MULTIPLE: the sub-keys; SEQUENCE: the item's Query.
    operand: Any = None
    #: The key's values as given (for answers and for SQL).
    given: tuple = ()

    def matches_value(self, value: Any, options: MatchOptions) -> bool:
        """Whether a stored value (as ``Dataset.get`` decodes it) matches this key."""
        kind = self.kind
        if kind is Kind.UNIVERSAL:
            return True
        empty = value is None or value == "" or (isinstance(value, list) and not value)
        if kind is Kind.EMPTY:
            return empty
        if empty:
            return False
        if kind is Kind.SEQUENCE:
            return any(self.operand.matches(item) for item in value)
        values = value if isinstance(value, list) else (value,)
        return any(self._one(v, options) for v in values if v is not None and v != "")

    def _one(self, v: Any, options: MatchOptions) -> bool:
        kind, vr = self.kind, self.vr
        if kind is Kind.MULTIPLE:
            return any(k._one(v, options) for k in self.operand)
        if kind is Kind.UID_LIST:
            return str(v).strip("\0 ") in self.operand
        if kind is Kind.RANGE:
            low, high = self.operand
            try:
                p = _point(vr, _text(vr, v))
            except ValueError:
                return False
            return (low is None or low <= p) and (high is None or p <= high)
        if kind is Kind.WILDCARD:
            return self.operand.fullmatch(_normal(vr, v, options)) is not None
        # SINGLE
        if vr == "PN" and options.fuzzy_pn:
            return (
                any(g == self.operand for g in _pn_fuzzy_groups(_text(vr, v)))
                or _normal(vr, v, options) == self.operand
            )
        return _normal(vr, v, options) == self.operand


def _pn_fuzzy_groups(s: str) -> list[str]:
    return [_fold(g, True) for g in _pn_groups(s)]


def _normal(vr: str, v: Any, options: MatchOptions) -> Any:
    """A value (stored or given) in the form two equal values share."""
    if vr in ("FL", "FD", "SL", "SS", "UL", "US", "SV", "UV", "AT"):
        return v if not isinstance(v, str) else float(v)
    if vr in ("DS", "IS"):
        try:
            return float(v)
        except (TypeError, ValueError):
            return _text(vr, v)
    if vr == "PN":
        s = "=".join(_pn_groups(_text(vr, v)))
        return _fold(s, options.fuzzy_pn) if options.pn_case_insensitive or options.fuzzy_pn else s
    if vr in ("DA", "TM", "DT"):
        try:
            return _point(vr, _text(vr, v))
        except ValueError:
            return _text(vr, v)
    if vr == "UI":
        return str(v).strip("\0 ")
    return _text(vr, v)


def _wildcard(vr: str, s: str, options: MatchOptions) -> re.Pattern:
    if vr == "PN":
        s = "=".join(_pn_groups(s)) if "=" in s else s.rstrip("^")
        if options.pn_case_insensitive or options.fuzzy_pn:
            s = _fold(s, options.fuzzy_pn)
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in s)
    return re.compile(body, re.DOTALL)


def _single_key(tag: int, vr: str, s: str, options: MatchOptions) -> Key:
    """A key for one value: wild card, range or single value."""
    if vr in WILDCARD_VRS and ("*" in s or "?" in s):
        if set(s) <= {"*"}:
            return Key(tag, vr, Kind.UNIVERSAL, given=(s,))
        return Key(tag, vr, Kind.WILDCARD, _wildcard(vr, _text(vr, s), options), (s,))
    if vr in ("DA", "TM", "DT"):
        parts = _split_range(vr, _text(vr, s))
        if parts is not None:
            low, high = parts
            if not low and not high:
                raise QueryError(f"range {s!r} has neither end", tag)
            try:
                lo = _point(vr, low, False) if low else None
                hi = _point(vr, high, True) if high else None
            except ValueError as exc:
                raise QueryError(f"malformed {vr} range {s!r}: {exc}", tag) from None
            return Key(tag, vr, Kind.RANGE, (lo, hi), (s,))
        try:
            _point(vr, _text(vr, s))
        except ValueError as exc:
            raise QueryError(f"malformed {vr} value {s!r}: {exc}", tag) from None
    if vr == "PN" and options.fuzzy_pn:
        return Key(tag, vr, Kind.SINGLE, _fold("=".join(_pn_groups(s)), True), (s,))
    if vr in _NUMBER_VRS:
        try:
            return Key(tag, vr, Kind.SINGLE, float(s), (s,))
        except ValueError:
            raise QueryError(f"{vr} key value {s!r} is not a number", tag) from None
    return Key(tag, vr, Kind.SINGLE, _normal(vr, s, options), (s,))


def _given(value: Any) -> list:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return list(value)
    return [value]


def _compile_key(elem, options: MatchOptions, depth: int) -> Key:
    tag, vr = elem.tag, elem.vr
    if vr == "SQ":
        items = elem.value or []
        if not items or len(items[0]) == 0:
            return Key(tag, vr, Kind.UNIVERSAL)
        if len(items) > 1:
            raise QueryError("a sequence key holds one item (PS3.4 C.2.2.2.6)", tag)
        return Key(tag, vr, Kind.SEQUENCE, compile_query(items[0], options, _depth=depth + 1))
    if vr in BINARY_VRS:
        if len(elem.raw):
            raise QueryError(f"an attribute of VR {vr} cannot be matched, only returned", tag)
        return Key(tag, vr, Kind.UNIVERSAL)
    values = _given(elem.value)
    if not values:
        return Key(tag, vr, Kind.UNIVERSAL)
    if len(values) > MAX_VALUES:
        raise QueryError(f"{len(values)} values: at most {MAX_VALUES} are matched", tag)
    texts = [v if not isinstance(v, str) else str(v) for v in values]
    if len(texts) == 1 and texts[0] == '""':
        return Key(tag, vr, Kind.EMPTY, given=('""',))
    if vr == "UI":
        uids = frozenset(str(u).strip("\0 ") for u in texts if str(u).strip("\0 "))
        if len(uids) == 1:
            (one,) = uids
            return Key(tag, vr, Kind.SINGLE, one, tuple(texts))
        return Key(tag, vr, Kind.UID_LIST, uids, tuple(texts))
    if len(texts) == 1:
        v = texts[0]
        if isinstance(v, str):
            return _single_key(tag, vr, v, options)
        return Key(tag, vr, Kind.SINGLE, v, (v,))
    subs = tuple(
        _single_key(tag, vr, v, options) if isinstance(v, str) else Key(tag, vr, Kind.SINGLE, v, (v,)) for v in texts
    )
    if any(k.kind is Kind.UNIVERSAL for k in subs):
        return Key(tag, vr, Kind.UNIVERSAL, given=tuple(texts))
    return Key(tag, vr, Kind.MULTIPLE, subs, tuple(texts))


@dataclass(frozen=True)
class _Combined:
    """A DA key and its TM key matched as one date-time range (combined date-time matching)."""

    date: Key
    time: Key
    low: str | None
    high: str | None

    def matches(self, ds) -> bool:
        d, t = ds.get(self.date.tag), ds.get(self.time.tag)
        if d in (None, "") or isinstance(d, list):
            return False
        try:
            day = _date_point(_text("DA", d))
            clock = (
                _time_point(_text("TM", t), False)
                if t not in (None, "") and not isinstance(t, list)
                else "000000.000000"
            )
        except ValueError:
            return False
        p = day + clock
        return (self.low is None or self.low <= p) and (self.high is None or p <= self.high)


def _combine(date: Key, time: Key) -> _Combined | None:
    if date.kind not in (Kind.RANGE, Kind.SINGLE) or time.kind not in (Kind.RANGE, Kind.SINGLE, Kind.UNIVERSAL):
        return None
    if date.kind is Kind.SINGLE:
        d_lo = d_hi = date.operand
    else:
        d_lo, d_hi = date.operand
    if time.kind is Kind.UNIVERSAL:
        t_lo, t_hi = "000000.000000", "235959.999999"
    elif time.kind is Kind.SINGLE:
        t_lo = t_hi = time.operand
    else:
        t_lo, t_hi = time.operand
        t_lo = t_lo or "000000.000000"
        t_hi = t_hi or "235959.999999"
    low = None if d_lo is None else d_lo + t_lo
    high = None if d_hi is None else d_hi + t_hi
    return _Combined(date, time, low, high)


@dataclass
class Query:
    """A compiled identifier: what to match, and which attributes to answer with."""

    keys: tuple[Key, ...]
    options: MatchOptions = field(default_factory=MatchOptions)
    combined: tuple[_Combined, ...] = ()
    #: Tags of every key (universal ones included), in the identifier's order: the answer's attributes.
    return_tags: tuple[int, ...] = ()

    @property
    def matching_keys(self) -> tuple[Key, ...]:
        """The keys that constrain (all but universal ones)."""
        return tuple(k for k in self.keys if k.kind is not Kind.UNIVERSAL)

    def key(self, tag: int) -> Key | None:
        for k in self.keys:
            if k.tag == tag:
                return k
        return None

    def matches(self, ds) -> bool:
        """Whether a data set (stored values, decoded) matches every key."""
        get = ds.get
        paired = {c.date.tag for c in self.combined} | {c.time.tag for c in self.combined}
        for k in self.keys:
            if k.kind is Kind.UNIVERSAL or k.tag in paired:
                continue
            if not k.matches_value(get(k.tag), self.options):
                return False
        return all(c.matches(ds) for c in self.combined)

    def filter(self, datasets: Iterable) -> Iterable:
        """The data sets that match, lazily."""
        return (ds for ds in datasets if self.matches(ds))

    def answer(self, ds, dataset_factory: Callable[[], Any] | None = None):
        """A response identifier: every key's attribute, with the stored value (empty when absent).

        A sequence key answers with the items that match its item keys (all items for a universal
        one), each holding only the requested attributes (PS3.4 C.2.2.2.6).
        """
        from ..dataset.dataset import Dataset, Element

        out = (dataset_factory or Dataset)()
        for k in self.keys:
            elem = ds._lookup(k.tag) if hasattr(ds, "_lookup") else None
            if k.vr == "SQ":
                items = ds.get(k.tag) or []
                if k.kind is Kind.SEQUENCE:
                    sub = k.operand
                    out[k.tag] = Element(k.tag, "SQ", [sub.answer(i, dataset_factory) for i in items if sub.matches(i)])
                else:
                    out[k.tag] = Element(k.tag, "SQ", list(items))
                continue
            vr = elem.vr if elem is not None else k.vr
            value = elem.value if elem is not None else None
            out[k.tag] = Element(k.tag, vr, value)
        return out


def compile_query(identifier, options: MatchOptions | None = None, *, _depth: int = 0) -> Query:
    """Compile a C-FIND identifier (a Dataset) into a :class:`Query`.

    Raises :class:`QueryError` for what cannot be matched (a binary key, a malformed range, a
    sequence key with more than one item, more than :data:`MAX_VALUES` values).

    Examples
    --------
    >>> from fastdicom import Dataset
    >>> ident = Dataset()
    >>> ident.PatientName = "DOE*"
    >>> ident.StudyDate = "20240101-"
    >>> q = compile_query(ident)
    >>> [k.kind.name for k in q.keys]
    ['WILDCARD', 'RANGE']
    """
    if _depth > MAX_DEPTH:
        raise QueryError(f"sequence keys nested deeper than {MAX_DEPTH}")
    options = options or MatchOptions()
    keys = []
    tags = []
    for elem in identifier:
        tag = elem.tag
        if tag in NOT_MATCHED or tag >> 16 in (0x0000, 0x0002) or tag & 0xFFFF == 0:
            continue
        keys.append(_compile_key(elem, options, _depth))
        tags.append(tag)
    combined: list[_Combined] = []
    if options.combined_datetime:
        by_tag = {k.tag: k for k in keys}
        for date_tag, time_tag in COMBINED_PAIRS:
            if date_tag in by_tag and time_tag in by_tag:
                c = _combine(by_tag[date_tag], by_tag[time_tag])
                if c is not None:
                    combined.append(c)
    return Query(tuple(keys), options, tuple(combined), tuple(tags))
