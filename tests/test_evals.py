"""Task files, the check runners, the eval runner and its reports."""

from __future__ import annotations

import io
import json
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console

from agent.config import Settings
from agent.errors import EngineError, ScriptExhausted, UsageError
from agent.evals.checks import run_check, run_checks
from agent.evals.metrics import RunMetrics
from agent.evals.report import pass_at_k, render_report, write_json
from agent.evals.runner import evaluate, run_eval, session_runner
from agent.evals.tasks import CommandCheck, PageCheck, PytestCheck, load_task, load_tasks

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

SUMMARY = {
    "status": "finished",
    "steps": 4,
    "tool_calls": 5,
    "refused_calls": 1,
    "failed_calls": 2,
    "edit_failures": 3,
    "usage": {"prompt_tokens_evaluated": 900, "prompt_tokens_cached": 2100, "completion_tokens": 400, "decode_seconds": 8.0},
    "peak_memory_bytes": 512 * 1024 * 1024,
}


def write_task(folder: Path, body: str, files: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (files or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    path = folder / "task.toml"
    path.write_text(body, encoding="utf-8")
    return path


GREETING_TASK = '''
name = "greeting"
prompt = "Write hello.txt containing hello."
max_steps = 5

[[checks]]
name = "file"
kind = "command"
command = "cat hello.txt"
stdout = "hello"
'''


def greeting_task(tmp_path: Path):
    return load_task(write_task(tmp_path / "greeting", GREETING_TASK))


def writes_hello(task, workspace: Path) -> dict:
    (workspace / "hello.txt").write_text("hello\n")
    return dict(SUMMARY)


def does_nothing(task, workspace: Path) -> dict:
    return {"status": "max_steps", "steps": 5}


# Task files


def test_load_task_reads_limits_and_checks(tmp_path):
    body = GREETING_TASK + '''
[[checks]]
kind = "pytest"
path = "checks/test_it.py"

[[checks]]
kind = "page"
page = "index.html"
script = "checks/page.py"
seed = 7
timeout = 30
'''
    task = load_task(write_task(tmp_path / "t", body, {"checks/test_it.py": "", "checks/page.py": ""}))
    assert task.name == "greeting"
    assert task.max_steps == 5
    assert task.max_seconds == 1800.0
    assert [type(check) for check in task.checks] == [CommandCheck, PytestCheck, PageCheck]
    assert [check.name for check in task.checks] == ["file", "pytest-2", "page-3"]
    assert task.checks[1].path == (tmp_path / "t" / "checks" / "test_it.py").resolve()
    assert task.checks[2].seed == 7
    assert task.checks[2].timeout == 30.0


def test_task_name_defaults_to_folder(tmp_path):
    body = GREETING_TASK.replace('name = "greeting"\n', "")
    assert load_task(write_task(tmp_path / "my-task", body)).name == "my-task"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('max_steps = 3\n[[checks]]\nkind = "command"\ncommand = "true"\n', "'prompt' is missing"),
        ('prompt = "x"\n', "at least one [[checks]]"),
        ('prompt = "x"\n[[checks]]\nkind = "selenium"\n', "use one of command, page, pytest"),
        ('prompt = "x"\n[[checks]]\nkind = "pytest"\npath = "nope.py"\n', "'nope.py' was not found"),
        ('prompt = "x"\n[[checks]]\nkind = "command"\ncommand = "true"\nexpect = 1\n', "unknown keys ['expect']"),
        ('prompt = "x"\nmax_steps = "many"\n[[checks]]\nkind = "command"\ncommand = "true"\n', "'max_steps' must be int"),
        ('prompt = "x"\n[[checks]]\nkind = "command"\ncommand = "true"\ntimeout = 0\n', "positive number of seconds"),
        ('prompt = "x"\n[[checks]]\nname = "a"\nkind = "command"\ncommand = "true"\n'
         '[[checks]]\nname = "a"\nkind = "command"\ncommand = "true"\n', "appear more than once"),
        ('prompt = "x\n', "invalid TOML"),
    ],
)
def test_invalid_task_file_is_rejected(tmp_path, body, message):
    path = write_task(tmp_path / "bad", body)
    with pytest.raises(UsageError) as raised:
        load_task(path)
    assert message in str(raised.value)
    assert str(path) in str(raised.value)


def test_load_tasks_finds_every_example():
    names = [task.name for task in load_tasks(EXAMPLES)]
    assert names == ["blackjack", "wordfreq"]


def test_load_tasks_accepts_folder_and_file():
    assert [task.name for task in load_tasks(EXAMPLES / "blackjack")] == ["blackjack"]
    assert [task.name for task in load_tasks(EXAMPLES / "wordfreq" / "task.toml")] == ["wordfreq"]


def test_load_tasks_rejects_missing_path(tmp_path):
    with pytest.raises(UsageError, match="no such task file or folder"):
        load_tasks(tmp_path / "absent")
    with pytest.raises(UsageError, match="no task.toml found"):
        load_tasks(tmp_path)


# Command checks


def command_check(**fields) -> CommandCheck:
    return CommandCheck(name="cmd", **fields)


def test_command_check_passes_on_expected_output(tmp_path):
    check = command_check(command="tr a-z A-Z", stdin="shout\n", stdout="SHOUT")
    assert run_check(check, tmp_path).passed


def test_command_check_runs_in_workspace(tmp_path):
    (tmp_path / "marker.txt").write_text("here")
    assert run_check(command_check(command="cat marker.txt", stdout="here"), tmp_path).passed


def test_command_check_reports_wrong_exit_code(tmp_path):
    result = run_check(command_check(command="echo first; echo oops >&2; exit 3"), tmp_path)
    assert not result.passed
    assert result.message.startswith("`echo first; echo oops >&2; exit 3` exited with 3, expected 0.")
    assert "oops" in result.message


def test_command_check_reports_wrong_output(tmp_path):
    result = run_check(command_check(command="printf 'a 1\\nb 2\\n'", stdout="a 1\nb 3"), tmp_path)
    assert not result.passed
    assert result.message == "`printf 'a 1\\nb 2\\n'` printed 'a 1\\nb 2', expected 'a 1\\nb 3'."


def test_command_check_ignores_trailing_whitespace(tmp_path):
    assert run_check(command_check(command="printf 'a  \\n\\n\\n'", stdout="a\n"), tmp_path).passed


def test_command_check_reports_missing_text(tmp_path):
    result = run_check(command_check(command="echo hello", stdout_contains=("hello", "world")), tmp_path)
    assert not result.passed
    assert "lacks 'world'" in result.message


def test_command_check_times_out(tmp_path):
    result = run_check(command_check(command="sleep 30", timeout=0.5), tmp_path)
    assert not result.passed
    assert result.message == "`sleep 30` did not finish within 0.5 seconds."
    assert result.seconds < 10


# Pytest checks

FAILING_TESTS = '''
import shapes

def test_square():
    assert shapes.area(2) == 4, f"area(2) returned {shapes.area(2)}, expected 4"

def test_unit():
    assert shapes.area(1) == 1, f"area(1) returned {shapes.area(1)}, expected 1"

def test_zero():
    assert shapes.area(0) == 0
'''


def pytest_check(tmp_path: Path) -> PytestCheck:
    path = tmp_path / "checks" / "test_shapes.py"
    path.parent.mkdir()
    path.write_text(FAILING_TESTS)
    return PytestCheck(name="logic", path=path)


def test_pytest_check_passes_correct_code(tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "shapes.py").write_text("def area(side):\n    return side * side\n")
    assert run_check(pytest_check(tmp_path), workspace).passed
    assert not (workspace / "__pycache__").exists()


def test_pytest_check_reports_first_failure_only(tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "shapes.py").write_text("def area(side):\n    return side * 4\n")
    result = run_check(pytest_check(tmp_path), workspace)
    assert not result.passed
    assert result.message == "test_square: area(2) returned 8, expected 4 (2 of 3 tests failed; also test_unit)"


def test_pytest_check_names_other_failures(tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "shapes.py").write_text("def area(side):\n    return -1\n")
    path = tmp_path / "test_many.py"
    path.write_text("import shapes\n" + "".join(f"def test_side_{n}():\n    assert shapes.area({n}) == {n * n}\n" for n in range(6)))

    result = run_check(PytestCheck(name="logic", path=path), workspace)

    assert result.message.startswith("test_side_0: ")
    assert result.message.endswith("(6 of 6 tests failed; also test_side_1, test_side_2, test_side_3, ...)")


def test_pytest_check_reports_missing_module(tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    result = run_check(pytest_check(tmp_path), workspace)
    assert not result.passed
    assert "ModuleNotFoundError: No module named 'shapes'" in result.message


def test_pytest_check_ignores_workspace_conftest(tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "shapes.py").write_text("def area(side):\n    return side * side\n")
    (workspace / "conftest.py").write_text("raise SystemExit('conftest must not run')\n")
    (workspace / "pytest.ini").write_text("[pytest]\naddopts = --no-such-option\n")
    assert run_check(pytest_check(tmp_path), workspace).passed


def test_run_checks_stops_at_first_failure(tmp_path):
    body = '''
prompt = "x"
[[checks]]
name = "one"
kind = "command"
command = "false"
[[checks]]
name = "two"
kind = "command"
command = "true"
'''
    task = load_task(write_task(tmp_path / "t", body))
    assert [result.name for result in run_checks(task, tmp_path).results] == ["one", "two"]
    report = run_checks(task, tmp_path, stop_at_first_failure=True)
    assert [result.name for result in report.results] == ["one"]
    assert report.feedback() == "Check 'one' failed: `false` exited with 1, expected 0. Output ends: ''"


# The word-frequency example


def wordfreq_workspace(tmp_path: Path, variant: str | None) -> Path:
    workspace = tmp_path / "ws"
    shutil.copytree(EXAMPLES / "wordfreq" / "reference", workspace)
    if variant:
        shutil.copytree(EXAMPLES / "wordfreq" / "broken" / variant, workspace, dirs_exist_ok=True)
    return workspace


def test_wordfreq_reference_passes(tmp_path):
    task = load_task(EXAMPLES / "wordfreq" / "task.toml")
    report = run_checks(task, wordfreq_workspace(tmp_path, None))
    assert report.passed, report.feedback()


@pytest.mark.parametrize(
    ("variant", "failing", "expected"),
    [
        ("case_sensitive", "top_words", "test_ignores_case"),
        ("ties_in_first_seen_order", "top_words", "expected [(\"don't\", 2), (\"it's\", 1), ('stop', 1)]"),
        ("stdin_ignored", "stdin", "exited with 1, expected 0"),
    ],
)
def test_wordfreq_variant_fails(tmp_path, variant, failing, expected):
    task = load_task(EXAMPLES / "wordfreq" / "task.toml")
    report = run_checks(task, wordfreq_workspace(tmp_path, variant))
    assert not report.passed
    assert report.first_failure.name == failing
    assert expected in report.first_failure.message


def test_every_wordfreq_variant_is_tested():
    variants = {path.name for path in (EXAMPLES / "wordfreq" / "broken").iterdir()}
    assert variants == {"case_sensitive", "ties_in_first_seen_order", "stdin_ignored"}


# pass@k


@pytest.mark.parametrize(
    ("runs", "successes", "k", "expected"),
    [(5, 0, 1, 0.0), (5, 5, 3, 1.0), (2, 1, 1, 0.5), (3, 1, 2, 2 / 3), (4, 3, 2, 1.0)],
)
def test_pass_at_k(runs, successes, k, expected):
    assert pass_at_k(runs, successes, k) == pytest.approx(expected)


def test_pass_at_k_needs_k_runs():
    assert pass_at_k(2, 1, 3) is None


# The eval runner


def test_eval_passes_when_checks_pass(tmp_path):
    report = run_eval([greeting_task(tmp_path)], writes_hello, workdir=tmp_path / "runs")
    assert report.passed
    assert report.exit_code == 0
    attempt = report.tasks[0].attempts[0]
    assert attempt.workspace == str(tmp_path / "runs" / "greeting-1")
    assert (tmp_path / "runs" / "greeting-1" / "hello.txt").is_file()


def test_eval_fails_when_checks_fail(tmp_path):
    report = run_eval([greeting_task(tmp_path)], does_nothing, workdir=tmp_path / "runs")
    assert not report.passed
    assert report.exit_code == 1
    assert report.tasks[0].first_failure.startswith("Check 'file' failed: `cat hello.txt` exited with 1")


def test_eval_reads_run_summary(tmp_path):
    report = run_eval([greeting_task(tmp_path)], writes_hello, workdir=tmp_path / "runs")
    metrics = report.tasks[0].attempts[0].metrics
    assert metrics.status == "finished"
    assert (metrics.steps, metrics.tool_calls, metrics.refused_calls, metrics.failed_calls, metrics.edit_failures) == (4, 5, 1, 2, 3)
    assert (metrics.prompt_tokens_evaluated, metrics.prompt_tokens_cached, metrics.decode_tokens) == (900, 2100, 400)
    assert metrics.decode_tokens_per_second == 50.0
    assert metrics.peak_memory_bytes == 512 * 1024 * 1024
    assert metrics.wall_seconds > 0


@dataclass
class DataclassSummary:
    status: str
    steps: int

    def to_dict(self):
        return {"status": self.status, "steps": self.steps}


def test_metrics_accept_summary_objects():
    assert RunMetrics.from_summary(DataclassSummary("finished", 7)).steps == 7
    assert RunMetrics.from_summary(None) == RunMetrics()


def test_each_run_gets_fresh_workspace(tmp_path):
    seen = []

    def run_one(task, workspace):
        assert list(workspace.iterdir()) == []
        seen.append(workspace)
        return writes_hello(task, workspace)

    report = run_eval([greeting_task(tmp_path)], run_one, repeat=3, workdir=tmp_path / "runs")
    assert len(set(seen)) == 3
    assert [attempt.attempt for attempt in report.tasks[0].attempts] == [1, 2, 3]


def test_repeat_reports_pass_at_k(tmp_path):
    outcomes = iter([True, False, True])

    def sometimes(task, workspace):
        return writes_hello(task, workspace) if next(outcomes) else does_nothing(task, workspace)

    report = run_eval([greeting_task(tmp_path)], sometimes, repeat=3, workdir=tmp_path / "runs")
    task = report.tasks[0]
    assert task.successes == 2
    assert task.pass_at(1) == pytest.approx(2 / 3)
    assert task.pass_at(3) == 1.0
    assert not task.passed
    assert report.exit_code == 1
    assert task.first_failure.startswith("run 2: Check 'file' failed")


def concurrency_probe():
    """A run_one that records how many runs overlapped."""
    lock = threading.Lock()
    state = {"running": 0, "peak": 0}

    def run_one(task, workspace):
        with lock:
            state["running"] += 1
            state["peak"] = max(state["peak"], state["running"])
        threading.Event().wait(0.2)
        with lock:
            state["running"] -= 1
        return writes_hello(task, workspace)

    return run_one, state


def test_jobs_run_in_parallel_when_engine_allows(tmp_path):
    run_one, state = concurrency_probe()
    report = run_eval([greeting_task(tmp_path)], run_one, repeat=4, jobs=4, concurrent_requests=True, workdir=tmp_path / "runs")
    assert report.passed
    assert report.jobs == 4
    assert state["peak"] > 1


def test_jobs_run_serially_without_concurrent_engine(tmp_path):
    run_one, state = concurrency_probe()
    report = run_eval([greeting_task(tmp_path)], run_one, repeat=3, jobs=4, workdir=tmp_path / "runs")
    assert state["peak"] == 1
    assert report.jobs == 1
    assert "does not serve concurrent requests" in report.notes[0]


def test_agent_error_is_recorded_and_checked(tmp_path):
    def stops(task, workspace):
        raise ScriptExhausted("the script has no replies left")

    report = run_eval([greeting_task(tmp_path)], stops, workdir=tmp_path / "runs")
    attempt = report.tasks[0].attempts[0]
    assert attempt.error == "the script has no replies left"
    assert not attempt.passed
    assert "(the agent stopped: the script has no replies left)" in report.tasks[0].first_failure


def test_engine_error_stops_eval(tmp_path):
    def broken_engine(task, workspace):
        raise EngineError("the server is down")

    with pytest.raises(EngineError):
        run_eval([greeting_task(tmp_path)], broken_engine, workdir=tmp_path / "runs")


def test_repeated_task_names_are_rejected(tmp_path):
    task = greeting_task(tmp_path)
    with pytest.raises(UsageError, match="appear more than once"):
        run_eval([task, task], writes_hello, workdir=tmp_path / "runs")


def test_session_runner_applies_task_limits(tmp_path):
    calls = []

    def run_task(task_text, settings, workspace_dir, handlers, *, engine=None, verify=None):
        calls.append((task_text, settings.max_steps, settings.max_seconds, workspace_dir, handlers, engine))
        return writes_hello(None, workspace_dir)

    settings = Settings(max_steps=99, max_seconds=5.0)
    handler = print
    runner = session_runner(run_task, settings, [handler], engine="shared engine")
    report = run_eval([greeting_task(tmp_path)], runner, workdir=tmp_path / "runs")
    assert report.passed
    workspace = tmp_path / "runs" / "greeting-1"
    assert calls == [("Write hello.txt containing hello.", 5, 1800.0, workspace, [handler], "shared engine")]
    assert settings.max_steps == 99


def test_session_runner_verifies_with_task_checks(tmp_path):
    verdicts = []

    def run_task(task_text, settings, workspace_dir, handlers, *, engine=None, verify=None):
        verdicts.append(verify())
        (workspace_dir / "hello.txt").write_text("hello")
        verdicts.append(verify())
        return {"status": "finished"}

    run_eval([greeting_task(tmp_path)], session_runner(run_task, Settings()), workdir=tmp_path / "runs")
    assert [verdict.passed for verdict in verdicts] == [False, True]
    assert verdicts[0].failure.startswith("Check 'file' failed: `cat hello.txt` exited with 1")
    assert verdicts[1].failure == ""


def test_metrics_read_session_run_summary():
    from agent.session import RunSummary

    summary = RunSummary(
        run_id="r", status="finished", exit_code=0, message="", steps=6, tool_calls=7, refused_calls=1,
        failed_calls=2, edit_failures=1, files_written=[], prompt_tokens=1000, prompt_tokens_cached=600,
        prompt_tokens_evaluated=400, completion_tokens=300, decode_tokens_per_second=30.0, seconds=12.5,
        peak_memory_mb=2048.0, trajectory="", workspace="",
    )
    metrics = RunMetrics.from_summary(summary)
    assert (metrics.steps, metrics.tool_calls, metrics.refused_calls, metrics.failed_calls) == (6, 7, 1, 2)
    assert (metrics.prompt_tokens_evaluated, metrics.prompt_tokens_cached, metrics.decode_tokens) == (400, 600, 300)
    assert metrics.wall_seconds == 12.5
    assert metrics.decode_tokens_per_second == pytest.approx(30.0)
    assert metrics.peak_memory_bytes == 2048 * 1024 * 1024


def write_greeting_script(path: Path, content: str) -> Path:
    replies = [
        {"text": "1. Write hello.txt.\n2. Finish."},
        {"tool_calls": [{"name": "write_file", "arguments": {"path": "hello.txt", "content": content}}], "text": ""},
        {"tool_calls": [{"name": "finish", "arguments": {"summary": "Wrote hello.txt."}}], "text": ""},
    ]
    path.write_text("".join(json.dumps(reply) + "\n" for reply in replies))
    return path


def test_evaluate_runs_scripted_agent(tmp_path):
    greeting_task(tmp_path)
    script = write_greeting_script(tmp_path / "script.jsonl", "hello\n")
    report = evaluate(tmp_path / "greeting", Settings(engine="scripted", script=str(script)), repeat=2, workdir=tmp_path / "runs")
    assert report.exit_code == 0, report.tasks[0].first_failure
    assert report.tasks[0].successes == 2
    assert report.tasks[0].attempts[1].metrics.status == "finished"
    # The checks pass once hello.txt is written, so the run ends before the script's finish call.
    assert report.tasks[0].attempts[1].metrics.tool_calls == 1


def test_evaluate_reports_wrong_work(tmp_path):
    greeting_task(tmp_path)
    script = write_greeting_script(tmp_path / "script.jsonl", "goodbye\n")
    report = evaluate(tmp_path / "greeting", Settings(engine="scripted", script=str(script)), workdir=tmp_path / "runs")
    assert report.exit_code == 1
    assert "printed 'goodbye', expected 'hello'" in report.tasks[0].first_failure


def test_on_attempt_sees_each_run(tmp_path):
    seen = []
    run_eval([greeting_task(tmp_path)], writes_hello, repeat=2, workdir=tmp_path / "runs", on_attempt=seen.append)
    assert [attempt.attempt for attempt in seen] == [1, 2]


# Reports


def mixed_report(tmp_path):
    passing = greeting_task(tmp_path / "a")
    failing = load_task(write_task(tmp_path / "b", GREETING_TASK.replace('"greeting"', '"missing"').replace("hello.txt", "other.txt")))
    return run_eval([passing, failing], writes_hello, workdir=tmp_path / "runs")


def test_table_shows_results_and_first_failure(tmp_path):
    output = io.StringIO()
    render_report(mixed_report(tmp_path), Console(file=output, width=200, color_system=None))
    text = output.getvalue()
    assert "greeting" in text
    assert "FAIL" in text
    assert "1/2 tasks" in text
    assert "missing: Check 'file' failed: `cat other.txt` exited with 1" in text
    assert "900 / 2,100" in text
    assert "512" in text


def test_table_prints_brackets_in_failure(tmp_path):
    body = GREETING_TASK.replace('command = "cat hello.txt"', 'command = "echo \'[red] [cards0-21]\'"')
    task = load_task(write_task(tmp_path / "t", body))
    output = io.StringIO()
    render_report(run_eval([task], does_nothing, workdir=tmp_path / "runs"), Console(file=output, width=300, color_system=None))
    assert "printed '[red] [cards0-21]', expected 'hello'" in output.getvalue()


def test_json_report_holds_every_number(tmp_path):
    path = tmp_path / "report.json"
    write_json(mixed_report(tmp_path), path)
    data = json.loads(path.read_text())
    assert data["passed"] is False
    assert (data["tasks_passed"], data["tasks"]) == (1, 2)
    first = data["results"][0]
    assert first["name"] == "greeting"
    assert first["pass@1"] == 1.0
    assert first["totals"]["decode_tokens_per_second"] == 50.0
    assert first["attempts"][0]["checks"][0]["name"] == "file"
    assert data["results"][1]["first_failure"].startswith("Check 'file' failed")
    assert data["totals"]["steps"] == 8


# Page checks

CLICK_SCRIPT = '''
def check(page):
    page.click("#go")
    assert page.inner_text("#out") == "done", "#out does not say done after clicking #go"
'''


def page_task(tmp_path: Path, timeout: int = 60):
    body = f'''
prompt = "Make a page with a #go button that writes done into #out."
[[checks]]
name = "page"
kind = "page"
page = "index.html"
script = "click.py"
timeout = {timeout}
'''
    return load_task(write_task(tmp_path / "task", body, {"click.py": CLICK_SCRIPT}))


def page_workspace(tmp_path: Path, script: str) -> Path:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    html = f'<button id="go">Go</button><div id="out"></div><script>{script}</script>'
    (workspace / "index.html").write_text(html)
    return workspace


@pytest.fixture(scope="module")
def browser_available() -> None:
    pytest.importorskip("playwright.sync_api")
    from agent.evals.page import find_chromium

    try:
        find_chromium()
    except UsageError as error:
        pytest.skip(str(error))


@pytest.mark.browser
def test_page_check_passes_working_page(tmp_path, browser_available):
    workspace = page_workspace(tmp_path, 'go.onclick = () => { out.textContent = "done"; };')
    report = run_checks(page_task(tmp_path), workspace)
    assert report.passed, report.feedback()


@pytest.mark.browser
def test_page_check_reports_script_assertion(tmp_path, browser_available):
    workspace = page_workspace(tmp_path, 'go.onclick = () => { out.textContent = "nope"; };')
    report = run_checks(page_task(tmp_path), workspace)
    assert report.feedback() == "Check 'page' failed: #out does not say done after clicking #go"


@pytest.mark.browser
def test_page_check_reports_console_error(tmp_path, browser_available):
    workspace = page_workspace(tmp_path, 'console.error("deck is empty"); go.onclick = () => { out.textContent = "done"; };')
    report = run_checks(page_task(tmp_path), workspace)
    assert report.feedback().startswith("Check 'page' failed: the browser console shows an error: deck is empty (index.html line 1: ")


@pytest.mark.browser
def test_page_check_reports_stuck_click(tmp_path, browser_available):
    workspace = page_workspace(tmp_path, "go.onclick = () => { while (true) {} };")
    report = run_checks(page_task(tmp_path), workspace)
    assert report.feedback() == "Check 'page' failed: the browser action failed: Page.click: Timeout 5000ms exceeded."


@pytest.mark.browser
def test_page_check_stops_stuck_page(tmp_path, browser_available):
    # page.evaluate has no timeout of its own, so only the check's timeout ends this one.
    task = page_task(tmp_path, timeout=8)
    task.checks[0].script.write_text('def check(page):\n    page.evaluate("() => out.textContent")\n')
    workspace = page_workspace(tmp_path, "setTimeout(() => { while (true) {} }, 0);")
    report = run_checks(task, workspace)
    assert report.feedback() == (
        "Check 'page' failed: the page check did not finish within 8 seconds; the page may be stuck in a loop."
    )
    assert report.results[0].seconds < 20


@pytest.mark.browser
def test_page_check_script_may_use_expect(tmp_path, browser_available):
    task = page_task(tmp_path)
    task.checks[0].script.write_text(
        "from playwright.sync_api import expect\n\n"
        "def check(page):\n"
        "    expect(page.locator('#out')).to_have_text('')\n"
        "    page.click('#go')\n"
        "    expect(page.locator('#out')).to_have_text('done')\n"
    )
    workspace = page_workspace(tmp_path, 'go.onclick = () => { out.textContent = "done"; };')

    report = run_checks(task, workspace)

    assert report.passed, report.feedback()


@pytest.mark.browser
def test_page_check_script_crash_fails_check(tmp_path, browser_available):
    task = page_task(tmp_path)
    task.checks[0].script.write_text("def check(page):\n    raise KeyError('score')\n")
    workspace = page_workspace(tmp_path, "")

    report = run_checks(task, workspace)

    assert report.feedback() == "Check 'page' failed: the page check itself failed: KeyError: 'score'"


@pytest.mark.browser
def test_page_check_failure_counts_progress(tmp_path, browser_available):
    task = page_task(tmp_path)
    task.checks[0].script.write_text(
        "def check(page):\n"
        "    page.click('#go')\n"
        "    page.click('#go')\n"
        "    assert page.inner_text('#out') == 'never', 'out is wrong'\n"
    )
    workspace = page_workspace(tmp_path, 'go.onclick = () => { out.textContent = "done"; };')

    result = run_checks(task, workspace).results[0]

    assert not result.passed
    assert result.progress > 0
