"""UIDs: the ``UID`` type, transfer syntax constants by their PS3.6 keyword, and what each syntax means.

The UID registry itself (PS3.6 Table A-1) is the generated ``_uids.UIDS``;
every transfer syntax UID string lives there only. This module names the
transfer syntaxes by their keywords (``ExplicitVRLittleEndian``,
``JPEGLSLossless``, ... the names pydicom uses too), as :class:`UID`
values, and says how each encodes its data set and Pixel Data (PS3.5 10,
A): every module imports them from here.
"""

from __future__ import annotations

import re

from ._uids import UIDS

_UID_RE = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*\Z")


def _by_keyword(keyword: str) -> str:
    for uid, entry in UIDS.items():
        if entry[4] == keyword:
            return uid
    raise KeyError(f"no UID with keyword {keyword!r} in the registry")


EXPLICIT_BIG_ENDIAN_UID = _by_keyword("ExplicitVRBigEndian")
ENCAPSULATED_UNCOMPRESSED_UID = _by_keyword("EncapsulatedUncompressedExplicitVRLittleEndian")
#: Data sets encoded in Implicit VR Little Endian (Papyrus 3's is retired), and deflated ones (PS3.5 A.1, A.5;
#: JPIP Referenced Deflate and its HTJ2K twin deflate their data set too).
IMPLICIT = frozenset(_by_keyword(k) for k in ("ImplicitVRLittleEndian", "Papyrus3ImplicitVRLittleEndian"))
DEFLATED = frozenset(
    _by_keyword(k) for k in ("DeflatedExplicitVRLittleEndian", "JPIPReferencedDeflate", "JPIPHTJ2KReferencedDeflate")
)
#: Syntaxes whose Pixel Data is native (not encapsulated).
NATIVE = frozenset(
    _by_keyword(k)
    for k in (
        "ImplicitVRLittleEndian",
        "ExplicitVRLittleEndian",
        "ExplicitVRBigEndian",
        "DeflatedExplicitVRLittleEndian",
        "Papyrus3ImplicitVRLittleEndian",
    )
)


class UID(str):
    """A Unique Identifier: a ``str`` with what the UID registry (PS3.6 Table A-1) says of it.

    Examples
    --------
    >>> ts = UID("1.2.840.10008.1.2.4.80")
    >>> ts.name, ts.keyword, ts.is_compressed
    ('JPEG-LS Lossless Image Compression', 'JPEGLSLossless', True)
    """

    __slots__ = ()

    def _entry(self) -> tuple[str, str, str, bool, str] | None:
        return UIDS.get(str.__str__(self))

    @property
    def name(self) -> str:
        """The registry's name, or the UID itself when it is not in the registry (as pydicom)."""
        e = self._entry()
        return e[0] if e is not None else str.__str__(self)

    @property
    def keyword(self) -> str:
        e = self._entry()
        return e[4] if e is not None else ""

    @property
    def type(self) -> str:
        """``'Transfer Syntax'``, ``'SOP Class'``, ...; ``''`` when not in the registry."""
        e = self._entry()
        return e[1] if e is not None else ""

    @property
    def info(self) -> str:
        e = self._entry()
        return e[2] if e is not None else ""

    @property
    def is_retired(self) -> bool:
        e = self._entry()
        return bool(e[3]) if e is not None else False

    @property
    def is_transfer_syntax(self) -> bool:
        return self.type == "Transfer Syntax"

    def _syntax(self) -> str:
        if not self.is_transfer_syntax:
            raise ValueError(f"{str.__str__(self)} is not a transfer syntax UID")
        return str.__str__(self)

    @property
    def is_little_endian(self) -> bool:
        """Whether the data set is little endian (every transfer syntax but Explicit VR Big Endian)."""
        return self._syntax() != EXPLICIT_BIG_ENDIAN_UID

    @property
    def is_implicit_VR(self) -> bool:  # noqa: N802 - pydicom's name
        return self._syntax() in IMPLICIT

    @property
    def is_deflated(self) -> bool:
        """Whether the data set is deflated (Deflated Explicit VR Little Endian and the two JPIP Deflate syntaxes)."""
        return self._syntax() in DEFLATED

    @property
    def is_encapsulated(self) -> bool:
        """Whether Pixel Data is encapsulated (PS3.5 A.4): every transfer syntax but the native ones."""
        return self._syntax() not in NATIVE

    @property
    def is_compressed(self) -> bool:
        """Whether pixels are compressed: encapsulated, except Encapsulated Uncompressed Explicit VR Little Endian."""
        return self.is_encapsulated and str.__str__(self) != ENCAPSULATED_UNCOMPRESSED_UID

    @property
    def is_private(self) -> bool:
        """Whether the UID lies outside the DICOM root ``1.2.840.10008``."""
        return not str.__str__(self).startswith("1.2.840.10008.")

    @property
    def is_valid(self) -> bool:
        """Whether the UID follows PS3.5 9.1: at most 64 characters, digits and dots, no leading zeros."""
        s = str.__str__(self)
        return len(s) <= 64 and _UID_RE.match(s) is not None


#: Every transfer syntax of the registry, by keyword.
TRANSFER_SYNTAXES: dict[str, UID] = {e[4]: UID(u) for u, e in UIDS.items() if e[1] == "Transfer Syntax" and e[4]}

# The transfer syntaxes fastdicom names in its code (PS3.6 keywords).
ImplicitVRLittleEndian = TRANSFER_SYNTAXES["ImplicitVRLittleEndian"]
ExplicitVRLittleEndian = TRANSFER_SYNTAXES["ExplicitVRLittleEndian"]
EncapsulatedUncompressedExplicitVRLittleEndian = TRANSFER_SYNTAXES["EncapsulatedUncompressedExplicitVRLittleEndian"]
DeflatedExplicitVRLittleEndian = TRANSFER_SYNTAXES["DeflatedExplicitVRLittleEndian"]
ExplicitVRBigEndian = TRANSFER_SYNTAXES["ExplicitVRBigEndian"]
JPEGBaseline8Bit = TRANSFER_SYNTAXES["JPEGBaseline8Bit"]
JPEGExtended12Bit = TRANSFER_SYNTAXES["JPEGExtended12Bit"]
JPEGLossless = TRANSFER_SYNTAXES["JPEGLossless"]
JPEGLosslessSV1 = TRANSFER_SYNTAXES["JPEGLosslessSV1"]
JPEGLSLossless = TRANSFER_SYNTAXES["JPEGLSLossless"]
JPEGLSNearLossless = TRANSFER_SYNTAXES["JPEGLSNearLossless"]
JPEG2000Lossless = TRANSFER_SYNTAXES["JPEG2000Lossless"]
JPEG2000 = TRANSFER_SYNTAXES["JPEG2000"]
HTJ2KLossless = TRANSFER_SYNTAXES["HTJ2KLossless"]
HTJ2KLosslessRPCL = TRANSFER_SYNTAXES["HTJ2KLosslessRPCL"]
HTJ2K = TRANSFER_SYNTAXES["HTJ2K"]
RLELossless = TRANSFER_SYNTAXES["RLELossless"]
DeflatedImageFrameCompression = TRANSFER_SYNTAXES["DeflatedImageFrameCompression"]

#: The four uncompressed encodings that ``write`` converts between.
UNCOMPRESSED = (ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian)


def encoding_of(uid: str) -> tuple[bool, bool, bool]:
    """``(little_endian, explicit_vr, deflated)`` of a transfer syntax.

    Every transfer syntax other than Implicit VR Little Endian (and Papyrus 3's)
    and Explicit VR Big Endian encodes its data set in explicit VR little endian.
    """
    if uid in IMPLICIT:
        return True, False, False
    if uid == ExplicitVRBigEndian:
        return False, True, False
    return True, True, uid in DEFLATED


def is_encapsulated(uid: str) -> bool:
    """Whether Pixel Data is encapsulated (compressed) in this transfer syntax."""
    return uid not in NATIVE


def generate_uid() -> str:
    """A new UID under the ``2.25`` root: the decimal form of a random UUID (PS3.5 B.2)."""
    import uuid

    return f"2.25.{uuid.uuid4().int}"
