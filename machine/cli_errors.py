"""One border where command-line entry points turn errors into one line on stderr.

    user error (our RatchetError, a Hydra override or composition error, an OmegaConf
    interpolation that cannot be resolved)   ->  "prog: Kind: key: what is wrong", exit 2
    Ctrl-C                                   ->  "prog: interrupted", exit 130
    stdout closed early (``| head``)         ->  silence, exit 141 (as if killed by SIGPIPE)
    anything else (a bug)                    ->  the traceback, as Python prints it

How errors reach it under Hydra. Hydra catches what composition raises (unknown group option,
bad override, an interpolation in the ``hydra`` node such as ``hydra.run.dir=${oops}``) and
prints its own report with exit 1; ``cli_entry`` sets ``HYDRA_FULL_ERROR=1`` for the call, so
Hydra re-raises them to it instead. Interpolations in the task config (``agent...=${oops}``) are
only resolved by the task (``resolve_config``), which turns them into a ConfigError. An exception
leaving a task function makes Hydra write one more line ("Error executing job ..."), so task
functions are decorated too (``hydra_task``, beneath ``@hydra.main``) and end user errors and a
closed stdout there. A user who sets ``HYDRA_FULL_ERROR=1`` gets Hydra's tracebacks unchanged.

    @cli_entry("ratchet-diagram")                 @hydra.main(...)
    def diagram_main() -> None:                   @hydra_task("ratchet-diagram")
        _diagram()                                def _diagram(cfg: DictConfig) -> None: ...
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any, NoReturn, TextIO, TypeVar

from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf import Container, DictConfig, Node, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from core.errors import ConfigError, RatchetError
from machine.soundness import MachineWarning

F = TypeVar("F", bound=Callable[..., Any])

USER_ERROR = 2
INTERRUPTED = 130
BROKEN_PIPE = 141
_FULL_ERROR = "HYDRA_FULL_ERROR"


USER_ERRORS = (RatchetError, HydraException, OmegaConfBaseException)


def cli_entry(prog: str) -> Callable[[F], F]:
    """Decorate a console-script entry point: user errors, Ctrl-C and a closed stdout end as one line."""

    def decorate(entry: F) -> F:
        @functools.wraps(entry)
        def run(*args: Any, **kwargs: Any) -> Any:
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning(prog, warnings.showwarning)
                if os.environ.get(_FULL_ERROR) == "1":
                    return entry(*args, **kwargs)  # the user asked Hydra for full tracebacks
                os.environ[_FULL_ERROR] = "1"  # Hydra re-raises instead of printing its own report
                try:
                    result = entry(*args, **kwargs)
                    sys.stdout.flush()  # a closed pipe fails here, inside the border, not at exit
                    return result
                except KeyboardInterrupt:
                    _say(prog, "interrupted")
                    sys.exit(INTERRUPTED)
                except (BrokenPipeError, *USER_ERRORS) as exc:
                    _end(prog, exc)
                finally:
                    del os.environ[_FULL_ERROR]

        return run  # type: ignore[return-value]

    return decorate


def hydra_task(prog: str) -> Callable[[F], F]:
    """Decorate a task function, beneath ``@hydra.main``: Hydra adds a line of its own to any exception
    leaving a task, so user errors and a closed stdout end here, as ``cli_entry`` would end them."""

    def decorate(task: F) -> F:
        @functools.wraps(task)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return task(*args, **kwargs)
            except (BrokenPipeError, *USER_ERRORS) as exc:
                _end(prog, exc)

        return run  # type: ignore[return-value]

    return decorate


def _end(prog: str, exc: BaseException) -> NoReturn:
    if isinstance(exc, BrokenPipeError):
        _silence_stdout()
        sys.exit(BROKEN_PIPE)
    _say(prog, describe(exc))
    sys.exit(USER_ERROR)


def resolve_config(cfg: DictConfig) -> dict[str, Any]:
    """``OmegaConf.to_container(cfg, resolve=True)``; an unresolvable value is a ConfigError naming its key."""
    try:
        data = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:
        raise ConfigError(_omegaconf(exc)) from None
    assert isinstance(data, dict)
    return data  # type: ignore[return-value]


def describe(exc: BaseException) -> str:
    """A user error as one line (RatchetErrors keep their own lines): ``Kind: key: what is wrong``."""
    if isinstance(exc, RatchetError):
        return f"{type(exc).__name__}: {exc}"
    if isinstance(exc, OmegaConfBaseException):
        return f"ConfigError: {_omegaconf(exc)}"
    if isinstance(exc, OverrideParseException):
        return f"ConfigError: override {exc.override!r}: {_first_line(exc.message)}"
    if isinstance(exc, MissingConfigException):
        return f"ConfigError: {_missing_config(str(exc))}"
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    if isinstance(exc.__cause__, OmegaConfBaseException):
        text += f" ({_first_line(exc.__cause__.msg or str(exc.__cause__))})"
    return f"ConfigError: {text}"


def _omegaconf(exc: OmegaConfBaseException) -> str:
    """``full_key: cannot resolve '${oops}': Interpolation key 'oops' not found``."""
    reason = _first_line(exc.msg or str(exc))
    raw = _unresolved(exc)
    key = exc.full_key or "config"
    if isinstance(raw, str) and "${" in raw:
        return f"{key}: cannot resolve {raw!r}: {reason}"
    return f"{key}: {reason}"


def _unresolved(exc: OmegaConfBaseException) -> Any:
    """The value as written (``'${oops}'``): the failing node, or found by its key from the node searched."""
    node: Any = exc.child_node
    if node is None and isinstance(exc.parent_node, Container) and isinstance(exc.key, str):
        node = exc.parent_node  # OmegaConf.select (Hydra's run dir) reports the root and a dotted key
        for part in exc.key.split("."):
            node = node._get_node(part) if isinstance(node, DictConfig) else None
    return node._value() if isinstance(node, Node) else None


def _missing_config(text: str) -> str:
    """Hydra's 'Could not find' message, its option list on the same line, its search path dropped."""
    text = text.split("Config search path:")[0]
    head, _, options = text.partition("Available options in")
    line = " ".join(part.strip() for part in head.splitlines() if part.strip())
    if options:
        group, _, names = options.partition(":")
        line += f"; available in{group}: {', '.join(n.strip() for n in names.split() if n.strip())}"
    return line


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def _say(prog: str, message: str) -> None:
    with contextlib.suppress(BrokenPipeError, ValueError):  # stderr itself is gone: nothing left to tell
        print(f"{prog}: {message}", file=sys.stderr, flush=True)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real stdout (an in-process test): nothing to redirect
        pass
    finally:
        os.close(devnull)


def _show_warning(prog: str, default: Callable[..., None]) -> Callable[..., None]:
    """Machine warnings as one line on stderr; every other warning as Python prints it."""

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: TextIO | None = None, line: str | None = None) -> None:
        if issubclass(category, MachineWarning):
            _say(prog, f"warning: {message}")
        else:
            default(message, category, filename, lineno, file, line)

    return show
