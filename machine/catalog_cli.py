"""``ratchet-catalog``: what a run can be made of, found on this machine.

    markets     the market presets (``market=NAME``): kind, timeframe, symbols
    data        the candle, mark and funding files available locally, bundled and in any
                ``--data-dir`` (a ``market.data_dir``), with their first and last bar
    guards      the guards a transition's ``when`` can name, with the parameter each takes
    components  every Component under ``components/`` with its Config's fields and defaults,
                and where the bundled agents use it

Only the components section imports the components (the ML gate brings torch, ~2 s); the others
read config files and parquet footers.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from core.errors import ConfigError, DataError
from machine.cli_errors import cli_entry

SECTIONS = ("markets", "data", "guards", "components")
PROG = "ratchet-catalog"


def _conf_group(group: str) -> Iterator[tuple[str, dict[str, Any], str]]:
    """Each option of a config group shipped in the ``conf`` package: name, content, first comment line."""
    folder = resources.files("conf") / group
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            text = entry.read_text()
            comment = next((line.lstrip("# ").strip() for line in text.splitlines()
                            if line.startswith("#") and "@package" not in line), "")
            yield entry.name.removesuffix(".yaml"), yaml.safe_load(text) or {}, comment


# --- markets --------------------------------------------------------------------------------------
def markets() -> list[dict[str, Any]]:
    return [{"name": name, "kind": m.get("kind"), "timeframe": m.get("timeframe"),
             "symbols": list(m.get("symbols") or []), "about": about}
            for name, m, about in _conf_group("market")]


# --- data -----------------------------------------------------------------------------------------
def _utc(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def _ts_range(path: Path) -> tuple[int | None, int | None, int]:
    """First and last ``ts`` and the row count, from the parquet footer when it holds statistics."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    column = meta.schema.names.index("ts")
    stats = [meta.row_group(i).column(column).statistics for i in range(meta.num_row_groups)]
    if stats and all(s is not None and s.has_min_max for s in stats):
        return min(s.min for s in stats), max(s.max for s in stats), meta.num_rows
    ts = pq.read_table(path, columns=["ts"])["ts"]
    bounds = pc.min_max(ts).as_py() if len(ts) else {"min": None, "max": None}
    return bounds["min"], bounds["max"], len(ts)


def data(data_dirs: list[Path]) -> list[dict[str, Any]]:
    """Every series file of the bundled data and of each data dir, with its span (bar open times, UTC)."""
    from components.market.catalog import BUNDLED_DATA_DIR, Catalog

    out = []
    for where, root in [("bundled", BUNDLED_DATA_DIR), *((str(d), d) for d in data_dirs)]:
        if not root.is_dir():
            raise DataError(f"--data-dir {root}: no such folder")
        for f in Catalog(root).files():
            first, last, rows = _ts_range(f.path)
            out.append({"source": where, "kind": f.kind, "symbol": f.symbol, "series": f.series,
                        "timeframe": f.timeframe, "first": _utc(first), "last": _utc(last), "rows": rows,
                        "file": f.path.name})
    return out


# --- guards ---------------------------------------------------------------------------------------
_NEEDS = re.compile(r"needs (.+?), got")


def _guard_param(name: str, fn: Callable[..., Any]) -> tuple[str, Any]:
    """How a guard is written in ``when`` and a parameter it accepts, as its own validation says."""
    from core.facts import AgentFacts

    param = list(inspect.signature(fn).parameters)[1]
    if param == "_":
        return name, None
    try:
        fn(AgentFacts(), None)
    except ConfigError as exc:
        needs = _NEEDS.search(str(exc))
        shape = needs.group(1) if needs else param
        if shape == "a number":
            return f"{{{name}: <{param}: a number>}}", 1
        keys = re.findall(r"\w+", shape) if shape.startswith("{") else []
        return f"{{{name}: {{{', '.join(f'{k}: <number>' for k in keys)}}}}}", keys
    return f"{{{name}: <{param}>}}", None


def _evidence(name: str, fn: Callable[..., Any], sample: Any) -> list[str]:
    """What the guard records with a transition it fires (its evidence keys), found by asking it once."""
    from core.facts import AgentFacts

    candidates = [sample] if not isinstance(sample, list) else [
        {k: v for k, v in zip(sample, values, strict=True)} for values in ((0, 1), (2, 1), (1, 2))]
    for param in candidates:
        try:
            return sorted(fn(AgentFacts(), param)[1])
        except ConfigError:
            continue
    return []


def guards() -> list[dict[str, Any]]:
    from machine.guards import CLOCKS, GUARDS

    out = []
    for name, fn in sorted(GUARDS.items()):
        usage, sample = _guard_param(name, fn)
        doc = inspect.getdoc(fn) or ""
        out.append({"name": name, "when": usage, "about": doc.splitlines()[0] if doc else "",
                    "records": _evidence(name, fn, sample), "clock": name in CLOCKS})
    return out


# --- components -----------------------------------------------------------------------------------
def _component_modules() -> list[str]:
    """The modules under ``components/`` that define a class on a Component base, found by reading
    their source (so nothing else under ``components/`` is imported)."""
    root = Path(importlib.import_module("components").__file__ or "").parent
    bases: dict[str, tuple[str, set[str]]] = {}  # class -> (module, base names)
    for path in sorted(root.rglob("*.py")):
        module = ".".join(("components", *path.relative_to(root).with_suffix("").parts)).removesuffix(".__init__")
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef):
                names = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
                bases[node.name] = (module, names)
    found, grew = {"Component"}, True
    while grew:
        more = {name for name, (_, names) in bases.items() if names & found} - found
        found |= more
        grew = bool(more)
    return sorted({bases[name][0] for name in found if name in bases})


def _field_comments(config: type) -> dict[str, str]:
    """The comment at the end of each field's line in the Config's source: where defaults are documented."""
    try:
        source = inspect.getsource(config)
    except (OSError, TypeError):
        return {}
    out = {}
    for line in source.splitlines():
        match = re.match(r"\s+(\w+)\s*:.*?#\s*(.+)$", line)
        if match:
            out.setdefault(match.group(1), match.group(2).strip())
    return out


def _bounds(metadata: list[Any]) -> str:
    signs = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
    parts = [f"{sign} {getattr(m, key)}" for m in metadata for key, sign in signs.items() if hasattr(m, key)]
    return ", ".join(parts)


def _type_name(annotation: Any) -> str:
    """`int`, `float | None`, `tuple[float, ...]`: constraints inside ``Annotated[...]`` are shown as bounds."""
    if isinstance(annotation, type) and not getattr(annotation, "__args__", None):
        return annotation.__name__
    text = str(annotation).replace("typing.", "")
    while (start := text.find("Annotated[")) >= 0:
        inner = start + len("Annotated[")
        depth, end = 1, inner
        while depth:
            depth += {"[": 1, "]": -1}.get(text[end], 0)
            end += 1
        text = text[:start] + text[inner:end - 1].split(",", 1)[0] + text[end:]
    return text


def config_fields(config: type, prefix: str = "") -> list[dict[str, Any]]:
    """A pydantic Config's fields with type, default, bounds and comment; nested Configs as dotted keys."""
    from pydantic import BaseModel

    comments = _field_comments(config)
    out = []
    for name, info in config.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out += config_fields(annotation, f"{prefix}{name}.")
            continue
        required = info.is_required()
        default = None if required else info.get_default(call_default_factory=True)
        out.append({"key": f"{prefix}{name}", "type": _type_name(annotation), "required": required,
                    "default": default.model_dump(mode="json") if isinstance(default, BaseModel) else default,
                    "bounds": _bounds(info.metadata), "about": comments.get(name, info.description or "")})
    return out


def _uses() -> dict[str, list[str]]:
    """Where the bundled agents declare each component class: ``agent.component_name``."""
    out: dict[str, list[str]] = {}
    for agent, decl, _ in _conf_group("agent"):
        for name, spec in (decl.get("components") or {}).items():
            if isinstance(spec, dict) and isinstance(spec.get("_target_"), str):
                out.setdefault(spec["_target_"], []).append(f"{agent}.{name}")
    return out


def components() -> list[dict[str, Any]]:
    from core.component import Component

    for module in _component_modules():
        importlib.import_module(module)
    classes: list[type] = []
    todo = list(Component.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        declarable = hasattr(cls, "stage") and hasattr(cls, "Config") and not cls.__name__.startswith("_")
        if cls.__module__.startswith("components.") and declarable and not inspect.isabstract(cls):
            classes.append(cls)
    uses = _uses()
    out = []
    for cls in sorted(set(classes), key=lambda c: (c.stage, c.__module__, c.__name__)):
        target = f"{cls.__module__}.{cls.__name__}"
        doc = inspect.getdoc(cls) or ""
        out.append({"target": target, "stage": cls.stage.name.lower(), "about": doc.splitlines()[0] if doc else "",
                    "used_as": uses.get(target, []), "fields": config_fields(cls.Config)})
    return out


# --- output ---------------------------------------------------------------------------------------
def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _text(section: str, rows: list[dict[str, Any]]) -> list[str]:
    if section == "markets":
        return ["== markets (market=NAME; override market.symbols, market.start, market.end) =="] + _table(
            [[m["name"], m["kind"], m["timeframe"], ", ".join(m["symbols"]), m["about"]] for m in rows])
    if section == "data":
        head = [["source", "kind", "symbol", "series", "timeframe", "first bar (UTC)", "last bar (UTC)", "rows"]]
        return ["== data on this machine (bar open times; market.start and market.end choose within them) =="] + \
            _table(head + [[d["source"], d["kind"], d["symbol"], d["series"], d["timeframe"], d["first"] or "-",
                            d["last"] or "-", f"{d['rows']:,}"] for d in rows])
    if section == "guards":
        lines = ["== guards (a transition's when: NAME, {NAME: PARAM}, or a list of them that must all pass) =="]
        for g in rows:
            lines += [f"  {g['when']}"] + ([f"      {g['about']}"] if g["about"] else [])
            clock = "; the clock alone can change it" if g["clock"] else ""
            lines.append(f"      records {', '.join(g['records']) or '-'}{clock}")
        return lines
    lines = ["== components (agent.components.NAME: {_target_: CLASS, FIELD: VALUE, ...}) =="]
    for c in rows:
        used = f"   used as {', '.join(c['used_as'])}" if c["used_as"] else ""
        lines += [f"  {c['target']}   stage {c['stage']}{used}"] + ([f"      {c['about']}"] if c["about"] else [])
        for f in c["fields"]:
            bounds = f" ({f['bounds']})" if f["bounds"] else ""
            about = f"  # {f['about']}" if f["about"] else ""
            value = "(required)" if f["required"] else f"= {json.dumps(f['default'], default=str)}"
            lines.append(f"      {f['key']}: {f['type']} {value}{bounds}{about}")
    return lines


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sections", nargs="*", metavar="WHAT", help=f"any of {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--data-dir", action="append", type=Path, default=[], metavar="DIR",
                        help="a folder of downloaded data (a market.data_dir), listed beside the bundled data")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    return parser


@cli_entry(PROG)
def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section {unknown[0]!r}; choose from {', '.join(SECTIONS)}")
    wanted = list(dict.fromkeys(args.sections)) or list(SECTIONS)
    dirs = [d.expanduser() for d in args.data_dir]
    build: dict[str, Callable[[], list[dict[str, Any]]]] = {
        "markets": markets, "data": lambda: data(dirs), "guards": guards, "components": components}
    found = {section: build[section]() for section in wanted}
    if args.format == "json":
        print(json.dumps(found, indent=2, default=str))
    else:
        print("\n\n".join("\n".join(_text(section, rows)) for section, rows in found.items()))
    return 0
