"""fastdicom against real peers on loopback: itself, pynetdicom and DCMTK, in both roles."""

from __future__ import annotations

import builtins
import glob
import os
import subprocess
import threading

import pytest

import fastdicom
from fastdicom import _backends
from fastdicom.net import StorageSCP, echo, store

from .conftest import free_port, need, wait_port

pynetdicom = pytest.importorskip("pynetdicom")


def _body(path) -> bytes:
    data = open(path, "rb").read()
    return data[_backends.resolve("parse")[1].open_dataset(memoryview(data), True).body_start :]


def _archived(archive) -> list[str]:
    return sorted(glob.glob(os.path.join(archive, "*", "*", "*.dcm")))


def _assert_arrived_intact(paths, archive):
    got = {os.path.basename(p)[:-4]: p for p in _archived(archive)}
    for p in paths:
        uid = fastdicom.read(p, stop_before_pixels=True).SOPInstanceUID
        assert uid in got, f"{p} did not arrive"
        assert _body(got[uid]) == _body(p)
    assert not os.listdir(os.path.join(archive, ".incoming"))  # no partial file left


def test_fastdicom_to_fastdicom(series, tmp_path):
    with StorageSCP(str(tmp_path), port=0) as scp:
        address = f"ANY@127.0.0.1:{scp.port}"
        assert echo(address) == 0
        report = store(series, address, associations=3, async_ops=4, progress=False, log=str(tmp_path / "log.jsonl"))
    assert len(report.sent) == len(series) and not report.failed
    assert report.latency_ms(50) is not None and report.bytes > 0
    _assert_arrived_intact(series, str(tmp_path))
    lines = open(tmp_path / "log.jsonl").read().splitlines()
    assert len(lines) == len(series) and all('"ok": true' in line for line in lines)


def test_pynetdicom_scu_to_fastdicom_scp(series, tmp_path):
    from pynetdicom import AE
    from pynetdicom.sop_class import CTImageStorage, Verification

    with StorageSCP(str(tmp_path), port=0) as scp:
        ae = AE(ae_title="PYNETDICOM")
        ae.add_requested_context(Verification)
        ae.add_requested_context(CTImageStorage)
        assoc = ae.associate("127.0.0.1", scp.port, ae_title="FASTDICOM")
        assert assoc.is_established
        assert assoc.send_c_echo().Status == 0
        import pydicom

        for p in series:
            status = assoc.send_c_store(pydicom.dcmread(p))
            assert status.Status == 0
        assoc.release()
    got = _archived(str(tmp_path))
    assert len(got) == len(series)
    by_uid = {pydicom.dcmread(s, stop_before_pixels=True).SOPInstanceUID: s for s in series}
    for p in got:  # pynetdicom may re-encode (implicit VR): compare the public elements and the pixels
        a = pydicom.dcmread(p)
        b = pydicom.dcmread(by_uid[a.SOPInstanceUID])
        assert [e.tag for e in a] == [e.tag for e in b]
        for e in b:
            if not e.tag.is_private and e.VR != "SQ":
                assert a[e.tag].value == e.value, e
        assert a.PixelData == b.PixelData


def test_fastdicom_scu_to_pynetdicom_scp(series):
    from pynetdicom import AE, AllStoragePresentationContexts, evt
    from pynetdicom.sop_class import Verification

    received = {}

    def on_store(event):
        ds = event.dataset
        received[ds.SOPInstanceUID] = ds
        return 0x0000

    ae = AE(ae_title="PYSCP")
    ae.supported_contexts = AllStoragePresentationContexts
    ae.add_supported_context(Verification)
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        address = f"PYSCP@127.0.0.1:{port}"
        assert echo(address) == 0
        report = store(series, address, associations=2, progress=False)
    finally:
        server.shutdown()
    assert not report.failed and len(received) == len(series)
    import pydicom

    for p in series:
        src = pydicom.dcmread(p)
        assert received[src.SOPInstanceUID].PixelData == src.PixelData


def test_dcmtk_storescu_and_echoscu_to_fastdicom_scp(series, tmp_path):
    storescu = need("storescu")
    echoscu = need("echoscu")
    with StorageSCP(str(tmp_path), port=0, ae_title="FASTDICOM") as scp:
        r = subprocess.run(
            [echoscu, "-aec", "FASTDICOM", "127.0.0.1", str(scp.port)], capture_output=True, text=True, timeout=60
        )
        assert r.returncode == 0, r.stderr
        r = subprocess.run(
            [storescu, "-aec", "FASTDICOM", "127.0.0.1", str(scp.port), *series],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
    _assert_arrived_intact(series, str(tmp_path))


def test_fastdicom_scu_to_dcmtk_storescp(series, tmp_path):
    storescp = need("storescp")
    port = free_port()
    out = tmp_path / "dcmtk"
    out.mkdir()
    proc = subprocess.Popen(
        [storescp, "-od", str(out), "-aet", "DCMTK", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        wait_port(port)
        address = f"DCMTK@127.0.0.1:{port}"
        assert echo(address) == 0
        report = store(series, address, associations=2, progress=False)
    finally:
        proc.terminate()
        proc.wait(10)
    assert not report.failed, [r.error or r.status for r in report.failed]
    files = sorted(os.listdir(out))
    assert len(files) == len(series)
    bodies = {_body(str(out / f)) for f in files}
    assert bodies == {_body(p) for p in series}


def test_reconnects_after_an_abort_and_sends_nothing_twice(series):
    """pynetdicom aborts the association at the fourth object; the pipeline reconnects and finishes."""
    from pynetdicom import AE, AllStoragePresentationContexts, evt

    calls: dict[str, int] = {}
    lock = threading.Lock()

    def on_store(event):
        uid = event.request.AffectedSOPInstanceUID
        with lock:
            calls[uid] = calls.get(uid, 0) + 1
            n = sum(calls.values())
        if n == 4:
            event.assoc.abort()
            return 0xA700
        return 0x0000

    ae = AE(ae_title="PYSCP")
    ae.supported_contexts = AllStoragePresentationContexts
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        report = store(series, f"PYSCP@127.0.0.1:{port}", associations=1, backoff=0.05, progress=False)
    finally:
        server.shutdown()
    assert not report.failed and len(report.sent) == len(series)
    assert report.associations >= 2
    assert sorted(calls.values()).count(2) == 1 and max(calls.values()) == 2  # only the aborted one went twice


def test_out_of_resources_is_retried(series):
    from pynetdicom import AE, AllStoragePresentationContexts, evt

    seen: dict[str, int] = {}

    def on_store(event):
        uid = event.request.AffectedSOPInstanceUID
        seen[uid] = seen.get(uid, 0) + 1
        return 0xA700 if seen[uid] == 1 else 0x0000  # every object fails once

    ae = AE(ae_title="PYSCP")
    ae.supported_contexts = AllStoragePresentationContexts
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        report = store(series[:4], f"PYSCP@127.0.0.1:{port}", associations=2, backoff=0.01, progress=False)
        failing = store(series[4:6], f"PYSCP@127.0.0.1:{port}", associations=1, retries=0, progress=False)
    finally:
        server.shutdown()
    assert not report.failed and all(
        v == 2 for uid, v in seen.items() if uid in {r.sop_instance_uid for r in report.results}
    )
    assert len(failing.failed) == 2 and {r.status for r in failing.failed} == {0xA700}


def test_compressed_objects_are_decoded_for_a_peer_that_only_takes_native(tmp_path):
    """The peer accepts Explicit VR Little Endian only: compressed objects are decoded, never stripped."""
    import numpy as np
    from pynetdicom import AE, StoragePresentationContexts, evt

    from tests.pixels.test_codecs import DECODABLE

    wanted = ("MR_small_jpeg_ls_lossless.dcm", "SC_rgb_jpeg_gdcm.dcm", "US1_J2KR.dcm", "SC_rgb_jpeg_dcmtk.dcm")
    files = [f.resolve() for f in DECODABLE if f.path.endswith(wanted) and f.resolve()]
    if len(files) < 2:
        pytest.skip("corpus files not installed")
    received = {}

    def on_store(event):
        ds = event.dataset
        ds.file_meta = event.file_meta
        received[ds.SOPInstanceUID] = ds
        return 0

    ae = AE(ae_title="NATIVE")
    for cx in StoragePresentationContexts:
        ae.add_supported_context(cx.abstract_syntax, ["1.2.840.10008.1.2.1"])
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        report = store([str(p) for p in files], f"NATIVE@127.0.0.1:{port}", progress=False)
    finally:
        server.shutdown()
    assert not report.failed, [(r.path, r.error) for r in report.failed]
    assert all(r.sent_as == "1.2.840.10008.1.2.1" for r in report.results)
    for p in files:
        src = fastdicom.read(p)
        got = received[src.SOPInstanceUID]
        assert np.array_equal(got.pixel_array, src.pixel_array)
        assert got.PhotometricInterpretation == src.pixels.decoded_photometric


def test_any_iterable_of_instances_and_each_header_read_once(series, tmp_path, monkeypatch):
    """Paths, Datasets, bytes and (path-or-bytes, SOP Class, SOP Instance, syntax) records, as a C-MOVE SCP feeding
    from an archive would give them; a path's header is read once, for the scan, and never again to send it."""
    from fastdicom.services.store import Instance, StoreOptions

    parse = _backends.resolve("parse")[1]
    reads: list[str] = []
    real = parse.read_prefix
    monkeypatch.setattr(parse, "read_prefix", lambda path, size: (reads.append(os.fspath(path)), real(path, size))[1])
    opened: list[str] = []
    real_open = builtins.open

    def counting_open(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)):
            opened.append(os.fspath(file))
        return real_open(file, *args, **kwargs)

    paths, as_dataset, as_bytes, as_record, as_bytes_record = series[:4], series[4], series[5], series[6], series[7]
    ds = fastdicom.read(as_dataset)
    record_ds = fastdicom.read(as_record, stop_before_pixels=True)
    bytes_ds = fastdicom.read(as_bytes_record, stop_before_pixels=True)
    sources = [
        *paths,
        ds,
        open(as_bytes, "rb").read(),
        Instance(as_record, record_ds.SOPClassUID, record_ds.SOPInstanceUID, record_ds.transfer_syntax),
        (open(as_bytes_record, "rb").read(), bytes_ds.SOPClassUID, bytes_ds.SOPInstanceUID, bytes_ds.transfer_syntax),
    ]
    reads.clear()
    with StorageSCP(str(tmp_path), port=0) as scp:
        monkeypatch.setattr(builtins, "open", counting_open)
        report = store(sources, f"X@127.0.0.1:{scp.port}", options=StoreOptions(associations=2), progress=False)
        monkeypatch.setattr(builtins, "open", real_open)
    assert not report.failed and len(report.results) == 8
    sent = [r for r in reads if not r.endswith(".part")]  # (the SCP, in this process, reads back what it stores)
    assert sorted(sent) == sorted(paths)  # the four paths' headers, once each; the records carried what they are
    # and each file opened once more, to send its data set from where the scan found it starts
    assert sorted(p for p in opened if p in series) == sorted([*paths, as_record])
    assert [r.path for r in report.results][:4] == paths
    _assert_arrived_intact(series[:8], str(tmp_path))
