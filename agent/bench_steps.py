"""The agent's own time per step, outside the engine: rendering, parsing, tools, git and trajectory.

A scripted engine plays a run of file writes and reads through the whole stack (real tools, real
git checkpoints, real trajectory). The time between one reply returning and the next being requested
is the agent's own work for that step. No command is run, so the sandbox does not count.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from agent.config import Settings
from agent.engines.scripted import ScriptedEngine

BENCH_STEPS = 40


class _TimedEngine(ScriptedEngine):
    """A scripted engine that records when each reply was asked for and when it returned."""

    def __init__(self, replies):
        super().__init__(replies, model_name="scripted:bench")
        self.asked: list[float] = []
        self.returned: list[float] = []

    def reply(self, *args, **kwargs):
        self.asked.append(time.perf_counter())
        reply = super().reply(*args, **kwargs)
        self.returned.append(time.perf_counter())
        return reply


def _script(steps: int) -> list[dict]:
    replies = [{"text": "1. Write the modules\n2. Finish"}]
    for number in range(steps):
        content = "".join(f"def f{number}_{line}():\n    return {line}\n\n" for line in range(20))
        name = "write_file" if number % 2 == 0 else "read_file"
        arguments = {"path": f"module_{number // 2}.py"}
        if name == "write_file":
            arguments["content"] = content
        replies.append({"tool_calls": [{"name": name, "arguments": arguments}]})
    replies.append({"tool_calls": [{"name": "finish", "arguments": {"summary": "done"}}]})
    return replies


def measure_agent_steps(steps: int = BENCH_STEPS) -> dict[str, float]:
    """Run `steps` scripted steps and return the agent's own milliseconds per step: median and p95."""
    from agent.session import run_task

    engine = _TimedEngine(_script(steps))
    settings = replace(Settings(), engine="scripted", sandbox="none", max_steps=steps + 2, write_mode="calls")
    with tempfile.TemporaryDirectory(prefix="gemma-agent-bench-") as folder:
        run_task("Write the modules", settings, Path(folder) / "ws", [], engine=engine)
    gaps = [(asked - returned) * 1000 for returned, asked in zip(engine.returned, engine.asked[1:])]
    gaps = gaps[1:]  # the first gap contains the plan turn's set-up, not a tool step
    ordered = sorted(gaps)
    return {
        "steps": len(gaps),
        "median_ms": statistics.median(gaps),
        "p95_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))],
    }
