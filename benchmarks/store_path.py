"""The store path, whole processes on tmpfs: issue 13's table, side by side in one run.

Senders: ``fastdicom send -j 4`` and DCMTK's ``storescu`` (one association);
receivers: ``fastdicom serve`` (durable, and ``--sink``) and DCMTK's
``storescp``. Both DCMTK programs are tuned (``TCP_NODELAY=1``, ``-pdu
131072``). Every round starts with an empty receiving folder on tmpfs
(``/dev/shm``: fsync costs nothing there, as on NVMe with power-loss
protection) and times the sending process from its start to its exit and to
the last object on disk. Correct means: every object arrived and its data set
bytes equal the source's (compared by SHA-1 of the data set after the File
Meta); ``--sink`` receives nothing to compare, so there the sender's report
(every status success) is the check.

Run (about three minutes)::

    PYTHONPATH=$PWD/src python3 benchmarks/store_path.py --rounds 5
    PYTHONPATH=$PWD/src python3 benchmarks/store_path.py --only small --rounds 7

The package is byte-compiled first (``compileall``, as an installation
does): this environment sets ``PYTHONDONTWRITEBYTECODE``, under which every
``fastdicom`` process would compile its sources again (0.3 s of start-up, the
485 KB tag dictionary most of it).

Data is generated once under ``/dev/shm/fastdicom-storebench`` (2,000 objects
of 8 KB, 1,200 CT slices of 0.5 MB); ``--keep`` leaves it there.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = "/dev/shm/fastdicom-storebench"
DCMTK_PDU = "131072"


def _body_hash(path: str) -> str:
    from fastdicom.services.store import data_set_offset

    with open(path, "rb") as f:
        data = f.read()
    return hashlib.sha1(data[data_set_offset(data) :]).hexdigest()


def _files(folder: str) -> list[str]:
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        out += [os.path.join(root, f) for f in files if not f.endswith(".part")]
    return out


def make_small(n: int = 2000) -> str:
    import fastdicom
    from fastdicom import synth

    folder = os.path.join(ROOT, f"small{n}")
    if os.path.isdir(folder) and len(os.listdir(folder)) == n:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    study, series, frame = synth.new_uid(), synth.new_uid(), synth.new_uid()
    px = np.zeros((56, 56), dtype="<i2")
    for i in range(n):
        ds = synth.ct_slice(i, study_uid=study, series_uid=series, frame_uid=frame, rows=56, columns=56, pixels=px)
        fastdicom.write(os.path.join(folder, f"S{i:05d}.dcm"), ds)
    return folder


def make_series(n: int = 1200) -> str:
    from fastdicom import synth

    folder = os.path.join(ROOT, f"ct{n}")
    if os.path.isdir(folder) and len(os.listdir(folder)) == n:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    synth.write_ct_series(folder, n, rows=512, columns=512)
    return folder


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(proc: subprocess.Popen, port: int, timeout: float = 30.0) -> None:
    """Wait until ``port`` is listening, without connecting (an idle connection would cost the server)."""
    end = time.time() + timeout
    needle = f":{port:04X} "
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"receiver exited with {proc.returncode}")
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(table) as f:
                    if any(needle in line and line.split()[3] == "0A" for line in f.readlines()[1:]):
                        return
            except OSError:
                pass
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


class Receiver:
    def __init__(self, kind: str, folder: str) -> None:
        self.kind, self.dir, self.port = kind, folder, _free_port()
        env = dict(os.environ)
        env["TCP_NODELAY"] = "1"
        if kind.startswith("fastdicom"):
            cmd = [sys.executable, "-m", "fastdicom", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
            cmd += ["--sink"] if kind == "fastdicom-sink" else ["--dir", folder]
            self.ae = "FASTDICOM"
        else:
            cmd = ["/usr/bin/storescp", "-od", folder, "-aet", "DCMTK", "-pdu", DCMTK_PDU, "+B", str(self.port)]
            self.ae = "DCMTK"
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        _wait_listening(self.proc, self.port)

    def clear(self) -> None:
        for name in os.listdir(self.dir):
            if name == ".incoming":
                continue
            p = os.path.join(self.dir, name)
            shutil.rmtree(p) if os.path.isdir(p) else os.unlink(p)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _send(sender: str, folder: str, rcv: Receiver) -> None:
    env = dict(os.environ)
    env["TCP_NODELAY"] = "1"
    if sender == "fastdicom":
        cmd = [sys.executable, "-m", "fastdicom", "send", "-j", "4", "--to", f"{rcv.ae}@127.0.0.1:{rcv.port}", folder]
    else:
        cmd = ["/usr/bin/storescu", "-aec", rcv.ae, "-pdu", DCMTK_PDU, "+sd", "127.0.0.1", str(rcv.port), folder]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"{sender} failed ({r.returncode}): {r.stdout[-1500:]} {r.stderr[-1500:]}")


def run_pair(sender: str, receiver: str, source: str, expected: list[str], rounds: int) -> dict:
    work = tempfile.mkdtemp(prefix=f"recv-{receiver}-", dir=ROOT)
    rcv = Receiver(receiver, work)
    times = []
    correct = True
    try:
        for _ in range(rounds):
            rcv.clear()
            t0 = time.perf_counter()
            _send(sender, source, rcv)
            if receiver != "fastdicom-sink":
                end = time.time() + 60
                while len(_files(work)) < len(expected) and time.time() < end:
                    time.sleep(0.005)
            times.append(time.perf_counter() - t0)
            if receiver != "fastdicom-sink":
                got = sorted(_body_hash(p) for p in _files(work))
                correct = correct and got == expected
    finally:
        rcv.stop()
        shutil.rmtree(work, ignore_errors=True)
    return {"median_s": statistics.median(times), "times": times, "correct": correct}


PAIRS = [
    ("dcmtk", "dcmtk"),
    ("fastdicom", "fastdicom"),
    ("fastdicom", "fastdicom-sink"),
    ("dcmtk", "fastdicom"),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", choices=["small", "series"], action="append")
    ap.add_argument("--pairs", help="comma-separated sender>receiver, e.g. fastdicom>fastdicom-sink")
    ap.add_argument("--keep", action="store_true", help="keep the generated data under " + ROOT)
    args = ap.parse_args(argv)
    os.makedirs(ROOT, exist_ok=True)
    import compileall

    import fastdicom

    compileall.compile_dir(os.path.dirname(fastdicom.__file__), quiet=1)
    pairs = PAIRS if not args.pairs else [tuple(p.split(">")) for p in args.pairs.split(",")]
    sets = []
    if not args.only or "small" in args.only:
        sets.append(("2,000 objects of 8 KB", make_small()))
    if not args.only or "series" in args.only:
        sets.append(("CT series, 1,200 x 0.5 MB", make_series()))
    ok = True
    try:
        for label, folder in sets:
            paths = _files(folder)
            size = sum(os.path.getsize(p) for p in paths)
            expected = sorted(_body_hash(p) for p in paths)
            base = None
            print(f"\n{label}: {len(paths)} files, {size / 1e6:,.1f} MB, {args.rounds} rounds, medians")
            for sender, receiver in pairs:
                res = run_pair(sender, receiver, folder, expected, args.rounds)
                med = res["median_s"]
                base = med if (sender, receiver) == ("dcmtk", "dcmtk") else base
                ratio = f"{base / med:.2f}x" if base else "-"
                ok = ok and res["correct"]
                print(
                    f"  {sender:>9} -> {receiver:<15} {med * 1000:8.1f} ms  {len(paths) / med:8,.0f} obj/s "
                    f"{size / 1e6 / med:8,.1f} MB/s  {ratio:>6}  correct={res['correct']}  "
                    f"rounds={[round(t, 3) for t in res['times']]}",
                    flush=True,
                )
    finally:
        if not args.keep:
            shutil.rmtree(ROOT, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
