"""Find the public test corpus (../shared/corpus/README.md)."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def shared_corpus() -> Path | None:
    env = os.environ.get("FASTDICOM_CORPUS")
    if env:
        return Path(env)
    p = ROOT.parent / "shared" / "corpus"
    return p if p.is_dir() else None


@dataclass(frozen=True)
class CorpusFile:
    where: str
    path: str
    row: dict

    @property
    def id(self) -> str:
        return self.path.replace("/", "_")

    def resolve(self) -> Path | None:
        try:
            if self.where == "pip:pydicom":
                import pydicom.data

                base = Path(pydicom.data.__file__).parent
            elif self.where == "pip:pydicom-data":
                import data_store

                base = Path(data_store.__file__).parent.parent
            elif self.where == "pip:deid-data":
                import deid_data

                base = Path(deid_data.__file__).parent.parent
            elif self.where == "shared":
                base = shared_corpus()
                if base is None:
                    return None
            else:
                return None
        except ImportError:
            return None
        p = base / self.path
        return p if p.is_file() else None


def corpus_files() -> list[CorpusFile]:
    base = shared_corpus()
    if base is None or not (base / "public.csv").is_file():
        return []
    with open(base / "public.csv", newline="") as f:
        return [CorpusFile(r["where"], r["path"], r) for r in csv.DictReader(f)]
