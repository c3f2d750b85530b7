"""`ratchet-report RUN [RUN ...]`: write each run's report.html, and a comparison page for several."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from core.errors import LedgerError
from ledger.cli import find_ledgers
from ledger.report.compare import COMPARISON_FILE, write_comparison
from ledger.report.page import write_report


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ratchet-report",
        description="Write report.html (self-contained: open it offline) into each run folder. A sweep folder, "
                    f"or several runs, also get a comparison page ({COMPARISON_FILE}) in their common folder.")
    parser.add_argument("run_dirs", nargs="+", metavar="RUN",
                        help="a run folder holding ledger.duckdb, or a sweep folder above several")
    parser.add_argument("--out", metavar="PATH", type=Path,
                        help=f"where to write the comparison page (default: COMMON_FOLDER/{COMPARISON_FILE})")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Write the reports and print their paths; returns 0, or 2 after one line on stderr."""
    args = _parser().parse_args(argv)
    try:
        runs = [ledger.parent for ledger in find_ledgers(args.run_dirs)]
        for run_dir in runs:
            print(write_report(run_dir))
        if len(runs) > 1 or args.out is not None:
            out = args.out or Path(os.path.commonpath([r.resolve() for r in runs])) / COMPARISON_FILE
            if out.parent and not out.parent.is_dir():
                raise LedgerError(f"--out {out}: folder {out.parent} does not exist")
            print(write_comparison(runs, out))
    except LedgerError as exc:
        print(f"ratchet-report: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
