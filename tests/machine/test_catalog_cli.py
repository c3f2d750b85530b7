"""`ratchet-catalog` lists what a run can be made of: market presets, the data on this machine with its
dates, the guards and the components, each as the code that runs them defines it."""

from __future__ import annotations

import importlib
import json
import pkgutil
import shutil
import subprocess
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml

import components
from components.market.catalog import BUNDLED_DATA_DIR
from core.component import Component
from machine.catalog_cli import main
from machine.guards import GUARDS, BoundGuard
from machine.spec import GuardCall

CONF = Path(__file__).resolve().parents[2] / "conf"


def _catalog(capsys, *args: str) -> dict:
    assert main([*args, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def test_markets_are_the_market_presets_with_their_symbols(capsys):
    listed = {m["name"]: m for m in _catalog(capsys, "markets")["markets"]}

    presets = {p.stem: yaml.safe_load(p.read_text()) for p in CONF.glob("market/*.yaml")}
    assert set(listed) == set(presets)
    for name, preset in presets.items():
        assert (listed[name]["kind"], listed[name]["timeframe"], listed[name]["symbols"]) == (
            preset["kind"], preset["timeframe"], preset["symbols"])


def test_data_lists_every_bundled_file_with_its_first_and_last_bar(capsys):
    listed = _catalog(capsys, "data")["data"]

    files = sorted(BUNDLED_DATA_DIR.glob("*.parquet"))
    assert sorted(d["file"] for d in listed) == [p.name for p in files]
    for entry in listed:
        ts = pq.read_table(BUNDLED_DATA_DIR / entry["file"], columns=["ts"])["ts"]
        bounds = pc.min_max(ts).as_py()
        assert (entry["source"], entry["first"], entry["last"], entry["rows"]) == (
            "bundled", _utc(bounds["min"]), _utc(bounds["max"]), len(ts))


def test_downloaded_data_is_listed_beside_the_bundled_with_its_own_dates(capsys, tmp_path):
    source = BUNDLED_DATA_DIR / "binance_spot_SOL-USDT_1h.parquet"
    table = pq.read_table(source)
    pq.write_table(table.slice(100, 48), tmp_path / "binance_spot_SOL-USDT_1h.parquet")
    (tmp_path / "notes.txt").write_text("not market data")

    listed = _catalog(capsys, "data", "--data-dir", str(tmp_path))["data"]

    [downloaded] = [d for d in listed if d["source"] == str(tmp_path)]
    ts = table["ts"].to_pylist()
    assert (downloaded["symbol"], downloaded["timeframe"], downloaded["series"]) == ("SOL/USDT", "1h", "candles")
    assert (downloaded["first"], downloaded["last"], downloaded["rows"]) == (_utc(ts[100]), _utc(ts[147]), 48)


def test_a_missing_data_dir_is_one_line_naming_it(capsys, tmp_path):
    with pytest.raises(SystemExit) as done:
        main(["data", "--data-dir", str(tmp_path / "nowhere")])

    err = capsys.readouterr().err
    assert done.value.code == 2
    assert err == f"ratchet-catalog: DataError: --data-dir {tmp_path / 'nowhere'}: no such folder\n"


def test_every_guard_is_listed_and_its_example_is_accepted_by_the_guard_itself(capsys):
    listed = {g["name"]: g for g in _catalog(capsys, "guards")["guards"]}

    assert set(listed) == set(GUARDS)
    for name, guard in listed.items():
        when = yaml.safe_load(guard["when"].replace("<", "'<").replace(">", ">'")) if "{" in guard["when"] else name
        param = when[name] if isinstance(when, dict) else None
        if isinstance(param, dict):  # {start_minute: <number>, end_minute: <number>}: fill in numbers it accepts
            param = next(p for p in ({k: v for k, v in zip(param, values, strict=True)} for values in
                                     ((0, 1), (2, 1), (1, 2), (10, 20))) if _accepts(name, p))
        elif isinstance(param, str) and "a number" in param:
            param = 1
        assert _accepts(name, param), (name, guard["when"])
        assert guard["records"], name  # what it stores with the transition it fires


def _accepts(name: str, param: object) -> bool:
    try:
        BoundGuard(GuardCall(name=name, param=param))
    except Exception:
        return False
    return True


def _all_components() -> set[type]:
    for module in pkgutil.walk_packages(components.__path__, "components."):
        importlib.import_module(module.name)
    found, todo = set(), list(Component.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls.__module__.startswith("components.") and hasattr(cls, "stage") and not cls.__name__.startswith("_"):
            found.add(cls)
    return found


def test_every_component_is_listed_with_its_configs_fields_and_defaults(capsys):
    listed = {c["target"]: c for c in _catalog(capsys, "components")["components"]}

    classes = _all_components()
    assert set(listed) == {f"{c.__module__}.{c.__name__}" for c in classes}
    for cls in classes:
        entry = listed[f"{cls.__module__}.{cls.__name__}"]
        fields = {f["key"]: f for f in entry["fields"]}
        assert entry["stage"] == cls.stage.name.lower()
        for name, info in cls.Config.model_fields.items():
            nested = [k for k in fields if k.startswith(f"{name}.")]
            if nested:
                continue  # a nested Config shows its own fields
            if info.is_required():
                assert fields[name]["required"], (cls, name)
            else:
                default = info.get_default(call_default_factory=True)
                shown = fields[name]["default"]
                assert shown == (default.model_dump(mode="json") if hasattr(default, "model_dump")
                                 else json.loads(json.dumps(default, default=str))), (cls, name)


def test_components_say_where_the_bundled_agents_declare_them(capsys):
    listed = {c["target"]: c for c in _catalog(capsys, "components")["components"]}

    futures = yaml.safe_load((CONF / "agent" / "futures.yaml").read_text())["components"]
    for name, decl in futures.items():
        assert f"futures.{name}" in listed[decl["_target_"]]["used_as"]


def test_the_text_shows_the_fields_comments_and_bounds(capsys):
    assert main(["components"]) == 0

    text = capsys.readouterr().out
    assert "components.sizing.KellySizer   stage sizing   used as futures.kelly, hybrid.kelly" in text
    assert "      kelly_fraction: float = 0.5 (> 0.0, <= 1.0)  # share of full Kelly f*" in text


@pytest.mark.parametrize("sections", [["markets", "data", "guards"], ["guards"]])
def test_listing_all_but_the_components_does_not_import_torch(sections):
    code = ("import sys; from machine.catalog_cli import main; main(sys.argv[1:]); "
            "print('torch' in sys.modules, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code, *sections], capture_output=True, text=True)

    assert done.returncode == 0 and done.stderr.strip() == "False"


def test_an_unknown_section_is_refused_naming_the_sections(capsys):
    with pytest.raises(SystemExit) as done:
        main(["symbols"])

    assert done.value.code == 2
    assert "unknown section 'symbols'; choose from markets, data, guards, components" in capsys.readouterr().err


def test_the_console_script_is_declared_and_installed():
    scripts = tomllib.loads((CONF.parent / "pyproject.toml").read_text())["project"]["scripts"]

    assert scripts["ratchet-catalog"] == "machine.catalog_cli:main"
    assert shutil.which("ratchet-catalog", path=str(Path(sys.executable).parent)) is not None
