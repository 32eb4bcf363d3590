"""Transfer syntax UIDs and their properties (PS3.5 section 10, PS3.6 Table A-1)."""

from __future__ import annotations

IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
ENCAPSULATED_UNCOMPRESSED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.98"
DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"

#: Data sets encoded in Implicit VR Little Endian, and deflated ones (PS3.5 A.1, A.5; JPIP Referenced Deflate
#: and its HTJ2K twin deflate their data set too). Papyrus 3 Implicit VR Little Endian is retired.
IMPLICIT = frozenset((IMPLICIT_VR_LITTLE_ENDIAN, "1.2.840.10008.1.20"))
DEFLATED = frozenset((DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, "1.2.840.10008.1.2.4.95", "1.2.840.10008.1.2.4.205"))
#: Syntaxes whose Pixel Data is native (not encapsulated).
NATIVE = frozenset(
    (
        IMPLICIT_VR_LITTLE_ENDIAN,
        EXPLICIT_VR_LITTLE_ENDIAN,
        EXPLICIT_VR_BIG_ENDIAN,
        DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
        "1.2.840.10008.1.20",
    )
)

#: The four uncompressed encodings that ``write`` converts between.
UNCOMPRESSED = (
    IMPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
)


def encoding_of(uid: str) -> tuple[bool, bool, bool]:
    """``(little_endian, explicit_vr, deflated)`` of a transfer syntax.

    Every transfer syntax other than Implicit VR Little Endian (and Papyrus 3's)
    and Explicit VR Big Endian encodes its data set in explicit VR little endian.
    """
    if uid in IMPLICIT:
        return True, False, False
    if uid == EXPLICIT_VR_BIG_ENDIAN:
        return False, True, False
    return True, True, uid in DEFLATED


def is_encapsulated(uid: str) -> bool:
    """Whether Pixel Data is encapsulated (compressed) in this transfer syntax."""
    return uid not in NATIVE


def generate_uid() -> str:
    """A new UID under the ``2.25`` root: the decimal form of a random UUID (PS3.5 B.2)."""
    import uuid

    return f"2.25.{uuid.uuid4().int}"
