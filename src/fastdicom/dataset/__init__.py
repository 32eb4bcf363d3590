"""Data sets: tokenizer (Rust / pure Python), lazy values, reading and writing."""

from .dataset import Dataset, Element
from .read import read
from .write import to_bytes, write

__all__ = ["Dataset", "Element", "read", "write", "to_bytes"]
