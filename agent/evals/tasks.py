"""Task files: a TOML file holding the prompt, the run's limits and the acceptance checks.

A task file looks like this; check paths are relative to the task file's folder:

    name = "blackjack"
    prompt = "Build ..."
    max_steps = 30          # optional, default DEFAULT_MAX_STEPS
    max_seconds = 1800      # optional, default DEFAULT_MAX_SECONDS
    replay = "replay.jsonl" # optional: replies for --engine scripted when no --script is given

    [[checks]]
    kind = "pytest"         # run a self-contained pytest file against the workspace
    path = "checks/test_logic.py"

    [[checks]]
    kind = "page"           # open a workspace page in headless Chromium, run check(page) from a script
    page = "index.html"
    script = "checks/page_check.py"

    [[checks]]
    kind = "command"        # run a shell command in the workspace and compare its exit code and output
    command = "python wordfreq.py -n 3"
    stdin = "the cat the dog"
    exit_code = 0
    stdout = "the 2\\ncat 1\\ndog 1"
    stdout_contains = ["the 2"]

Every check takes an optional `name` (default: its kind, numbered when repeated) and `timeout` in seconds.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import UsageError

TASK_FILE = "task.toml"
DEFAULT_MAX_STEPS = 30
DEFAULT_MAX_SECONDS = 1800.0
DEFAULT_CHECK_TIMEOUT_SECONDS = 120.0
DEFAULT_PAGE_SEED = 1


@dataclass(frozen=True)
class PytestCheck:
    """A pytest file run with the workspace as working folder and first on the import path."""

    name: str
    path: Path
    timeout: float = DEFAULT_CHECK_TIMEOUT_SECONDS
    kind: str = field(default="pytest", init=False)


@dataclass(frozen=True)
class PageCheck:
    """A workspace page opened in headless Chromium; `script` defines check(page) and raises AssertionError.

    `seed` seeds the page's Math.random so that a given page deals the same cards on every run.
    """

    name: str
    page: str
    script: Path
    seed: int = DEFAULT_PAGE_SEED
    timeout: float = DEFAULT_CHECK_TIMEOUT_SECONDS
    kind: str = field(default="page", init=False)


@dataclass(frozen=True)
class CommandCheck:
    """A shell command run in the workspace. `stdout` must match exactly, up to trailing whitespace."""

    name: str
    command: str
    stdin: str = ""
    exit_code: int = 0
    stdout: str | None = None
    stdout_contains: tuple[str, ...] = ()
    timeout: float = DEFAULT_CHECK_TIMEOUT_SECONDS
    kind: str = field(default="command", init=False)


Check = PytestCheck | PageCheck | CommandCheck


@dataclass(frozen=True)
class CheckFailure:
    """A failed check's message, and how much of the check passed (0 to 1) when the check can tell."""

    message: str
    progress: float = 0.0


@dataclass(frozen=True)
class Task:
    """One eval task: what the user types, the limits of the run and the checks that decide success."""

    name: str
    prompt: str
    checks: tuple[Check, ...]
    folder: Path
    max_steps: int = DEFAULT_MAX_STEPS
    max_seconds: float = DEFAULT_MAX_SECONDS
    # A scripted-engine file of replies that builds this task; `--engine scripted` uses it when no --script is given.
    replay: Path | None = None


def load_tasks(path: Path | str) -> list[Task]:
    """Load a task file, a folder holding task.toml, or every task.toml below a folder, sorted by path."""
    path = Path(path)
    if path.is_file():
        return [load_task(path)]
    if (path / TASK_FILE).is_file():
        return [load_task(path / TASK_FILE)]
    if path.is_dir():
        files = sorted(path.rglob(TASK_FILE))
        if files:
            return [load_task(file) for file in files]
        raise UsageError(f"{path}: no {TASK_FILE} found in this folder or below it.")
    raise UsageError(f"{path}: no such task file or folder.")


def load_task(path: Path | str) -> Task:
    """Read and validate one task file, raising UsageError that names the file and the invalid key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{path}: invalid TOML: {error}.") from None
    except OSError as error:
        raise UsageError(f"{path}: cannot be read: {error.strerror}.") from None

    _reject_unknown(path, "task", data, {"name", "prompt", "max_steps", "max_seconds", "checks", "replay"})
    folder = path.parent.resolve()
    prompt = _require(path, data, "prompt", str).strip()
    if not prompt:
        raise UsageError(f"{path}: 'prompt' is empty. Write the task as a user would type it.")
    raw_checks = data.get("checks", [])
    if not isinstance(raw_checks, list) or not raw_checks:
        raise UsageError(f"{path}: a task needs at least one [[checks]] table.")

    return Task(
        name=str(data.get("name") or folder.name),
        prompt=prompt,
        checks=_parse_checks(path, folder, raw_checks),
        folder=folder,
        max_steps=_optional(path, data, "max_steps", int, DEFAULT_MAX_STEPS),
        max_seconds=float(_optional(path, data, "max_seconds", (int, float), DEFAULT_MAX_SECONDS)),
        replay=_replay_path(path, folder, data),
    )


def _replay_path(path: Path, folder: Path, data: dict[str, Any]) -> Path | None:
    if "replay" not in data:
        return None
    replay = folder / _require(path, data, "replay", str)
    if not replay.is_file():
        raise UsageError(f"{path}: 'replay' names {replay}, which does not exist.")
    return replay


def _parse_checks(path: Path, folder: Path, raw_checks: list[Any]) -> tuple[Check, ...]:
    checks = []
    for index, raw in enumerate(raw_checks, start=1):
        if not isinstance(raw, dict):
            raise UsageError(f"{path}: check {index} must be a table with a 'kind' key.")
        kind = raw.get("kind")
        parser = _CHECK_PARSERS.get(kind)
        if parser is None:
            kinds = ", ".join(sorted(_CHECK_PARSERS))
            raise UsageError(f"{path}: check {index} has kind {kind!r}; use one of {kinds}.")
        checks.append(parser(path, folder, raw, str(raw.get("name") or f"{kind}-{index}")))

    names = [check.name for check in checks]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise UsageError(f"{path}: check names {repeated} appear more than once; give each check its own name.")
    return tuple(checks)


def _parse_pytest(path: Path, folder: Path, raw: dict[str, Any], name: str) -> PytestCheck:
    _reject_unknown(path, f"check {name!r}", raw, {"kind", "name", "path", "timeout"})
    return PytestCheck(name, _task_file(path, folder, raw, "path"), _timeout(path, raw))


def _parse_page(path: Path, folder: Path, raw: dict[str, Any], name: str) -> PageCheck:
    _reject_unknown(path, f"check {name!r}", raw, {"kind", "name", "page", "script", "seed", "timeout"})
    return PageCheck(
        name,
        page=_require(path, raw, "page", str),
        script=_task_file(path, folder, raw, "script"),
        seed=_optional(path, raw, "seed", int, DEFAULT_PAGE_SEED),
        timeout=_timeout(path, raw),
    )


def _parse_command(path: Path, folder: Path, raw: dict[str, Any], name: str) -> CommandCheck:
    _reject_unknown(path, f"check {name!r}", raw, {"kind", "name", "command", "stdin", "exit_code", "stdout", "stdout_contains", "timeout"})
    contains = _optional(path, raw, "stdout_contains", list, [])
    if not all(isinstance(item, str) for item in contains):
        raise UsageError(f"{path}: check {name!r}: 'stdout_contains' must be a list of strings.")
    return CommandCheck(
        name,
        command=_require(path, raw, "command", str),
        stdin=_optional(path, raw, "stdin", str, ""),
        exit_code=_optional(path, raw, "exit_code", int, 0),
        stdout=_optional(path, raw, "stdout", str, None),
        stdout_contains=tuple(contains),
        timeout=_timeout(path, raw),
    )


_CHECK_PARSERS = {"pytest": _parse_pytest, "page": _parse_page, "command": _parse_command}


def _task_file(path: Path, folder: Path, raw: dict[str, Any], key: str) -> Path:
    target = (folder / _require(path, raw, key, str)).resolve()
    if not target.is_file():
        raise UsageError(f"{path}: {key} {raw[key]!r} was not found next to the task file ({target}).")
    return target


def _timeout(path: Path, raw: dict[str, Any]) -> float:
    timeout = float(_optional(path, raw, "timeout", (int, float), DEFAULT_CHECK_TIMEOUT_SECONDS))
    if timeout <= 0:
        raise UsageError(f"{path}: 'timeout' must be a positive number of seconds, got {timeout}.")
    return timeout


def _require(path: Path, data: dict[str, Any], key: str, kind: type) -> Any:
    if key not in data:
        raise UsageError(f"{path}: the key {key!r} is missing.")
    return _optional(path, data, key, kind, None)


def _optional(path: Path, data: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = data.get(key, default)
    if value is default:
        return value
    if isinstance(value, bool) or not isinstance(value, kind):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise UsageError(f"{path}: {key!r} must be {expected}, got {value!r}.")
    return value


def _reject_unknown(path: Path, where: str, data: dict[str, Any], known: set[str]) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise UsageError(f"{path}: unknown keys {unknown} in {where}; known keys are {sorted(known)}.")
