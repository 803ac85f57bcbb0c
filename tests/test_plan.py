"""Plan parsing and the note that names the next plan step."""

from __future__ import annotations

from agent.chat.messages import ToolCall
from agent.plan import PlanTracker, files_named, parse_plan
from agent.tool import ToolResult

PLAN_TEXT = "Here is my plan:\n1. Write game.py with deal()\n2) Write index.html\n**3.** Run python game.py\nThat is all."


def test_numbered_lines_become_steps():
    assert parse_plan(PLAN_TEXT) == ["Write game.py with deal()", "Write index.html", "Run python game.py"]
    assert parse_plan("I will write the game.") == []


def test_tracker_advances_only_on_work():
    tracker = PlanTracker(parse_plan(PLAN_TEXT))
    read = (ToolCall("read_file", {"path": "x"}), ToolResult("text"))
    write = (ToolCall("write_file", {"path": "game.py"}), ToolResult("Created game.py", changed=["game.py"]))
    broken = (ToolCall("write_file", {"path": "game.py"}), ToolResult("error", ok=False, changed=["game.py"]))
    command_ok = (ToolCall("run_command", {"command": "python game.py"}), ToolResult("Exit code: 0", data={"exit_code": 0}))

    assert tracker.first_prompt().startswith("Now do step 1: Write game.py with deal()")
    assert tracker.advance([read]) == ""
    assert tracker.advance([broken]) == ""
    assert tracker.advance([write]) == "Step 1 is done. Now do step 2: Write index.html"
    assert tracker.advance([write]).startswith("Step 2 is done. Now do step 3")
    assert tracker.advance([command_ok]).startswith("Every step of the plan is done")
    assert tracker.advance([write]) == ""


def test_tracker_without_plan_stays_silent():
    tracker = PlanTracker([])
    write = (ToolCall("write_file", {"path": "a"}), ToolResult("ok", changed=["a"]))

    assert tracker.first_prompt() == "Now do the first step of your plan with a tool call."
    assert tracker.advance([write]) == ""


def test_files_named_in_task():
    task = 'Write blackjack.py with hand_value(), and index.html. Not "e.g." or v1.2; also src/app.py and blackjack.py again.'

    assert files_named(task) == ["blackjack.py", "index.html", "src/app.py"]
