"""Element-by-element comparison of a fastdicom Dataset with a pydicom Dataset."""

from __future__ import annotations

import math


def _norm(value):
    from pydicom.multival import MultiValue
    from pydicom.valuerep import PersonName

    if isinstance(value, PersonName):
        return str(value)
    if isinstance(value, (MultiValue, list, tuple)):
        return [_norm(v) for v in value]
    return value


def _equal(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, (bytes, memoryview)) and isinstance(b, (bytes, memoryview)):
        return bytes(a) == bytes(b)
    return a == b


_WORD = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}


def _swap(b: bytes, size: int) -> bytes:
    import numpy as np

    if size == 1:
        return b
    n = len(b) - len(b) % size
    return np.frombuffer(b[:n], dtype=f"<u{size}").byteswap().tobytes() + b[n:]


def _ob_pixels_written_as_ow(fe, fd, pe) -> bool:
    """Native OB Pixel Data of more than 8 bits, which the writer writes as OW (PS3.5 8.2 allows OB up to 8)."""
    ba = fd.get(0x00280100)
    return (
        fe.tag == 0x7FE00010
        and (fe.vr, pe.VR) == ("OB", "OW")
        and isinstance(ba, int)
        and ba > 8
        and not fe.is_undefined_length
    )


def diff_datasets(
    fd,
    pd,
    path: str = "",
    out: list | None = None,
    skip: frozenset = frozenset(),
    implicit: bool = False,
    swapped: bool = False,
    group_lengths: bool = True,
) -> list[str]:
    """Return a list of differences (empty when equal).

    With ``implicit``, a private element that pydicom reads back as UN (implicit
    VR loses the VR of private elements it has no dictionary for) is compared
    by its encoded bytes. With ``group_lengths=False``, Group Length elements
    are not compared (re-encoding recomputes them).
    """
    out = [] if out is None else out
    ftags = [e.tag for e in fd]
    ptags = [int(e.tag) for e in pd]
    if ftags != sorted(ptags):
        missing = sorted(set(ptags) - set(ftags))
        extra = sorted(set(ftags) - set(ptags))
        out.append(f"{path}: tags differ: missing {[hex(t) for t in missing]} extra {[hex(t) for t in extra]}")
    for tag in ftags:
        if tag not in pd or tag in skip or (not group_lengths and tag & 0xFFFF == 0):
            continue
        fe = fd[tag]
        pe = pd[tag]
        where = f"{path}({tag >> 16:04X},{tag & 0xFFFF:04X})"
        if implicit and tag >> 16 & 1:
            continue  # implicit VR loses private VRs; pydicom guesses them from its private dictionary
        if fe.vr != pe.VR and implicit:
            from fastdicom.dictionary import vr_of

            if pe.VR in vr_of(tag) or {fe.vr, pe.VR} <= {"OB", "OW"}:
                continue  # implicit VR keeps only the dictionary's VR
        ob_as_ow = _ob_pixels_written_as_ow(fe, fd, pe)
        if fe.vr != pe.VR and not ob_as_ow:
            out.append(f"{where}: VR {fe.vr} != {pe.VR}")
            continue
        if fe.vr == "SQ":
            fi, pi = fe.value, pe.value
            if len(fi) != len(pi):
                out.append(f"{where}: {len(fi)} items != {len(pi)}")
                continue
            for k, (a, b) in enumerate(zip(fi, pi)):
                diff_datasets(
                    a, b, f"{where}[{k}].", out, implicit=implicit, swapped=swapped, group_lengths=group_lengths
                )
            continue
        fv = fe.value
        pv = _norm(pe.value)
        if (swapped or ob_as_ow) and isinstance(fv, bytes):
            # PS3.5 7.3 and 8.2: each VR swaps in its own unit, OW (Pixel Data too) in 16-bit
            # words whatever Bits Allocated; OB never. Through little endian to the other order.
            little = fd.is_little_endian
            if not little:
                fv = _swap(fv, _WORD.get(fe.vr, 1))
            if little == swapped:  # the converted data set is big endian
                fv = _swap(fv, _WORD.get(pe.VR, 1))
        if not _equal(fv, pv):
            out.append(f"{where} {fe.vr}: {fv!r:.120} != {pv!r:.120}")
        elif fe.vm != pe.VM:
            out.append(f"{where} {fe.vr}: VM {fe.vm} != {pe.VM}")
    return out
