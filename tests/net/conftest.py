"""Peers for the network tests: our SCP, DCMTK's tools and pynetdicom, all on loopback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest

from fastdicom import synth


def dcmtk(name: str) -> str | None:
    """The DCMTK program ``name`` (pynetdicom installs Python scripts with the same names: skip those)."""
    for cand in (f"/usr/bin/{name}", shutil.which(name)):
        if cand and os.path.exists(cand):
            try:
                out = subprocess.run([cand, "--version"], capture_output=True, text=True, timeout=10).stdout
            except (OSError, subprocess.TimeoutExpired):
                continue
            if "dcmtk" in out.lower():
                return cand
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    """Twelve small CT slices (Explicit VR Little Endian), one series."""
    folder = tmp_path_factory.mktemp("series")
    return synth.write_ct_series(str(folder), 12, rows=32, columns=32)


def need(name: str) -> str:
    path = dcmtk(name)
    if path is None:
        pytest.skip(f"DCMTK {name} not installed (ci/setup.sh installs it)")
    return path
