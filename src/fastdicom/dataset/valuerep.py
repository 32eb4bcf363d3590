"""Value types with pydicom 3's names and meanings: ``PersonName``, ``DSfloat``, ``IS``, ``UID``, ``MultiValue``.

Each is a subclass of the plain Python type it stands for, so that values
compare, hash, print and compute as that type does, and code ported from
pydicom finds the attributes it reaches for:

- :class:`PersonName` (``str``): the value as stored (component groups
  joined by ``=``, trailing empty groups dropped), plus ``family_name``,
  ``given_name``, ``middle_name``, ``name_prefix``, ``name_suffix`` (of the
  alphabetic group), ``alphabetic``, ``ideographic``, ``phonetic``,
  ``components``, ``formatted()``, ``family_comma_given()`` and
  :meth:`PersonName.from_named_components` (PS3.5 6.2.1.1).
- :class:`DSfloat` (``float``) and :class:`IS` (``int``): numbers that give
  back the string they were read from (``str(ds.RescaleIntercept)`` is
  ``'-1024'``, not ``'-1024.0'``), in ``original_string``; writing keeps it.
- :class:`UID` (``str``): ``name``, ``keyword``, ``type``, ``info``,
  ``is_retired``, ``is_transfer_syntax``, ``is_little_endian``,
  ``is_implicit_VR``, ``is_deflated``, ``is_encapsulated``,
  ``is_compressed``, ``is_private``, ``is_valid`` (PS3.5 9, PS3.6 Table A-1).
- :class:`MultiValue` (``list``): the values of an element with VM > 1,
  printed as pydicom prints them.

The Rust fast path builds the same types (``fastdicom._rust.set_value_types``).
"""

from __future__ import annotations

import re
from typing import Any

from ..dictionary.uid import UID

__all__ = ["DSfloat", "IS", "MultiValue", "PersonName", "UID"]

_float_new = float.__new__
_int_new = int.__new__
_str_new = str.__new__


_PLAIN_DS = re.compile(r"-?(0|[1-9][0-9]*)\.([0-9]*[1-9]|0)\Z")
_PLAIN_IS = re.compile(r"(-?[1-9][0-9]*|0)\Z")


def _plain_ds(number: float, text: str) -> bool:
    """Whether ``str(number)`` gives ``text`` back, decided from the text (the Rust fast path's rule).

    Fixed notation with a point and a digit after it, no sign but ``-``, no
    leading zeros, no trailing zeros after the point (but ``N.0``), at most
    15 significant digits (each such decimal is the shortest one that rounds
    to its double, which is what Python prints) and 1e-4 <= |x| < 1e16
    (where Python prints fixed notation).
    """
    if not 1e-4 <= abs(number) < 1e16 or _PLAIN_DS.match(text) is None:
        return False
    digits = text.lstrip("-").replace(".", "").lstrip("0")
    return len(digits) <= 15


class DSfloat(float):
    """A Decimal String value: a ``float`` that gives back the text it was read from.

    ``str()`` and ``original_string`` give that text (spaces stripped), as
    pydicom does; numbers made from a float print as Python prints the
    float. Arithmetic gives plain floats. A value whose text Python's float
    printing would not reproduce (``'-1024'``, ``'5.000000'``) is of a
    private subclass that holds the text; ``isinstance(x, DSfloat)`` holds
    for both.

    Examples
    --------
    >>> x = DSfloat("-1024")
    >>> x == -1024.0, str(x), x + 1
    (True, '-1024', -1023.0)
    """

    __slots__ = ()

    def __new__(cls, val: Any = 0.0) -> DSfloat:
        if isinstance(val, str):
            text = val.strip(" \0")
            return DSfloat._from(float(text), text)
        orig = getattr(val, "original_string", None)
        if isinstance(orig, str):
            return DSfloat._from(float(val), orig)
        return _float_new(DSfloat, val)

    @staticmethod
    def _from(number: float, text: str) -> DSfloat:
        """A value already parsed (the decoders' fast path; the Rust twin builds the same objects)."""
        if _plain_ds(number, text):
            return _float_new(DSfloat, number)
        self = _float_new(_DSText, number)
        self._text = text
        return self

    @property
    def original_string(self) -> str:
        """The text of the value."""
        return str(self)

    def __str__(self) -> str:
        return float.__repr__(self)

    def __repr__(self) -> str:
        return f"'{self}'"

    def __reduce__(self) -> tuple:
        return (DSfloat, (str(self),))


class _DSText(DSfloat):
    """A DSfloat whose text is not what Python prints for the number."""

    __slots__ = ("_text",)
    _text: str

    def __str__(self) -> str:
        return self._text


class IS(int):
    """An Integer String value: an ``int`` that gives back its text (``str(IS("+07"))`` is ``'+07'``).

    Values whose text is not ``str(int)`` are of a private subclass that
    holds it; ``isinstance(x, IS)`` holds for both.

    Examples
    --------
    >>> IS("+07"), str(IS("+07")), IS("12") + 1
    ('+07', '+07', 13)
    """

    __slots__ = ()

    def __new__(cls, val: Any = 0) -> IS:
        if isinstance(val, str):
            text = val.strip(" \0")
            try:
                number = int(text)
            except ValueError:
                f = float(text)
                if not f.is_integer():
                    raise ValueError(f"{val!r} is not an integer string") from None
                number = int(f)
            return IS._from(number, text)
        if isinstance(val, float) and not val.is_integer():
            raise ValueError(f"{val!r} is not an integer")
        orig = getattr(val, "original_string", None)
        if isinstance(orig, str):
            return IS._from(int(val), orig)
        return _int_new(IS, val)

    @staticmethod
    def _from(number: int, text: str) -> IS:
        """A value already parsed (the decoders' fast path; the Rust twin builds the same objects)."""
        if _PLAIN_IS.match(text) is not None:
            return _int_new(IS, number)
        self = _int_new(_ISText, number)
        self._text = text
        return self

    @property
    def original_string(self) -> str:
        """The text of the value."""
        return str(self)

    def __str__(self) -> str:
        return int.__repr__(self)

    def __repr__(self) -> str:
        return f"'{self}'"

    def __reduce__(self) -> tuple:
        return (IS, (str(self),))


class _ISText(IS):
    """An IS whose text is not ``str(int)`` (int subclasses cannot have slots: the text lives in ``__dict__``)."""

    _text: str

    def __str__(self) -> str:
        return self._text


class MultiValue(list):
    """The values of a multi-valued element (VM > 1): a ``list`` printed as pydicom prints it."""

    __slots__ = ()

    def __str__(self) -> str:
        if not self:
            return ""
        return "[" + ", ".join(repr(v) if isinstance(v, (str, bytes)) else str(v) for v in self) + "]"

    __repr__ = __str__


_PN_KEYS = ("family_name", "given_name", "middle_name", "name_prefix", "name_suffix")


class PersonName(str):
    """A Person Name value (PS3.5 6.2.1.1): a ``str`` with pydicom's component attributes.

    The string is the value as stored: up to three component groups
    (alphabetic, ideographic, phonetic) separated by ``=``, each of up to five
    components separated by ``^``. The name attributes read the alphabetic
    group; a missing component is ``''``.

    Examples
    --------
    >>> pn = PersonName("Doe^John^^Dr.")
    >>> pn.family_name, pn.given_name, pn.name_prefix, pn == "Doe^John^^Dr."
    ('Doe', 'John', 'Dr.', True)
    """

    __slots__ = ()

    @property
    def components(self) -> tuple[str, ...]:
        """The component groups present: ``(alphabetic[, ideographic[, phonetic]])``, trailing empty ones dropped."""
        groups = str.split(self, "=")
        while groups and not groups[-1]:
            groups.pop()
        return tuple(groups)

    def _group(self, i: int) -> str:
        groups = str.split(self, "=")
        return groups[i] if i < len(groups) else ""

    def _part(self, i: int) -> str:
        parts = str.split(self._group(0), "^")
        return parts[i] if i < len(parts) else ""

    @property
    def alphabetic(self) -> str:
        return self._group(0)

    @property
    def ideographic(self) -> str:
        return self._group(1)

    @property
    def phonetic(self) -> str:
        return self._group(2)

    @property
    def family_name(self) -> str:
        return self._part(0)

    @property
    def given_name(self) -> str:
        return self._part(1)

    @property
    def middle_name(self) -> str:
        return self._part(2)

    @property
    def name_prefix(self) -> str:
        return self._part(3)

    @property
    def name_suffix(self) -> str:
        return self._part(4)

    def formatted(self, format_str: str) -> str:
        """``format_str % {family_name, given_name, middle_name, name_prefix, name_suffix}``."""
        return format_str % {k: self._part(i) for i, k in enumerate(_PN_KEYS)}

    def family_comma_given(self) -> str:
        """``'Family, Given'``."""
        return self.formatted("%(family_name)s, %(given_name)s")

    @classmethod
    def from_named_components(
        cls,
        family_name: str = "",
        given_name: str = "",
        middle_name: str = "",
        name_prefix: str = "",
        name_suffix: str = "",
        family_name_ideographic: str = "",
        given_name_ideographic: str = "",
        middle_name_ideographic: str = "",
        name_prefix_ideographic: str = "",
        name_suffix_ideographic: str = "",
        family_name_phonetic: str = "",
        given_name_phonetic: str = "",
        middle_name_phonetic: str = "",
        name_prefix_phonetic: str = "",
        name_suffix_phonetic: str = "",
    ) -> PersonName:
        """Build a name from its components (trailing empty components and groups left out)."""
        groups = [
            (family_name, given_name, middle_name, name_prefix, name_suffix),
            (family_name_ideographic, given_name_ideographic, middle_name_ideographic,
             name_prefix_ideographic, name_suffix_ideographic),
            (family_name_phonetic, given_name_phonetic, middle_name_phonetic,
             name_prefix_phonetic, name_suffix_phonetic),
        ]  # fmt: skip
        text = "=".join("^".join(g).rstrip("^") for g in groups).rstrip("=")
        if "\\" in text:
            raise ValueError("a person name component cannot hold a backslash")
        return cls(text)
