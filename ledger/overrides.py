"""What each run of a sweep was told: the Hydra overrides saved in its `.hydra/overrides.yaml`
(`ratchet` writes them when it claims the folder), and which of them were swept.

A swept override is a key whose value is not the same in every run read together; each gets a
column named by the key's last part (`agent.components.kelly.kelly_fraction=0.25` ->
`kelly_fraction`), or by the whole key where the last part would be ambiguous, or
`override.<key>` where even that is a column the rows already have (`agent=futures,hybrid`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from core.errors import LedgerError

OVERRIDES_FILE = Path(".hydra") / "overrides.yaml"


def hydra_overrides(run_dir: Path) -> list[str] | None:
    """The command-line overrides Hydra saved for a run, or None when it saved none."""
    path = Path(run_dir) / OVERRIDES_FILE
    if not path.is_file():
        return None
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise LedgerError(f"{path} is not YAML: {str(exc).splitlines()[0]}") from exc
    except OSError as exc:
        raise LedgerError(f"cannot read {path}: {exc.strerror}") from exc
    if loaded is None:
        return []
    if not isinstance(loaded, list):
        raise LedgerError(f"{path} should hold a list of overrides, not {type(loaded).__name__}")
    return [str(item) for item in loaded]


def told(overrides: Iterable[str]) -> dict[str, str]:
    """`key=value` overrides as {key: value}; Hydra's prefixes (`+`, `++`, `~`) are not part of the key."""
    out: dict[str, str] = {}
    for override in overrides:
        key, _, value = override.partition("=")
        out[key.lstrip("+~")] = value
    return out


@dataclass(frozen=True)
class Swept:
    """One swept override: its key and the column that shows it."""

    key: str
    column: str


def swept(runs: Sequence[dict[str, str]], taken: Iterable[str] = ()) -> list[Swept]:
    """The keys whose value differs between the runs (absent counts as a value), in the order they
    were first given, each with a column name that clashes with no other and with none of `taken`."""
    keys = list(dict.fromkeys(key for run in runs for key in run))
    varied = [k for k in keys if len({run.get(k) for run in runs}) > 1]
    short = [k.replace("/", ".").rsplit(".", 1)[-1] for k in varied]
    taken = set(taken)
    out = []
    for key, name in zip(varied, short, strict=True):
        column = name if short.count(name) == 1 and name not in taken else key
        out.append(Swept(key, column if column not in taken else f"override.{key}"))
    return out


def sweep_overrides(run_dirs: Iterable[Path]) -> dict[str, dict[str, str]]:
    """Each run folder's overrides as {key: value}, by the folder's path as text (the `run_dir` of
    `ratchet-ledger`'s rows); a run without saved overrides was told nothing."""
    return {str(run_dir): told(hydra_overrides(run_dir) or []) for run_dir in run_dirs}
