"""Native Pixel Data byte order, written out for the tests: the standard's reading and pydicom's.

PS3.5 8.2 packs pixel cells, least significant bit first, into OW words (the
transfer syntax orders the two bytes of each word) or into OB bytes (which no
byte order touches). So big-endian OW holds 16-bit words whatever Bits
Allocated, and OB is read the same in either byte order. DCMTK (``dcmconv``)
reads and converts that way; so does fastdicom.

pydicom 3.0 reads big-endian native pixels in units of Bits Allocated
whatever the VR (``>u4`` for 32 bits, ``>u2`` for 16-bit OB) and 1-bit data
unswapped. It agrees with the standard for 8- and 16-bit OW, for OB of up to
8 bits and for Float / Double Float Pixel Data, and nowhere else: there the
tests follow the standard and say where pydicom differs.
"""

from __future__ import annotations

import numpy as np

PIXEL_DATA = 0x7FE00010
UNIT = {"OW": 2, "OF": 4, "OD": 8}


def swap(b: bytes, unit: int) -> bytes:
    """Reverse each ``unit``-byte unit (a trailing partial unit stays)."""
    b = bytes(b)
    if unit == 1:
        return b
    n = len(b) - len(b) % unit
    return np.frombuffer(b[:n], dtype=f">u{unit}").astype(f"<u{unit}").tobytes() + b[n:]


def little_cells(raw, vr: str, little: bool) -> bytes:
    """A native pixel value's bytes with every cell least significant byte first (PS3.5 8.2)."""
    if little or vr == "OB":
        return bytes(raw)
    return swap(raw, UNIT.get(vr, 2))


def big_endian_value(cells: bytes, vr: str) -> bytes:
    """The bytes of a value under Explicit VR Big Endian, from its little-endian cells."""
    return bytes(cells) if vr == "OB" else swap(cells, UNIT.get(vr, 2))


def pydicom_reads_otherwise(tag: int, vr: str, bits_allocated: int, little: bool) -> bool:
    """Whether pydicom 3.0 may read these pixels otherwise than the standard (see the module's docstring)."""
    if little or tag != PIXEL_DATA:
        return False
    if vr == "OB":
        return bits_allocated > 8
    return bits_allocated not in (8, 16)


def dataset_read_otherwise(ds) -> bool:
    """:func:`pydicom_reads_otherwise` for a fastdicom data set (native Pixel Data only)."""
    px = ds.pixels
    if px is None or px.encapsulated:
        return False
    return pydicom_reads_otherwise(px._tag, px._elem.vr, px.bits_allocated, ds.is_little_endian)


def pydicom_cells(raw, vr: str, bits_allocated: int, little: bool) -> bytes:
    """The little-endian cells pydicom 3.0 reads from a native Pixel Data value.

    Big endian: units of Bits Allocated whatever the VR; 8-bit OW in 16-bit words; 1-bit data unswapped.
    """
    if little or bits_allocated == 1:
        return bytes(raw)
    if bits_allocated == 8:
        return swap(raw, 2) if vr == "OW" else bytes(raw)
    return swap(raw, bits_allocated // 8)
