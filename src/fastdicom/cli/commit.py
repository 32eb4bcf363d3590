"""``fastdicom commit PATH... --to AET@host:port``: Storage Commitment, every instance committed or failed."""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import FastDicomError
from .net import _client_tls, add_tls_client


def cmd_commit(args: argparse.Namespace) -> int:
    from ..services.commitment import commit

    try:
        report = commit(
            args.to,
            args.paths,
            timeout=args.timeout,
            listen=args.listen,
            calling_ae=args.aet,
            tls=_client_tls(args),
        )
    except (FastDicomError, ValueError, OSError) as exc:
        print(f"fastdicom commit: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.as_json(), indent=1))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"Storage Commitment {report.transaction_uid}")
        for col in ("instance", "SOP Instance UID", "result", "reason"):
            table.add_column(col)
        for r in report.results:
            table.add_row(
                r.source or "",
                r.sop_instance_uid or "",
                "[green]committed[/green]" if r.committed else "[red]failed[/red]",
                r.reason + (f" (0x{r.failure_reason:04X})" if r.failure_reason is not None else ""),
            )
        console = Console()
        console.print(table)
        where = (
            ""
            if report.same_association is None
            else (" on the same association" if report.same_association else " on a new association")
        )
        console.print(
            f"{len(report.committed)} committed, {len(report.failed)} failed"
            + (f"; reported in {report.seconds:.3f} s{where}" if report.reported else "; no report")
        )
    if not report.results:
        return 2
    return 0 if report.ok else 1


def register(sub) -> None:
    p = sub.add_parser("commit", help="ask a peer to commit stored instances (Storage Commitment Push Model)")
    p.add_argument("paths", nargs="+", help="files or folders of the instances")
    p.add_argument("--to", required=True, help="AET@host:port")
    p.add_argument("--aet", default="FASTDICOM", help="our (calling) AE title; the peer reports to it")
    p.add_argument("--timeout", type=float, default=60.0, help="longest wait for the report (seconds)")
    p.add_argument(
        "--listen",
        type=int,
        help="wait for the report on this port (the peer opens an association to us) instead of the same association",
    )
    p.add_argument("--json", action="store_true", help="one JSON document instead of the table")
    add_tls_client(p)
    p.set_defaults(func=cmd_commit)
