"""Stubs for the private Cython module ``fastdicom._cy._kernels`` (checked by mypy.stubtest)."""

from typing_extensions import Buffer

__version__: str
__test__: dict[str, str]

def byteswap(src: Buffer, itemsize: int) -> bytes: ...
