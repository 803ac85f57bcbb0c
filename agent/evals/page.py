"""The `page` check: open a workspace page in headless Chromium and run the task's page script.

The check runs in a child process, so that a page stuck in an endless loop is killed with its
browser when the check's timeout runs out. The workspace is served by an HTTP server on 127.0.0.1
(a free port, for this check only). The page's Math.random is replaced by a seeded generator before
any page script runs, so a given page deals the same cards on every run. Any console error or
uncaught exception fails the check, and it is reported before the script's own failure because it
is usually the cause.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import importlib.util
import json
import logging
import os
import re
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import agent
from agent.errors import UsageError
from agent.evals.process import run_process
from agent.evals.tasks import CheckFailure, PageCheck

logger = logging.getLogger(__name__)

CHROMIUM_ENV = "GEMMA_AGENT_CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
ACTION_TIMEOUT_MS = 5_000
# A failed page check's progress is n / (n + this), n being the page calls its script made before
# failing. The page's random numbers are seeded, so a page that fails later in the script came closer.
PROGRESS_HALF_CALLS = 20
# The page calls counted for a failed check's progress: those a check script uses to act and to read.
COUNTED_PAGE_METHODS = (
    "click", "dblclick", "fill", "press", "type", "check", "uncheck", "select_option", "dispatch_event",
    "evaluate", "locator", "query_selector", "query_selector_all", "inner_text", "text_content",
    "get_attribute", "is_enabled", "is_disabled", "is_visible", "is_checked", "wait_for_selector",
    "get_by_role", "get_by_text", "get_by_test_id", "reload", "goto",
)
# A source line quoted with an error is cut to this many characters.
MAX_QUOTED_LINE = 120
LOAD_TIMEOUT_MS = 30_000

# mulberry32: a small seeded generator, installed before the page's own scripts run.
SEEDED_RANDOM_SCRIPT = """
(() => {
  let state = %d >>> 0;
  Math.random = function () {
    state = (state + 0x6D2B79F5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
})();
"""


def run_page_check(check: PageCheck, workspace: Path) -> CheckFailure | str | None:
    """Return None when the page loaded cleanly and the script's check(page) passed, else the first problem."""
    if not (workspace / check.page).is_file():
        return f"{check.page} was not found in the workspace."
    find_chromium()
    argv = [sys.executable, "-m", "agent.evals.page", str(workspace), check.page, str(check.script), str(check.seed)]
    result = run_process(argv, workspace, check.timeout, env=_child_environment())
    if result.timed_out:
        return f"the page check did not finish within {check.timeout:g} seconds; the page may be stuck in a loop."

    outcome = _read_outcome(result.output)
    if outcome is None:
        raise RuntimeError(f"the page check process failed without a result: {result.output[-2000:]}")
    if outcome.get("usage_error"):
        raise UsageError(outcome["usage_error"])
    if outcome.get("failure") is None:
        return None
    calls = int(outcome.get("calls") or 0)
    return CheckFailure(outcome["failure"], progress=calls / (calls + PROGRESS_HALF_CALLS))


def check_page(workspace: Path, page_path: str, script_path: Path, seed: int) -> tuple[str | None, int]:
    """Open the page in Chromium and run the script's check(page), in the child process.

    Returns the failure (None when the check passed) and how many page calls the script made.
    """
    script = _load_script(script_path)
    sync_playwright, playwright_error = _import_playwright()

    browser_errors: list[str] = []
    with _serve(workspace) as base_url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=find_chromium(), args=CHROMIUM_ARGS, headless=True)
        calls = [0]
        try:
            url = f"{base_url}/{page_path}"
            page = _open_page(browser, url, seed, browser_errors, _PageSource(workspace, page_path, url))
            _count_calls(page, calls)
            failure = _run_script(script, page, playwright_error)
        except playwright_error as error:
            failure = f"the browser could not open {page_path}: {_first_line(str(error))}"
        finally:
            browser.close()

    if browser_errors:
        return browser_errors[0], calls[0]
    return failure, calls[0]


def _count_calls(page: Any, calls: list[int]) -> None:
    """Count in `calls[0]` the calls a check script makes on the page, keeping the page object itself
    (Playwright's expect() accepts only a real Page)."""
    for name in COUNTED_PAGE_METHODS:
        method = getattr(page, name, None)
        if callable(method):
            setattr(page, name, _counted(method, calls))


def _counted(method: Any, calls: list[int]) -> Any:
    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return method(*args, **kwargs)

    return counted


def main(argv: list[str]) -> None:
    """Child process entry: print one JSON line with the failure (null when the check passed)."""
    workspace, page_path, script_path, seed = argv
    try:
        failure, calls = check_page(Path(workspace), page_path, Path(script_path), int(seed))
        outcome = {"failure": failure, "calls": calls}
    except UsageError as error:
        outcome = {"usage_error": str(error)}
    except Exception as error:
        # A crash of the check itself (its script, the browser) fails the check with its cause, never silently.
        outcome = {"failure": f"the page check itself failed: {type(error).__name__}: {_first_line(str(error))}"}
    print(json.dumps(outcome))


def _child_environment() -> dict[str, str]:
    # The child imports this package, so it gets the folder that contains it first on its import path.
    root = str(Path(agent.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH", "")]))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _read_outcome(output: str) -> dict[str, Any] | None:
    lines = [line for line in output.splitlines() if line.strip()]
    if not lines:
        return None
    try:
        outcome = json.loads(lines[-1])
    except json.JSONDecodeError:
        return None
    return outcome if isinstance(outcome, dict) else None


def find_chromium() -> str:
    """Return the Chromium executable: $GEMMA_AGENT_CHROMIUM, else the first browser found on PATH."""
    configured = os.environ.get(CHROMIUM_ENV)
    if configured:
        return configured
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise UsageError(
        f"Page checks need Chromium, and none was found on PATH. Install it (apt-get install chromium) "
        f"or set {CHROMIUM_ENV} to its executable."
    )


def _import_playwright() -> tuple[Any, type[Exception]]:
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        raise UsageError("Page checks need Playwright: pip install 'gemma-agent[browser]'.") from None
    return sync_playwright, Error


class _PageSource:
    """The page's own lines, to quote the line an error happened on."""

    def __init__(self, workspace: Path, page_path: str, url: str):
        self.page_path = page_path
        self.url = url
        self.location = re.compile(rf"{re.escape(url)}:(\d+)")
        try:
            self.lines = (workspace / page_path).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            self.lines = []

    def where(self, line_number: int | None) -> str:
        """Return " (page line N: <code>)" for a line of the page, or "" when the line is unknown."""
        if not line_number or line_number > len(self.lines):
            return ""
        code = self.lines[line_number - 1].strip()[:MAX_QUOTED_LINE]
        return f" ({self.page_path} line {line_number}: {code})"

    def where_in_stack(self, stack: str) -> str:
        match = self.location.search(stack or "")
        return self.where(int(match.group(1))) if match else ""


def _open_page(browser: Any, url: str, seed: int, browser_errors: list[str], source: _PageSource) -> Any:
    page = browser.new_page()
    page.set_default_timeout(ACTION_TIMEOUT_MS)
    page.on("console", lambda message: _note_console(message, browser_errors, source))
    page.on("pageerror", lambda error: _note_page_error(error, browser_errors, source))
    page.add_init_script(SEEDED_RANDOM_SCRIPT % seed)
    page.goto(url, wait_until="load", timeout=LOAD_TIMEOUT_MS)
    return page


def _note_page_error(error: Any, browser_errors: list[str], source: _PageSource) -> None:
    where = source.where_in_stack(getattr(error, "stack", "") or "")
    browser_errors.append(f"JavaScript error on the page: {_first_line(str(error))}{where}")


def _note_console(message: Any, browser_errors: list[str], source: _PageSource) -> None:
    if message.type != "error":
        return
    location = message.location or {}
    where = ""
    if location.get("url") == source.url:
        # Playwright counts lines from 0 here.
        where = source.where(int(location.get("lineNumber", -1)) + 1)
    browser_errors.append(f"the browser console shows an error: {_first_line(message.text)}{where}")


def _run_script(script: ModuleType, page: Any, playwright_error: type[Exception]) -> str | None:
    try:
        script.check(page)
    except AssertionError as error:
        return _first_line(str(error)) or "the page check failed without a message"
    except playwright_error as error:
        return f"the browser action failed: {_first_line(str(error))}"
    return None


def _load_script(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"gemma_agent_page_check_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise UsageError(f"{path}: cannot be loaded as a Python page script.")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "check", None)):
        raise UsageError(f"{path}: a page script must define check(page).")
    return module


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the workspace without logging each request, and returns 204 for a missing favicon."""

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("page server: " + format, *args)

    def do_GET(self) -> None:
        if self.path == "/favicon.ico" and not Path(self.translate_path(self.path)).is_file():
            # Browsers ask for it unprompted; a 404 would show up as a console error the page cannot fix.
            self.send_response(204)
            self.end_headers()
            return
        super().do_GET()


@contextlib.contextmanager
def _serve(folder: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="page-check-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


if __name__ == "__main__":
    main(sys.argv[1:])
