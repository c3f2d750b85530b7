"""`ratchet-dashboard`: serve the read-only dashboard over a runs folder (127.0.0.1 by default)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

TOKEN_ENV = "RATCHET_DASHBOARD_TOKEN"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ratchet-dashboard",
        description="A read-only web dashboard over every run in a runs folder: equity, state, open positions, "
                    "transitions, adjustments and any named ledger view, refreshing by itself.")
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="the runs folder (default: runs)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=8050, help="port (default: 8050)")
    parser.add_argument("--token", default=os.environ.get(TOKEN_ENV),
                        help=f"require this token on every request (default: ${TOKEN_ENV}; none when unset)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.runs.is_dir():
        print(f"ratchet-dashboard: runs folder {args.runs} does not exist", file=sys.stderr)
        return 2
    if not 0 < args.port < 65536:
        print(f"ratchet-dashboard: --port {args.port} is not a port (1-65535)", file=sys.stderr)
        return 2
    import uvicorn

    from ledger.dashboard.app import create_app

    where = f"http://{args.host}:{args.port}/" + ("?token=..." if args.token else "")
    print(f"ratchet-dashboard: serving {args.runs} on {where}", flush=True)
    uvicorn.run(create_app(args.runs, args.token), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
