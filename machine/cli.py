"""Hydra entry points: ``ratchet`` (replay a run) and ``ratchet-diagram`` (print the machine)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from components.notify import without_secrets
from core.errors import LedgerError
from ledger.views import VIEW_NAMES
from machine.builder import mermaid
from machine.cli_errors import cli_entry, hydra_task, resolve_config
from machine.config import load_agent_config, load_run_config
from machine.progress import StepProgress
from machine.stopping import StopRequest

CONFIG_PATH = "pkg://conf"

# `--help` opens with what the commands are; Hydra's own part (the groups, the composed config)
# follows. `string.Template` fills $APP_CONFIG_GROUPS and $CONFIG, so a literal dollar is `$$`.
_RUN_HELP = """ratchet: replay autonomous crypto trading agents declared as state machines. Every order, fill,
trade, funding payment, transition and learning adjustment lands in the run folder's ledger.duckdb
(runs/<date>/<time>_<agent>/, with summary.json and report.html once the run ends).

== Commands ==
  ratchet [OVERRIDE ...]              run one agent on one market (replay; mode=paper polls live bars)
  ratchet -m KEY=A,B [OVERRIDE ...]   a sweep (Hydra multirun): one run folder per combination
  ratchet-diagram [OVERRIDE ...]      the agent's state machine as a mermaid diagram
  ratchet-ledger RUN [RUN ...]        named views and SQL over a run's ledger, or a whole sweep's
  ratchet-report RUN [RUN ...]        a run's HTML report; several runs: a comparison page
  ratchet-dashboard [--runs DIR]      a read-only web dashboard over the runs folder
  ratchet-control RUN status|resume   what a run is doing; lift a halt
  ratchet-download [OVERRIDE ...]     Binance candles, mark prices and funding into market.data_dir
  ratchet-optimise [OVERRIDE ...]     a study of the agent's optimise block; the best set as overrides
  ratchet-ablate [OVERRIDE ...]       which learning loops help: each switched off, with intervals and placebos
  ratchet-catalog [WHAT]              the markets, local data and its dates, guards and components

== Examples ==
  ratchet experiment=futures market.start=2023-01-01 market.end=2023-04-01
  ratchet agent=futures agent.components.fixed_risk.risk=0.002 hydra.run.dir=runs/bear
  ratchet experiment=ema_cross_baseline          the baseline other backtesters can reproduce
  ratchet -m experiment=futures,hybrid           what `make run` does
  ratchet -m agent=futures agent.components.kelly.kelly_fraction=0.25,0.5
  ratchet-ledger runs/multirun/<date>/<time> --view summary    a row per run, a column per swept value

== Views ==
  ratchet-ledger RUN --list-views lists the named views, each with what it answers:
VIEW_LIST

== Configuration groups ==
Compose your configuration from those groups (group=option); ratchet-catalog describes them.

$APP_CONFIG_GROUPS

== Config ==
Override anything in the config (foo.bar=value)

$CONFIG

${hydra.help.footer}"""

_DIAGRAM_HELP = """ratchet-diagram: draws the composed agent's state machine as mermaid text (stateDiagram-v2) on
stdout: every state, and every transition labelled with its trigger and the guards that fire it,
rendered from the same declaration (conf/agent/*.yaml) a run executes and validated as a run
validates it; the initial state is marked active. No run folder is made. Paste the text into any
mermaid viewer (mermaid.live, GitHub markdown).

== Examples ==
  ratchet-diagram agent=futures
  ratchet-diagram agent=hybrid > hybrid.mmd
  ratchet-diagram agent=futures agent.machine.transitions.1.when.drawdown_at_least=0.08

== Configuration groups ==
$APP_CONFIG_GROUPS

${hydra.help.footer}"""


_VIEW_LIST = textwrap.fill(", ".join(VIEW_NAMES), width=100, initial_indent="  ", subsequent_indent="  ")


def _register_help() -> None:
    """Our help texts as options of Hydra's `hydra/help` group (selected only when help is asked for)."""
    store = ConfigStore.instance()
    for name, template in (("ratchet", _RUN_HELP.replace("VIEW_LIST", _VIEW_LIST)),
                           ("ratchet_diagram", _DIAGRAM_HELP)):
        store.store(group="hydra/help", name=name, provider="ratchet",
                    node={"app_name": name.replace("_", "-"), "header": "", "template": template,
                          "footer": "Powered by Hydra (https://hydra.cc); --hydra-help shows Hydra's own options"})


def _asks_for_help(help_name: str) -> None:
    if any(arg in ("--help", "-h") for arg in sys.argv[1:]):
        _register_help()
        sys.argv.insert(1, f"hydra/help={help_name}")  # before any flag: argparse takes one run of overrides


def _plain(cfg: DictConfig) -> dict[str, Any]:
    """The task config resolved; an interpolation that cannot be resolved is a ConfigError naming its key."""
    data = resolve_config(cfg)
    data.pop("hydra", None)
    return data


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="config")
@hydra_task("ratchet")
def _run(cfg: DictConfig) -> None:
    from machine.engine import run_replay
    from machine.report import render, summarize, write_summary

    data = _plain(cfg)
    run_cfg = load_run_config(data)
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    with StopRequest() as stop, StepProgress(f"replay {run_cfg.agent.name}") as progress:
        result = run_replay(run_cfg, run_dir, config_dump=without_secrets(data), stopping=stop.requested,
                            on_claimed=lambda: _save_hydra_config(cfg, run_dir), progress=progress)
    summary = summarize(result.ledger_path)
    summary["bars"] = result.bars
    summary["seconds"] = round(result.seconds, 2)
    write_summary(summary, run_dir)
    resumed = f", resumed after bar {result.resumed_from_bar}" if result.resumed_from_bar else ""
    print(f"replayed {result.bars} bars in {result.seconds:.1f}s{resumed}")
    if result.stopped:
        print(f"stopped on request after {result.bars} bars, everything committed; run the same command "
              f"with hydra.run.dir={run_dir} to go on")
    print(render(summary, run_dir))
    if run_cfg.report:
        _write_report(run_dir)


def _write_report(run_dir: Path) -> None:
    """The run's HTML report beside its ledger (~1.5 s for the full futures replay); its path is printed."""
    from ledger.report.page import write_report

    try:
        print(f"report:     {write_report(run_dir)}")
    except LedgerError as exc:  # the run and its summary stand; say why there is no report
        print(f"report:     not written ({exc}); try ratchet-report {run_dir}")


def _save_hydra_config(cfg: DictConfig, run_dir: Path) -> None:
    """What Hydra saves in ``.hydra/``, written once the folder is claimed, and only once."""
    folder = run_dir / ".hydra"
    if (folder / "config.yaml").exists():
        return  # a resumed run: the first start's files describe the ledger
    folder.mkdir(parents=True, exist_ok=True)
    hydra_cfg = HydraConfig.get()
    OmegaConf.save(cfg, folder / "config.yaml")  # unresolved: ${oc.env:...} secrets stay references
    OmegaConf.save(OmegaConf.create({"hydra": hydra_cfg}), folder / "hydra.yaml")
    OmegaConf.save(hydra_cfg.overrides.task, folder / "overrides.yaml")


@cli_entry("ratchet")
def main() -> None:
    """``ratchet [OVERRIDE ...]``; ``ratchet --help`` says what the commands are before Hydra's help."""
    _asks_for_help("ratchet")
    _run()


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="config")
@hydra_task("ratchet-diagram")
def _diagram(cfg: DictConfig) -> None:
    """The whole config resolved and the agent validated as a run validates it, then drawn."""
    agent = load_agent_config(_plain(cfg))
    print(mermaid(agent.machine, title=agent.name), end="")


@cli_entry("ratchet-diagram")
def diagram_main() -> None:
    """``ratchet-diagram agent=futures``: the machine as mermaid text; no run folder is made."""
    _asks_for_help("ratchet_diagram")
    sys.argv[1:1] = ["hydra.run.dir=.", "hydra.output_subdir=null", "hydra/job_logging=disabled",
                     "hydra/hydra_logging=disabled"]  # before any flag (--help), as argparse wants them
    _diagram()
