"""A run folder holds exactly one run: claim it, or refuse before anything in it is touched.

A folder whose ledger holds a run is resumed only under the same configuration and the same
market data; ``resume=false`` refuses it (a fresh run needs a fresh folder). A folder another
process is running is refused too. Only once the folder is claimed does anything write to it,
the saved Hydra config (``.hydra/``) included.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from core.errors import ConfigError, DataError

LEDGER_FILE = "ledger.duckdb"


@dataclass(frozen=True)
class Claim:
    """What the folder holds: nothing (a fresh run), or a run to resume after ``last_ts``."""

    run_dir: Path
    fresh: bool
    last_ts: int | None  # the last committed equity mark; None: no bar committed yet
    fingerprint: str | None  # of the market data the run started on

    def check_data(self, fingerprint: str) -> None:
        """Refuse resuming on other market data than the run started on."""
        if self.fingerprint is not None and self.fingerprint != fingerprint:
            raise DataError(f"run folder {self.run_dir}: the market data changed since the run started "
                            f"(fingerprint {self.fingerprint} in the ledger, {fingerprint} now); restore the "
                            "data it ran on, or start a new run in a new hydra.run.dir")


def first_difference(a: Any, b: Any, path: str = "") -> str:
    """The first key (in sorted order) where two JSON-like values differ, with both values."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return first_difference(a.get(key), b.get(key), f"{path}.{key}" if path else key)
    return f"{path or '<root>'}: {a!r} in the ledger, {b!r} now"


def claim(run_dir: Path, agent: str, config: dict[str, Any], *, resume: bool) -> Claim:
    """Check, read-only, that ``run_dir`` may hold this run; raise ConfigError/DataError if not.

    The market data is checked once it is loaded (``Claim.check_data``): paper and live fetch
    it into the run folder, which must not happen before the folder is claimed.
    """
    path = run_dir / LEDGER_FILE
    if not path.exists():
        return Claim(run_dir, fresh=True, last_ts=None, fingerprint=None)
    runs, last_ts = _read(path, run_dir, agent)
    if not runs:
        return Claim(run_dir, fresh=True, last_ts=None, fingerprint=None)  # killed before its first commit
    where = f"run folder {run_dir}"
    if len(runs) > 1:
        raise ConfigError(f"{where} holds {len(runs)} runs spliced into one ledger; it cannot be resumed. "
                          "Start again in a new hydra.run.dir")
    stored_agent, stored_config, stored_fingerprint = runs[0]
    if not resume:
        raise ConfigError(f"{where} already holds a run of agent {stored_agent!r}; resume=false asks for a "
                          "fresh run: choose a new hydra.run.dir (or resume this one with resume=true and "
                          "its overrides)")
    if stored_agent != agent:
        raise ConfigError(f"{where} holds a run of agent {stored_agent!r}, not {agent!r}; choose a new "
                          "hydra.run.dir")
    stored = json.loads(stored_config)
    if stored != config:
        raise ConfigError(f"{where} holds a run of another configuration ({first_difference(stored, config)}); "
                          "resume it with the same overrides, or choose a new hydra.run.dir")
    return Claim(run_dir, fresh=False, last_ts=last_ts, fingerprint=stored_fingerprint)


def _read(path: Path, run_dir: Path, agent: str) -> tuple[list[tuple[str, str, str]], int | None]:
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise ConfigError(f"run folder {run_dir} is in use by another Ratchet process (its ledger is "
                              "locked); wait for it to stop, or choose a new hydra.run.dir") from None
        raise DataError(f"{path} is not a readable ledger ({_first_line(exc)})") from None
    except duckdb.Error as exc:
        raise DataError(f"{path} is not a readable ledger ({_first_line(exc)})") from None
    try:
        tables = {name for (name,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        if "runs" not in tables:
            return [], None
        runs = con.execute("SELECT agent, config, data_fingerprint FROM runs ORDER BY wall_ts").fetchall()
        last = con.execute("SELECT max(ts) FROM equity WHERE agent = ?", [agent]).fetchone()
        return runs, last[0] if last else None
    except duckdb.Error as exc:
        raise DataError(f"{path} is not a readable ledger ({_first_line(exc)})") from None
    finally:
        con.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
