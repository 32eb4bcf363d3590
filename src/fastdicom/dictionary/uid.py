"""Transfer syntax UIDs and their properties (PS3.5 section 10, PS3.6 Table A-1)."""

from __future__ import annotations

IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
ENCAPSULATED_UNCOMPRESSED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.98"
DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"

#: The four uncompressed encodings that ``write`` converts between.
UNCOMPRESSED = (
    IMPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
)


def encoding_of(uid: str) -> tuple[bool, bool, bool]:
    """``(little_endian, explicit_vr, deflated)`` of a transfer syntax.

    Every transfer syntax other than Implicit VR Little Endian and Explicit VR
    Big Endian encodes its data set in explicit VR little endian.
    """
    if uid == IMPLICIT_VR_LITTLE_ENDIAN:
        return True, False, False
    if uid == EXPLICIT_VR_BIG_ENDIAN:
        return False, True, False
    if uid == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN:
        return True, True, True
    return True, True, False


def is_encapsulated(uid: str) -> bool:
    """Whether Pixel Data is encapsulated (compressed) in this transfer syntax."""
    return uid not in (
        IMPLICIT_VR_LITTLE_ENDIAN,
        EXPLICIT_VR_LITTLE_ENDIAN,
        EXPLICIT_VR_BIG_ENDIAN,
        DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    )
