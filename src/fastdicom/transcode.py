"""``fastdicom.transcode``: the same object in another transfer syntax.

Between the uncompressed syntaxes (implicit/explicit VR little endian,
explicit big endian, deflated) only the encoding changes. From a compressed
syntax to an uncompressed one the frames are decoded (every codec the
registry has) and the pixel module follows what was decoded: Photometric
Interpretation becomes what the decoder produced (RGB for JPEG YCbCr and
J2K RCT/ICT), Planar Configuration 0, the offset tables go. To RLE Lossless
the decoded frames are encoded by the RLE codec. Lossy history is kept:
Lossy Image Compression stays "01" (set when the source syntax is lossy,
with its method), as PS3.3 C.7.6.1.1.5 requires; pixels are never dropped or
altered beyond what the codecs do.

Encoding to JPEG, JPEG-LS and JPEG 2000 arrives with the native codecs;
asking for it now raises :class:`~fastdicom.pixels.NoDecoderError`.
"""

from __future__ import annotations

import numpy as np

from . import _backends
from .dataset.dataset import Dataset
from .dataset.read import read
from .dataset.values import Encapsulated
from .dataset.write import to_bytes
from .dictionary import uid as _uid
from .dictionary._uids import UIDS
from .pixels.codecs import LOSSY, NoDecoderError

RLE_LOSSLESS = "1.2.840.10008.1.2.5"
#: Short names accepted for the target syntax (besides UIDs and PS3.6 keywords).
ALIASES = {
    "implicit": _uid.IMPLICIT_VR_LITTLE_ENDIAN,
    "explicit": _uid.EXPLICIT_VR_LITTLE_ENDIAN,
    "big": _uid.EXPLICIT_VR_BIG_ENDIAN,
    "deflated": _uid.DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    "rle": RLE_LOSSLESS,
}
_METHOD = {
    "1.2.840.10008.1.2.4.50": "ISO_10918_1",
    "1.2.840.10008.1.2.4.51": "ISO_10918_1",
    "1.2.840.10008.1.2.4.81": "ISO_14495_1",
    "1.2.840.10008.1.2.4.91": "ISO_15444_1",
    "1.2.840.10008.1.2.4.203": "ISO_15444_15",
}


def syntax_uid(name: str) -> str:
    """A transfer syntax UID from a UID, a PS3.6 keyword (``ExplicitVRLittleEndian``) or a short alias."""
    if name in UIDS and UIDS[name][1] == "Transfer Syntax":
        return name
    low = name.strip().lower()
    if low in ALIASES:
        return ALIASES[low]
    for uid, entry in UIDS.items():
        if entry[1] == "Transfer Syntax" and entry[4].lower() == low:
            return uid
    raise ValueError(f"unknown transfer syntax {name!r}")


def transcode(ds: Dataset, transfer_syntax: str) -> Dataset:
    """A new Dataset holding ``ds`` in ``transfer_syntax`` (UID, keyword or alias)."""
    target = syntax_uid(transfer_syntax)
    source = ds.transfer_syntax or _uid.EXPLICIT_VR_LITTLE_ENDIAN
    if target == source:
        return ds
    px = ds.pixels
    src_enc = _uid.is_encapsulated(source)
    dst_enc = _uid.is_encapsulated(target)
    if px is None or (not src_enc and not dst_enc):
        return read(to_bytes(ds, transfer_syntax=target))
    if dst_enc and target != RLE_LOSSLESS:
        raise NoDecoderError(f"encoding to {target} needs a codec this build does not have yet (RLE Lossless does)")
    if px.bits_allocated == 1:
        raise NoDecoderError("transcoding 1-bit Pixel Data between encapsulated and native syntaxes is not supported")
    frames = px.array()  # decoded: raises NoDecoderError naming what to install
    photometric = px.decoded_photometric
    new = read(to_bytes(ds))  # our own copy to edit
    for tag in (0x7FE00001, 0x7FE00002):  # Extended Offset Table (and its lengths)
        if tag in new:
            del new[tag]
    del new[0x7FE00010]
    if frames.dtype.itemsize > 1 and not frames.dtype.isnative:
        frames = frames.astype(frames.dtype.newbyteorder("="))
    if target == RLE_LOSSLESS:
        encode = _backends.resolve("rle_encode")[1].rle_encode_frame
        little = frames.astype(frames.dtype.newbyteorder("<"), copy=False)
        encoded = [
            encode(np.ascontiguousarray(f).tobytes(), px.rows, px.columns, px.samples, px.bits_allocated)
            for f in little
        ]
        new.add_new(0x7FE00010, "OB", Encapsulated(encoded))
    else:
        vr = "OB" if px.bits_allocated <= 8 else "OW"
        order = "<" if _uid.encoding_of(target)[0] else ">"  # bytes values are written as they are
        new.add_new(0x7FE00010, vr, np.ascontiguousarray(frames).astype(frames.dtype.newbyteorder(order)).tobytes())
    if photometric == "YBR_FULL_422":  # the frames were decoded or upsampled to full resolution
        photometric = "YBR_FULL"
    new.PhotometricInterpretation = photometric
    if px.samples > 1:
        new.PlanarConfiguration = 0
    if source in LOSSY:
        new.LossyImageCompression = "01"
        if "LossyImageCompressionMethod" not in new and source in _METHOD:
            new.add_new("LossyImageCompressionMethod", "CS", _METHOD[source])
    meta = new.file_meta
    if meta is not None:
        meta[0x00020010].value = target
    else:
        new.__dict__["_transfer_syntax"] = target
    return read(to_bytes(new, transfer_syntax=target))
