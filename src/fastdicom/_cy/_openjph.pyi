"""Stubs for the private Cython module ``fastdicom._cy._openjph`` (checked by mypy.stubtest)."""

from typing import Any

from typing_extensions import Buffer

__version__: str
__test__: dict[str, str]
MAX_PRECISION: int
MAX_QSTEP: float

def read_header(data: Buffer) -> tuple[int, int, int, int, bool, bool, bool]: ...
def decode_into(data: Buffer, out: Any, rows: int, columns: int, samples: int, itemsize: int) -> tuple[int, bool]: ...
def encode(
    raw: Any,
    rows: int,
    columns: int,
    samples: int,
    itemsize: int,
    bits_stored: int,
    is_signed: bool,
    qstep: float,
    levels: int,
) -> bytes: ...
def _warnings() -> tuple[int, str]: ...
