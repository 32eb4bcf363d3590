"""``fastdicom find | move | get``: the Query/Retrieve SCU (:mod:`fastdicom.services.query_retrieve_scu`).

Keys as findscu takes them: ``-k PatientID=123`` matches, ``-k PatientName``
asks for a return key; ``-k 0010,0020=123`` by tag. Each level brings a few
return keys people want (``--no-defaults`` leaves them out). Answers are a
table (rich) or, with ``--json``, a DICOM JSON array (PS3.18 F).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from ..errors import FastDicomError
from .net import _client_tls, add_tls_client

#: Return keys added at each level unless --no-defaults (the columns people look at first).
DEFAULT_KEYS = {
    "PATIENT": ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "NumberOfPatientRelatedStudies"),
    "STUDY": (
        "PatientName",
        "PatientID",
        "StudyDate",
        "StudyTime",
        "AccessionNumber",
        "StudyDescription",
        "ModalitiesInStudy",
        "NumberOfStudyRelatedInstances",
        "StudyInstanceUID",
    ),
    "SERIES": ("Modality", "SeriesNumber", "SeriesDescription", "NumberOfSeriesRelatedInstances", "SeriesInstanceUID"),
    "IMAGE": ("InstanceNumber", "SOPClassUID", "SOPInstanceUID"),
}
_HIDDEN = ("QueryRetrieveLevel", "SpecificCharacterSet", "RetrieveAETitle")


def parse_keys(keys: list[str] | None) -> dict[Any, str]:
    """``["PatientID=123", "PatientName", "0008,0020=2024"]`` -> ``{keyword or tag: value}``."""
    out: dict[Any, str] = {}
    for k in keys or []:
        name, _, value = k.partition("=")
        name = name.strip()
        if not name:
            raise ValueError(f"-k {k!r}: no attribute named")
        key: Any = name
        hexed = name.replace(",", "").replace("(", "").replace(")", "")
        if len(hexed) == 8 and all(c in "0123456789abcdefABCDEF" for c in hexed):
            key = int(hexed, 16)
        out[key] = value
    return out


def _identifier(args: argparse.Namespace) -> Any:
    from ..services.query_retrieve_scu import make_identifier

    keys = parse_keys(args.key)
    level = args.level.upper()
    if not args.no_defaults and args.command == "find":
        for kw in DEFAULT_KEYS.get(level, ()):
            keys.setdefault(kw, "")
    args.columns = list(keys)  # the table's columns: the keys given, then the defaults
    return make_identifier(keys, level)


def _model(args: argparse.Namespace) -> str:
    return "patient" if args.patient_root else "study"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "\\".join(str(v) for v in value)
    return str(value)


def cmd_find(args: argparse.Namespace) -> int:
    from ..dataset.dicomjson import to_json_dict
    from ..net import NetworkError
    from ..services.query_retrieve_scu import QueryRetrieveError, find

    try:
        ident = _identifier(args)
        answers = find(
            args.address,
            ident,
            model=_model(args),
            calling_ae=args.aet,
            timeout=args.timeout,
            tls=_client_tls(args),
        )
    except (FastDicomError, ValueError) as exc:
        print(f"fastdicom find: {exc}", file=sys.stderr)
        return 2
    got = []
    failed: str | None = None
    try:
        with answers:
            for ds in answers:
                got.append(ds)
                if args.limit and len(got) >= args.limit:
                    break  # closing the answers sends C-CANCEL
    except QueryRetrieveError as exc:
        failed = str(exc)
    except (NetworkError, FastDicomError) as exc:
        failed = str(exc)
    if args.json:
        print(json.dumps([to_json_dict(ds, suppress_invalid_tags=True) for ds in got], ensure_ascii=False, indent=1))
    else:
        _table(args.columns, got, answers)
    if failed:
        print(f"fastdicom find: {failed}", file=sys.stderr)
        return 1
    return 0


def _console() -> Any:
    from rich.console import Console

    return Console(soft_wrap=False, width=None if sys.stdout.isatty() else 240)


def _table(keys: list[Any], answers: list, responses: Any) -> None:
    from rich.table import Table

    columns = [k for k in keys if k not in _HIDDEN]
    table = Table(show_lines=False, header_style="bold")
    for k in columns:
        table.add_column(k if isinstance(k, str) else f"({k >> 16:04X},{k & 0xFFFF:04X})", overflow="fold")
    for ds in answers:
        table.add_row(*[_text(ds.get(k)) for k in columns])
    console = _console()
    console.print(table)
    status = "-" if responses.status is None or responses.status < 0 else f"0x{responses.status:04X}"
    note = " (cancelled)" if responses.cancelled else ""
    console.print(f"{len(answers)} answers, final status {status}{note}")


def _summary(result: Any, what: str) -> None:
    from rich.table import Table

    table = Table(title=what, show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    d = result.as_json()
    keys = ["status", "completed", "failed", "warning", "associations"]
    if result.expected is not None or result.received:
        keys[4:4] = ["expected", "received", "missing"]
    for key in keys:
        value = d.get(key)
        if value is not None:
            table.add_row(key, str(len(value) if isinstance(value, list) else value))
    if result.bytes:
        secs = max(result.seconds, 1e-9)
        table.add_row("bytes", f"{result.bytes / 1e6:,.1f} MB ({result.bytes / 1e6 / secs:,.1f} MB/s)")
    table.add_row("time", f"{result.seconds:.2f} s")
    if result.error_comment:
        table.add_row("error comment", result.error_comment)
    _console().print(table)
    for uid in result.failed_uids[:20]:
        print(f"  failed (peer): {uid}", file=sys.stderr)
    for uid in result.missing[:20]:
        print(f"  missing: {uid}", file=sys.stderr)
    for uid, why in list(result.refused.items())[:20]:
        print(f"  not stored: {uid}: {why}", file=sys.stderr)


def cmd_move(args: argparse.Namespace) -> int:
    from ..services import StorageSCP
    from ..services.query_retrieve_scu import move

    scp = None
    try:
        ident = _identifier(args)
        if args.store_port is not None:
            scp = StorageSCP(args.output or "moved", port=args.store_port, ae_title=args.dest).start()
        result = move(
            args.address,
            ident,
            args.dest,
            model=_model(args),
            receiver=scp,
            arrival_timeout=args.arrival_timeout,
            calling_ae=args.aet,
            timeout=args.timeout,
            tls=_client_tls(args),
        )
    except (FastDicomError, ValueError, OSError) as exc:
        print(f"fastdicom move: {exc}", file=sys.stderr)
        return 2
    finally:
        if scp is not None:
            scp.stop()
    return _report(args, result, f"C-MOVE to {args.dest}")


def cmd_get(args: argparse.Namespace) -> int:
    from ..services.query_retrieve_scu import get

    t0 = time.perf_counter()
    try:
        ident = _identifier(args)
        os.makedirs(args.output, exist_ok=True)
        result = get(
            args.address,
            ident,
            into=args.output,
            model=_model(args),
            calling_ae=args.aet,
            timeout=args.timeout,
            tls=_client_tls(args),
        )
    except (FastDicomError, ValueError, OSError) as exc:
        print(f"fastdicom get: {exc}", file=sys.stderr)
        return 2
    result.seconds = time.perf_counter() - t0
    return _report(args, result, f"C-GET into {args.output}")


def _report(args: argparse.Namespace, result: Any, title: str) -> int:
    """Print the result (a table, or JSON); exit status 0 only when all arrived (C-GET: and was stored)."""
    if args.json:
        print(json.dumps(result.as_json(), indent=1))
    else:
        _summary(result, title)
    return 0 if result.ok else 1


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("address", help="AET@host:port of the Q/R SCP")
    p.add_argument("-k", "--key", action="append", help="KEY=VALUE to match, KEY alone to return (repeat)")
    p.add_argument("-L", "--level", default="study", type=str.upper, choices=["PATIENT", "STUDY", "SERIES", "IMAGE"])
    p.add_argument("-P", "--patient-root", action="store_true", help="Patient Root model (default: Study Root)")
    p.add_argument("--aet", default="FASTDICOM", help="our (calling) AE title")
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--json", action="store_true", help="DICOM JSON (PS3.18 F) instead of a table")
    p.add_argument("--no-defaults", action="store_true", help="send only the keys given with -k")
    add_tls_client(p)


def register(sub: Any) -> None:
    p = sub.add_parser("find", help="C-FIND: fastdicom find AET@host:port -k PatientID=123 -L study [--json]")
    _common(p)
    p.add_argument("--limit", type=int, default=0, help="stop after N answers (sends C-CANCEL)")
    p.set_defaults(func=cmd_find)

    p = sub.add_parser("move", help="C-MOVE to an AE: fastdicom move AET@host:port -k ... --dest AE")
    _common(p)
    p.add_argument("--dest", required=True, help="the move destination's AE title")
    p.add_argument(
        "--store-port",
        type=int,
        help="receive ourselves on this port as --dest (the peer must know it there); missing objects are reported",
    )
    p.add_argument("-o", "--output", help="where --store-port stores (default ./moved)")
    p.add_argument("--arrival-timeout", type=float, default=30.0, help="wait this long for late objects")
    p.set_defaults(func=cmd_move)

    p = sub.add_parser("get", help="C-GET into a folder: fastdicom get AET@host:port -k ... -o DIR")
    _common(p)
    p.add_argument("-o", "--output", required=True, help="folder (stored as <Study>/<Series>/<SOP>.dcm, durably)")
    p.set_defaults(func=cmd_get)
