"""`gemma-agent build` end to end through the real llama.cpp engine on the tiny Gemma 3 model.

The 270M base model writes nonsense; these tests prove the path (load, template, constrained calls,
streaming, cache reuse, tools, checkpoints, trajectory), not the quality of what it writes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app

pytestmark = pytest.mark.model

runner = CliRunner()
STEPS = 6


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_model):
    workspace = tmp_path_factory.mktemp("build") / "ws"
    args = [
        "build", "Create hello.py that prints hello, and run it",
        "--model", str(tiny_model), "--workspace", str(workspace),
        "--max-steps", str(STEPS), "--ctx", "8192", "--json",
    ]
    # The base model never writes a code block, so content goes inside the constrained write_file call,
    # where the constraint guarantees a complete call and so a written file.
    result = runner.invoke(app, args, env={"GEMMA_AGENT_WRITE_MODE": "calls"})
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result, events, workspace


def test_run_ends_with_clean_summary(tiny_run):
    result, events, _ = tiny_run

    summary = events[-1]
    assert summary["event"] == "run_end"
    assert summary["status"] in ("finished", "max_steps", "stuck", "checks_failed", "context_limit")
    assert result.exit_code == summary["exit_code"]
    assert summary["steps"] <= STEPS
    assert summary["completion_tokens"] > 0


def test_every_constrained_reply_parses_as_a_call(tiny_run):
    _, events, _ = tiny_run

    constrained = [e for e in events if e["event"] == "reply" and e["usage"]["constrained_tokens"] > 0]
    assert constrained, "the engine never constrained a call"
    for reply in constrained:
        assert reply["tool_calls"], reply["text"]
        assert reply["problems"] == [], reply["problems"]


def test_a_tool_wrote_a_file_and_it_was_committed(tiny_run):
    _, events, workspace = tiny_run

    written = events[-1]["files_written"]
    assert written, "no tool wrote a file"
    assert (workspace / written[0]).is_file()
    assert any(e["event"] == "checkpoint" and e["commit"] for e in events)


def test_prompt_cache_is_reused_across_turns(tiny_run):
    _, events, _ = tiny_run

    # A compaction rewrites old messages, so the reply right after it may evaluate from the start.
    later, compacted = [], False
    for event in events:
        if event["event"] == "compaction":
            compacted = True
        elif event["event"] == "reply":
            if event["step"] > 1 and not compacted:
                later.append(event)
            compacted = False
    reused = [r for r in later if r["usage"]["prompt_tokens_cached"] > 0]
    assert later
    assert len(reused) == len(later), [r["usage"] for r in later if r not in reused]
    assert events[-1]["prompt_tokens_cached"] > events[-1]["prompt_tokens_evaluated"]


def test_trajectory_saved_with_every_reply(tiny_run):
    _, events, _ = tiny_run

    trajectory = Path(events[-1]["trajectory"])
    recorded = [json.loads(line) for line in trajectory.read_text().splitlines()]
    assert [e["step"] for e in recorded if e["event"] == "reply"] == [e["step"] for e in events if e["event"] == "reply"]
    assert recorded[-1]["event"] == "run_end"
