"""The run's steps: one per file the task names, or the model's numbered plan; and the notes between them."""

from __future__ import annotations

from agent.chat.messages import ToolCall
from agent.plan import PlanStep, PlanTracker, files_named, missing_files, parse_plan, plan_steps
from agent.tool import ToolResult

PLAN_TEXT = "Here is my plan:\n1. Write game.py with deal()\n2) Write index.html\n**3.** Run python game.py\nThat is all."
TASK = """Build a game.

1. game.py with deal() and score(cards).
   Aces count 11 or 1.

2. index.html: one page that shows the cards.
   Buttons Hit and Stand.
"""


def write(path: str, ok: bool = True) -> tuple[ToolCall, ToolResult]:
    return ToolCall("write_file", {"path": path}), ToolResult("written", ok=ok, changed=[path])


def test_numbered_lines_become_steps():
    assert parse_plan(PLAN_TEXT) == ["Write game.py with deal()", "Write index.html", "Run python game.py"]
    assert parse_plan("I will write the game.") == []


def test_files_named_in_task():
    task = 'Write blackjack.py with hand_value(), and index.html. Not "e.g." or v1.2; also src/app.py and blackjack.py again.'

    assert files_named(task) == ["blackjack.py", "index.html", "src/app.py"]


def test_named_files_become_steps_with_their_part_of_the_task():
    steps = plan_steps(TASK, "1. Create a folder\n2. Set up a virtual environment")

    assert [s.text for s in steps] == ["write game.py", "write index.html", "check that everything works, then call finish"]
    assert steps[0].detail == "1. game.py with deal() and score(cards).\n   Aces count 11 or 1."
    assert steps[1].detail.startswith("2. index.html: one page")
    assert "game.py" not in steps[1].detail


def test_without_named_files_the_model_plan_is_used():
    steps = plan_steps("Make the tests pass.", PLAN_TEXT)

    assert [s.text for s in steps] == parse_plan(PLAN_TEXT)
    assert all(not s.file for s in steps)


def test_tracker_advances_when_the_step_file_is_written(tmp_path):
    tracker = PlanTracker(plan_steps(TASK, ""))
    read = (ToolCall("read_file", {"path": "x"}), ToolResult("text"))

    assert tracker.first_prompt().startswith("Now do step 1: write game.py\nWhat the task says about it:")
    assert tracker.allowed_tools(tmp_path) == ["write_file"]
    assert tracker.advance([read]) == ""
    assert tracker.advance([write("game.py", ok=False)]) == ""
    assert tracker.advance([write("other.py")]) == ""
    assert tracker.advance([write("game.py")]).startswith("Step 1 is done. Now do step 2: write index.html")
    (tmp_path / "index.html").write_text("<p>")
    assert tracker.allowed_tools(tmp_path) is None
    assert tracker.advance([write("index.html")]).startswith("Step 2 is done. Now do step 3: check")
    command_ok = (ToolCall("run_command", {"command": "python game.py"}), ToolResult("Exit code: 0", data={"exit_code": 0}))
    assert tracker.advance([command_ok]).startswith("Every step of the plan is done")
    assert tracker.advance([write("game.py")]) == ""


def test_tracker_without_steps_stays_silent(tmp_path):
    tracker = PlanTracker([])

    assert tracker.first_prompt() == "Now do the first step of your plan with a tool call."
    assert tracker.advance([write("a")]) == ""
    assert tracker.allowed_tools(tmp_path) is None


def test_step_without_file_advances_on_any_work():
    tracker = PlanTracker([PlanStep("set things up"), PlanStep("finish")])

    assert tracker.advance([write("a.txt")]) == "Step 1 is done. Now do step 2: finish"


def test_named_file_in_a_subfolder_counts(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "calc.py").write_text("x = 1\n")

    assert missing_files(tmp_path, ["calc.py", "index.html"]) == ["index.html"]


def test_write_only_limit_lasts_two_replies(tmp_path):
    tracker = PlanTracker(plan_steps(TASK, ""))

    assert tracker.allowed_tools(tmp_path) == ["write_file"]
    assert tracker.allowed_tools(tmp_path) == ["write_file"]
    assert tracker.allowed_tools(tmp_path) is None
