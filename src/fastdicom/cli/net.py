"""``fastdicom echo | serve | send | demo``."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from typing import Any

from ..errors import FastDicomError


def _client_tls(args):
    if not getattr(args, "tls", False):
        return None
    from ..net.tls import client_context

    return client_context(ca=args.tls_ca, cert=args.tls_cert, key=args.tls_key, check_hostname=not args.tls_no_hostname)


def add_tls_client(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tls", action="store_true", help="use TLS (1.2 or later)")
    p.add_argument("--tls-ca", help="CA bundle that signs the peer's certificate")
    p.add_argument("--tls-cert", help="our certificate (mutual authentication)")
    p.add_argument("--tls-key", help="our private key")
    p.add_argument("--tls-no-hostname", action="store_true", help="do not check the peer's host name")


def cmd_echo(args: argparse.Namespace) -> int:
    from ..net import NetworkError
    from ..services import echo

    t0 = time.perf_counter()
    try:
        status = echo(args.address, calling_ae=args.aet, timeout=args.timeout, tls=_client_tls(args))
    except (NetworkError, ValueError) as exc:
        print(f"fastdicom echo: {exc}", file=sys.stderr)
        return 2
    ms = (time.perf_counter() - t0) * 1000
    print(f"C-ECHO {args.address}: status 0x{status:04X} ({ms:.1f} ms)")
    return 0 if status == 0 else 1


def cmd_serve(args: argparse.Namespace) -> int:
    from ..config import ConfigError, load, parse_peer

    tls = None
    if args.tls_cert:
        from ..net.tls import server_context

        tls = server_context(
            args.tls_cert, args.tls_key, ca=args.tls_ca, require_client_cert=args.tls_require_client_cert
        )
    try:
        config = load(args.config).override(
            ae_title=args.ae,
            port=args.port,
            host=args.host,
            archive=args.directory or args.dir,
            peers=[parse_peer(p) for p in args.peer or ()],
            allow=args.allow or (),
            limits={
                "max_associations": args.max_associations,
                "match_limit": args.match_limit,
                "pending_interval": args.pending_interval,
            },
        )
    except (ConfigError, ValueError) as exc:
        print(f"fastdicom serve: {exc}", file=sys.stderr)
        return 2
    scp: Any
    if args.sink or args.no_index:  # no index, so no Query/Retrieve: a Storage SCP
        from ..services import StorageSCP

        scp = StorageSCP(
            None if args.sink else (config.archive or "archive"),
            ae_title=config.ae_title,
            port=config.port,
            host=config.host,
            max_associations=config.limits.max_associations,
            allowed_aes=config.allowed_aes,
            duplicates=args.duplicates,
            sink=args.sink,
            index=False,
            tls=tls,
        )
        where = "checking and discarding (--sink)" if args.sink else f"storing into {scp.directory} (no index)"
    else:
        from ..services.pacs import PacsServer

        scp = PacsServer(
            config.archive or "archive", config=config, tls=tls, duplicates=args.duplicates, checksum=args.checksum
        )
        where = f"storing into {scp.directory}; C-FIND, C-MOVE, C-GET over its index"
    scp.start()
    print(f"fastdicom serve: {config.ae_title} listening on port {scp.port}, {where}", flush=True)

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # SIGTERM (systemd, kill) stops as Ctrl-C does: associations closed, counts printed

    signal.signal(signal.SIGTERM, stop)
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        scp.stop()
        s = scp.stats
        print(
            f"\n{s['stored']} stored, {s['failed']} failed, {s['bytes'] / 1e6:,.1f} MB, {s['associations']} associations"
        )
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    from ..services import store

    try:
        report = store(
            args.paths,
            args.to,
            associations=args.jobs,
            calling_ae=args.aet,
            async_ops=None if args.no_async else args.async_ops,
            retries=args.retries,
            timeout=args.timeout,
            tls=_client_tls(args),
            log=args.log,
        )
    except (FastDicomError, ValueError) as exc:
        print(f"fastdicom send: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    for r in report.failed[:20]:
        status = f"0x{r.status:04X}" if r.status is not None else "-"
        print(f"  failed {r.path}: status {status} {r.error_comment or r.error or ''}", file=sys.stderr)
    return 0 if not report.failed else 1


def _body(path: str) -> bytes:
    from ..services.store import data_set_offset

    with open(path, "rb") as f:
        data = f.read()
    return data[data_set_offset(data) :]


def cmd_demo(args: argparse.Namespace) -> int:
    """Make a study, serve it to ourselves over loopback with the pipeline, verify, report."""
    from .. import synth
    from ..dataset.read import read
    from ..dataset.write import write
    from ..services import StorageSCP, echo, store

    work = tempfile.mkdtemp(prefix="fastdicom-demo-")
    try:
        src = os.path.join(work, "study")
        archive = os.path.join(work, "archive")
        t0 = time.perf_counter()
        paths = synth.write_ct_series(os.path.join(src, "ct"), args.slices)
        mf = synth.enhanced_ct(args.frames, rows=256, columns=256)
        mf_path = os.path.join(src, "enhanced_ct.dcm")
        write(mf_path, mf)
        paths.append(mf_path)
        size = sum(os.path.getsize(p) for p in paths)
        print(
            f"study: {args.slices} CT slices of 512x512 and one {args.frames}-frame Enhanced CT, "
            f"{size / 1e6:,.1f} MB, made in {time.perf_counter() - t0:.1f} s"
        )
        with StorageSCP(archive, port=0, ae_title="DEMO_SCP") as scp:
            address = f"DEMO_SCP@127.0.0.1:{scp.port}"
            status = echo(address, calling_ae="DEMO_SCU")
            print(f"C-ECHO {address}: 0x{status:04X}")
            report = store(paths, address, associations=args.associations, calling_ae="DEMO_SCU", progress=None)
        print(report.summary())
        bad = 0
        for r in report.results:
            if not r.ok:
                bad += 1
                continue
            ds_hdr = read(r.path, stop_before_pixels=True)
            got = os.path.join(archive, ds_hdr.StudyInstanceUID, ds_hdr.SeriesInstanceUID, f"{r.sop_instance_uid}.dcm")
            if not os.path.exists(got) or _body(got) != _body(r.path):
                bad += 1
        print(
            f"verified: {len(report.results) - bad} of {len(report.results)} objects arrived intact"
            + ("" if not bad else f"; {bad} missing or different")
        )
        return 0 if bad == 0 and not report.failed else 1
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def register(sub) -> None:
    p = sub.add_parser("echo", help="C-ECHO a peer: fastdicom echo AET@host:port")
    p.add_argument("address")
    p.add_argument("--aet", default="FASTDICOM", help="our (calling) AE title")
    p.add_argument("--timeout", type=float, default=30.0)
    add_tls_client(p)
    p.set_defaults(func=cmd_echo)

    p = sub.add_parser(
        "serve", help="run a small PACS: Verification, Storage, Query/Retrieve on one port over an indexed archive"
    )
    p.add_argument("directory", nargs="?", help="archive folder (default: the config's, else ./archive)")
    p.add_argument(
        "--config", help="TOML configuration: local AE, peers and their rights, limits (see fastdicom.config)"
    )
    p.add_argument("--port", type=int, default=None, help="port (default 11112; overrides the config)")
    p.add_argument("--host", default=None)
    p.add_argument("--dir", default=None, help=argparse.SUPPRESS)  # the folder, as before it was positional
    p.add_argument("--ae", default=None, help="our AE title (default FASTDICOM)")
    p.add_argument("--max-associations", type=int, default=None)
    p.add_argument("--allow", action="append", help="a calling AE title allowed in (repeat; default: any)")
    p.add_argument("--peer", action="append", help="a known peer AET@host:port, e.g. a C-MOVE destination (repeat)")
    p.add_argument("--match-limit", type=int, default=None, help="C-FIND matches past which a query is refused")
    p.add_argument("--pending-interval", type=float, default=None, help="seconds between C-MOVE/C-GET pendings")
    p.add_argument("--duplicates", choices=["overwrite", "keep", "reject"], default="overwrite")
    p.add_argument("--sink", action="store_true", help="check and discard objects (measure a sender)")
    p.add_argument("--no-index", action="store_true", help="store files only, without the archive's SQLite index")
    p.add_argument(
        "--checksum", choices=["xxh3", "sha256", "md5"], default="xxh3", help="checksum of stored files (index)"
    )
    p.add_argument("--tls-cert", help="serve TLS with this certificate")
    p.add_argument("--tls-key")
    p.add_argument("--tls-ca", help="CA that signs client certificates")
    p.add_argument("--tls-require-client-cert", action="store_true")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("send", help="C-STORE files over parallel associations")
    p.add_argument("paths", nargs="+")
    p.add_argument("--to", required=True, help="AET@host:port")
    p.add_argument("-j", "--jobs", type=int, default=4, help="parallel associations")
    p.add_argument("--aet", default="FASTDICOM")
    p.add_argument(
        "--async-ops",
        type=int,
        default=8,
        help="asynchronous operations window to propose (default 8; pipelined when the peer accepts)",
    )
    p.add_argument(
        "--no-async", action="store_true", help="never propose the window (peers that drop associations carrying it)"
    )
    p.add_argument("--retries", type=int, default=3)
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--log", help="one JSON line per instance")
    add_tls_client(p)
    p.set_defaults(func=cmd_send)

    p = sub.add_parser("demo", help="make a study, send it to a local SCP over loopback, verify, report")
    p.add_argument("--slices", type=int, default=150)
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("-j", "--associations", type=int, default=4)
    p.add_argument("--keep", action="store_true", help="keep the study and archive")
    p.set_defaults(func=cmd_demo)
