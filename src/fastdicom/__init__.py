"""fastdicom: read, decode and move DICOM at the speed of the hardware.

Examples
--------
>>> import fastdicom
>>> ds = fastdicom.read("CT_small.dcm", stop_before_pixels=True)  # doctest: +SKIP
>>> ds.SOPInstanceUID  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._backends import backend_info
from ._lazy import lazy_attributes
from ._version import __version__
from .archive import Archive
from .dataset import Dataset, Element, read, to_bytes, write
from .errors import FastDicomError, InvalidDicomError

if TYPE_CHECKING:
    from .interop import from_pydicom
    from .pixels import decode
    from .series import Series, SeriesError, find_series, load_series
    from .transcode import transcode

#: Imported on first use (they bring numpy and the codecs; a network tool starts without them).
__getattr__ = lazy_attributes(
    __name__,
    {
        "from_pydicom": "fastdicom.interop",
        "decode": "fastdicom.pixels",
        "Series": "fastdicom.series",
        "SeriesError": "fastdicom.series",
        "find_series": "fastdicom.series",
        "load_series": "fastdicom.series",
        "transcode": "fastdicom.transcode",
    },
    globals(),
)

__all__ = [
    "__version__",
    "Archive",
    "Dataset",
    "Element",
    "FastDicomError",
    "InvalidDicomError",
    "Series",
    "SeriesError",
    "backend_info",
    "decode",
    "find_series",
    "from_pydicom",
    "load_series",
    "read",
    "to_bytes",
    "transcode",
    "write",
]


def _check_native() -> None:
    """With FASTDICOM_REQUIRE_NATIVE=1, fail at import if a native backend is missing or stale."""
    from . import _backends

    if _backends.require_native() and not _backends.forced():
        _backends.backend_info()


_check_native()
