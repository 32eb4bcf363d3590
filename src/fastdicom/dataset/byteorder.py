"""Byte order of element values: what swaps between little and big endian, and in what unit.

The rules, from the standard:

* PS3.5 7.3: a transfer syntax orders the bytes of each binary number it
  encodes, least significant first (little endian) or most significant first
  (big endian). The unit is the VR's own number: US, SS, OW and AT (two
  16-bit numbers) 2 bytes; UL, SL, FL, OL and OF 4 bytes; FD, SV, UV, OD and
  OV 8 bytes. OB is a string of bytes: byte ordering never touches it. UN and
  text are bytes too (fastdicom cannot swap a UN value whose VR it does not
  know, and keeps its bytes).
* PS3.5 8.2 (native Pixel Data): pixel cells of Bits Allocated bits are
  concatenated, least significant bit first, into OW words or OB bytes; a cell
  that crosses a word (byte) boundary goes on, least significant bit first, in
  the next word (byte). The byte order of the resulting 16-bit words is the
  transfer syntax's; OB is unaffected by it. OB is allowed only where Bits
  Allocated is at most 8, and only in explicit VR. Bits Allocated is 1 or a
  multiple of 8 (PS3.3 Table C.7-11c; PS3.5 8.1.1).

Hence the swap unit of Pixel Data (7FE0,0010) under Explicit VR Big Endian:

===========  ===================================================================
OW, BA 1     2 bytes: 16 pixels per word, pixel k of a word in bit k; the word's
             high byte (pixels 8-15) comes first.
OW, BA 8     2 bytes: two pixels per word, the second one first.
OW, BA 16    2 bytes: one pixel per word.
OW, BA 32    2 bytes, not 4: a 32-bit cell fills two words, the low word first,
             each word most significant byte first (0x11223344 is 33 44 11 22).
OW, BA 64    2 bytes: four words, the low word first. 24-, 40-, 48- and 56-bit
             cells likewise, straddling words where they fall.
OB, BA <= 8  none: bytes, whatever the transfer syntax.
OB, BA > 8   not conformant (PS3.5 8.2). Read as bytes, i.e. the cells least
             significant byte first in either byte order; written as OW.
===========  ===================================================================

Float Pixel Data (7FE0,0008) is OF: 4-byte floats. Double Float Pixel Data
(7FE0,0009) is OD: 8-byte floats.

DCMTK (``dcmconv +tb`` / ``+te``, 3.6.7) does the same, except that it keeps a
nonconformant OB as OB. pydicom 3.0 reads big-endian native pixels in units of
Bits Allocated whatever the VR (32-bit OW as ``>u4``, 16-bit OB as ``>u2``) and
1-bit OW without swapping, and converts nothing when it writes. Files written
to pydicom's reading hold other pixels when read by the standard: pydicom's
test file ``rtdose_expb.dcm`` has its 32-bit OW values swapped in 4-byte units.
fastdicom follows the standard.
"""

from __future__ import annotations

from typing import Any

from .. import _backends

PIXEL_DATA = 0x7FE00010
FLOAT_PIXEL_DATA = 0x7FE00008
DOUBLE_FLOAT_PIXEL_DATA = 0x7FE00009
PIXEL_TAGS = frozenset((PIXEL_DATA, FLOAT_PIXEL_DATA, DOUBLE_FLOAT_PIXEL_DATA))

#: Bytes per swapped unit, by VR (PS3.5 7.3); a VR not listed is never swapped.
SWAP_SIZE = {
    "US": 2, "SS": 2, "OW": 2, "AT": 2,
    "UL": 4, "SL": 4, "FL": 4, "OL": 4, "OF": 4,
    "FD": 8, "OD": 8, "UV": 8, "SV": 8, "OV": 8,
}  # fmt: skip

#: The VR that a native Pixel Data element would have, for a UN one.
_PIXEL_VR = {PIXEL_DATA: "OW", FLOAT_PIXEL_DATA: "OF", DOUBLE_FLOAT_PIXEL_DATA: "OD"}


def swap_size(vr: str, tag: int = 0) -> int:
    """Bytes per unit that big endian reverses in a value of ``vr`` (1: none).

    Pixel Data with VR UN counts as what it would be in implicit VR (OW, OF, OD);
    an unresolved dictionary VR ("OB or OW", "US or SS") as its last choice.
    """
    if vr == "UN" and tag in _PIXEL_VR:
        vr = _PIXEL_VR[tag]
    elif " or " in vr:
        vr = vr.rsplit(" or ", 1)[1]
    return SWAP_SIZE.get(vr, 1)


def written_vr(tag: int, vr: str, bits_allocated: Any) -> str:
    """The VR to write a re-encoded native element with: OB Pixel Data of more than 8 bits becomes OW."""
    if tag == PIXEL_DATA and vr == "OB" and isinstance(bits_allocated, int) and bits_allocated > 8:
        return "OW"
    return vr


def byteswap(raw: Any, size: int, backend: str | None = None) -> Any:
    """Reverse each ``size``-byte unit of ``raw`` (the registry's "byteswap" kernel; ``size`` 1 copies nothing)."""
    if size == 1:
        return raw
    return _backends.resolve("byteswap", backend)[1].byteswap(raw, size)


def convert(
    raw: Any,
    vr: str,
    src_little: bool,
    dst_little: bool,
    *,
    tag: int = 0,
    dst_vr: str | None = None,
    backend: str | None = None,
) -> Any:
    """The bytes of a value of ``vr`` in ``src_little`` order, re-ordered for ``dst_little`` as ``dst_vr``.

    ``dst_vr`` differs from ``vr`` only for a nonconformant OB Pixel Data
    value written as OW (see :func:`written_vr`): its bytes are the cells
    least significant byte first, in either byte order.

    Examples
    --------
    >>> convert(bytes(range(8)), "OW", True, False)  # 32-bit pixels too: 16-bit words
    b'\\x01\\x00\\x03\\x02\\x05\\x04\\x07\\x06'
    >>> convert(bytes(range(8)), "OF", True, False)
    b'\\x03\\x02\\x01\\x00\\x07\\x06\\x05\\x04'
    """
    dst_vr = dst_vr or vr
    src_unit = 1 if src_little else swap_size(vr, tag)
    dst_unit = 1 if dst_little else swap_size(dst_vr, tag)
    if src_unit == dst_unit:  # the same order; for units > 1, only when both are big endian
        return raw
    # Through little endian: undo the source's order, then apply the target's.
    return byteswap(byteswap(raw, src_unit, backend), dst_unit, backend)
