"""Stubs for the private native module ``fastdicom._rust`` (checked by mypy.stubtest)."""

from collections.abc import Callable
from os import PathLike
from typing import Any, TypeAlias, TypeVar, final

from numpy.typing import NDArray
from typing_extensions import Buffer

from .dataset._records import Columns, Item, Opened, Record

# Every buffer parameter takes any object with the buffer protocol; numpy arrays are the usual ones.
_Buf: TypeAlias = Buffer | NDArray[Any]
_T = TypeVar("_T")

__all__ = [
    "ElementTable",
    "MAX_DEPTH",
    "__version__",
    "decode_simple",
    "j2k_decode",
    "j2k_encode",
    "jls_decode",
    "jls_decode_into",
    "jls_encode",
    "jpeg_decode_into",
    "jpeg_encode",
    "jpeg_header",
    "open_dataset",
    "parse_dataset",
    "parse_fragments",
    "parse_items",
    "pdata_recv",
    "pdata_send",
    "pdata_sendfile",
    "read_prefix",
    "rle_decode_frame",
    "rle_decode_into",
    "rle_encode_frame",
    "Xxh3",
    "stage_create",
    "sync_close",
]
__version__: str
MAX_DEPTH: int

@final
class ElementTable:
    @property
    def end(self) -> int: ...
    @property
    def explicit_vr(self) -> bool: ...
    @property
    def sorted(self) -> bool: ...
    def __len__(self) -> int: ...
    def find(self, tag: int) -> int: ...
    def lookup(self, tag: int) -> Record | None: ...
    def record(self, i: int) -> Record: ...
    def build(self, i: int, factory: Callable[..., _T], context: object = None) -> _T: ...
    def value(
        self,
        buf: _Buf,
        tag: int,
        little_endian: bool,
        missing: object,
        factory: Callable[..., object] | None = None,
        context: object = None,
    ) -> object: ...
    def records(self) -> list[Record]: ...
    def columns(self) -> Columns: ...
    def tags(self) -> list[int]: ...

def parse_dataset(
    buf: _Buf,
    start: int,
    end: int,
    little_endian: bool,
    explicit_vr: bool,
    stop_before_pixels: bool = False,
    in_item: bool = False,
    depth: int = 0,
    max_depth: int = ...,
) -> ElementTable: ...
def parse_items(
    buf: _Buf,
    start: int,
    length: int,
    little_endian: bool,
    explicit_vr: bool,
    depth: int,
    tag: int,
    max_depth: int = ...,
) -> list[Item]: ...
def parse_fragments(buf: _Buf, start: int, length: int, little_endian: bool, tag: int) -> list[Item]: ...
def open_dataset(buf: _Buf, stop_before_pixels: bool = False) -> Opened: ...
def read_prefix(path: str | PathLike[str], size: int) -> tuple[bytes, bool]: ...
def decode_simple(vr: str, raw: _Buf, little_endian: bool, missing: object) -> object: ...
def j2k_decode(buf: _Buf, rows: int, columns: int, samples: int, threads: int = 1) -> tuple[bytes, int, bool, int]: ...
def j2k_encode(
    buf: _Buf,
    rows: int,
    columns: int,
    samples: int,
    bytes_per_sample: int,
    precision: int,
    signed: bool,
    ratio: float = 0.0,
    threads: int = 1,
) -> bytes: ...
def jls_decode(buf: _Buf, rows: int, columns: int, samples: int) -> tuple[bytes, int, int]: ...
def jls_decode_into(buf: _Buf, out: _Buf, rows: int, columns: int, samples: int) -> tuple[int, int]: ...
def jls_encode(
    buf: _Buf,
    rows: int,
    columns: int,
    samples: int,
    bits: int,
    near: int = 0,
    preset: tuple[int, int, int, int, int] | None = None,
) -> bytes: ...
def jpeg_header(buf: _Buf) -> tuple[int, int, int, int, bool] | None: ...
def jpeg_decode_into(
    buf: _Buf,
    out: _Buf,
    rows: int,
    columns: int,
    samples: int,
    itemsize: int,
    photometric_rgb: bool,
    keep_ycbcr: bool,
) -> tuple[int, bool, bool, bool]: ...
def jpeg_encode(
    buf: _Buf,
    rows: int,
    columns: int,
    samples: int,
    precision: int,
    lossless: bool,
    quality: int = 90,
    subsample: bool = True,
) -> bytes: ...
def pdata_recv(
    sock: object, context_id: int, max_pdu: int, fd: int, timeout: float | None, hasher: Xxh3 | None = None
) -> tuple[int, int, str, object]: ...

@final
class Xxh3:
    def __init__(self) -> None: ...
    def update(self, data: _Buf) -> None: ...
    def hexdigest(self) -> str: ...
    def digest(self) -> bytes: ...
    def copy(self) -> Xxh3: ...

def pdata_send(sock: object, payload: _Buf, context_id: int, command: bool, fragment: int) -> None: ...
def pdata_sendfile(sock: object, file_fd: int, offset: int, length: int, context_id: int, fragment: int) -> None: ...
def rle_decode_frame(buf: _Buf, rows: int, columns: int, samples: int, bits_allocated: int) -> bytes: ...
def rle_decode_into(buf: _Buf, out: _Buf, rows: int, columns: int, samples: int, bits_allocated: int) -> None: ...
def rle_encode_frame(buf: _Buf, rows: int, columns: int, samples: int, bits_allocated: int) -> bytes: ...
def stage_create(incoming: str | PathLike[str], header: bytes) -> tuple[int, str]: ...
def sync_close(fds: list[int]) -> list[int]: ...
