"""Bad input on the command line ends with one line naming the key, never a traceback (issue 7 §5)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from machine.cli_errors import BROKEN_PIPE, INTERRUPTED, USER_ERROR, cli_entry
from tests.support.cli import ratchet

OOPS = "agent.components.kelly.kelly_fraction=${oops}"
# the ``ratchet`` entry point as it reads once wrapped in the shared border (see the report for issue 7 §5)
WRAPPED_RUN = "from machine.cli import _run; from machine.cli_errors import cli_entry; cli_entry('ratchet')(_run)()"


def _python(code: str, *args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, **kwargs)


def _diagram(*overrides: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return _python("from machine.cli import diagram_main; diagram_main()", *overrides, env=env)


def _one_line(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == USER_ERROR, out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    return lines[0]


def test_an_interpolation_typo_in_a_run_is_one_line_naming_the_key_and_the_interpolation(tmp_path):
    line = _one_line(ratchet(OOPS, f"hydra.run.dir={tmp_path}"))
    assert line == ("ratchet: ConfigError: agent.components.kelly.kelly_fraction: cannot resolve '${oops}': "
                    "Interpolation key 'oops' not found")
    assert not (tmp_path / "ledger.duckdb").exists()


def test_an_interpolation_typo_in_the_diagram_is_one_line_even_outside_the_machine():
    line = _one_line(_diagram(OOPS))
    assert line.startswith("ratchet-diagram: ConfigError: agent.components.kelly.kelly_fraction: "
                           "cannot resolve '${oops}'")


def test_a_missing_environment_variable_names_the_key_and_the_variable():
    line = _one_line(_diagram("market.data_dir=${oc.env:RATCHET_TEST_NO_SUCH_VARIABLE}"))
    assert "market.data_dir: cannot resolve '${oc.env:RATCHET_TEST_NO_SUCH_VARIABLE}'" in line
    assert "RATCHET_TEST_NO_SUCH_VARIABLE' not found" in line


def test_an_interpolation_typo_in_the_hydra_node_fails_inside_hydra_and_still_reads_as_one_line(tmp_path):
    out = _python(WRAPPED_RUN, "hydra.run.dir=${oops}", cwd=tmp_path)
    assert _one_line(out) == ("ratchet: ConfigError: hydra.run.dir: cannot resolve '${oops}': "
                              "Interpolation key 'oops' not found")
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_guard_in_the_diagram_is_refused_naming_the_transition():
    line = _one_line(_diagram("agent=futures", "agent.machine.transitions.7.when=histroy_ready"))
    assert line.startswith("ratchet-diagram: ConfigError: agent.machine.transitions.7: transition 'ready' names "
                           "unknown guard 'histroy_ready'; known guards: came_from, ")


def test_a_bad_guard_parameter_in_the_diagram_is_refused_naming_the_transition():
    line = _one_line(_diagram("agent=futures", "agent.machine.transitions.1.when.drawdown_at_least=twelve"))
    assert line == ("ratchet-diagram: ConfigError: agent.machine.transitions.1: transition 'trip_drawdown': "
                    "guard 'drawdown_at_least' needs a number, got 'twelve'")


def test_an_unknown_component_in_the_diagram_is_refused_naming_the_state_and_the_component():
    line = _one_line(_diagram("agent=hybrid", "agent.machine.states.exploring.components=[features,relaxed]"))
    assert line.startswith("ratchet-diagram: ConfigError: agent.machine.states.exploring: unknown component "
                           "'relaxed'; declared components: ")


def test_the_diagram_refuses_a_warmup_that_can_never_end_as_a_run_does(tmp_path):
    never = "agent.machine.transitions.7.when={closed_trades_at_least: 10}"
    diagram = _one_line(_diagram("agent=futures", never))
    run = _one_line(ratchet("agent=futures", never, f"hydra.run.dir={tmp_path}"))
    why = ("ConfigError: agent.machine.states.warmup: the initial state can never be left: "
           "closed_trades_at_least(10) (transition 'ready') needs trades")
    assert diagram.startswith(f"ratchet-diagram: {why}") and run.startswith(f"ratchet: {why}")
    assert not (tmp_path / "ledger.duckdb").exists()


def test_a_machine_warning_is_one_line_and_the_diagram_is_still_drawn():
    out = _diagram("agent=futures", "agent.machine.transitions.7.when=resume_requested")
    assert out.returncode == 0
    assert out.stderr == ("ratchet-diagram: warning: agent.machine.states.warmup: the initial state is left only "
                          "after an operator command\n")
    assert "warmup --> conservative: ready [resume_requested]" in out.stdout


def test_an_unknown_config_option_is_one_line_listing_the_options():
    line = _one_line(_diagram("agent=futurs"))
    assert line == ("ratchet-diagram: ConfigError: In 'config': Could not find 'agent/futurs'; "
                    "available in 'agent': ema_cross, futures, hybrid")


def test_an_override_of_an_unknown_key_is_one_line_saying_how_to_add_it():
    line = _one_line(_diagram("agent.kelly_fraction=0.5"))
    assert line.startswith("ratchet-diagram: ConfigError: Could not override 'agent.kelly_fraction'. "
                           "To append to your config use +agent.kelly_fraction=0.5")


def test_a_malformed_override_is_one_line_naming_it():
    line = _one_line(_diagram("agent.name=${oops"))
    assert line.startswith("ratchet-diagram: ConfigError: override 'agent.name=${oops': ")


def test_hydra_full_error_still_shows_the_whole_traceback_to_whoever_asks_for_it():
    out = _diagram("agent=futurs", env={"HYDRA_FULL_ERROR": "1"})
    assert out.returncode != 0
    assert "Traceback" in out.stderr and "MissingConfigException" in out.stderr


def test_a_reader_that_stops_early_ends_the_diagram_quietly():
    proc = subprocess.Popen([sys.executable, "-c", "from machine.cli import diagram_main; diagram_main()",
                             "agent=futures"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # like `| head -0`: the reader is gone before the diagram is written
    stderr = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait() == BROKEN_PIPE
    assert stderr == ""


def test_ctrl_c_ends_with_one_line_and_exit_130(capsys):
    @cli_entry("ratchet-test")
    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as stop:
        interrupted()
    assert stop.value.code == INTERRUPTED
    assert capsys.readouterr().err == "ratchet-test: interrupted\n"


def test_the_border_leaves_hydra_full_error_as_it_found_it(monkeypatch):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    seen = []

    @cli_entry("ratchet-test")
    def entry() -> int:
        seen.append(os.environ.get("HYDRA_FULL_ERROR"))
        return 7

    assert entry() == 7
    assert seen == ["1"] and "HYDRA_FULL_ERROR" not in os.environ
