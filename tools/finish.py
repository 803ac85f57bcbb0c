"""The finish tool: the model's way to say the task is done."""

from __future__ import annotations

from typing import Any

from agent.tool import Tool, ToolContext, ToolResult


class Finish(Tool):
    name = "finish"
    description = "Call when the task is done and checked. summary tells the user what was done."
    parameters = {
        "type": "object",
        "properties": {"summary": {"type": "string", "description": "One or two sentences for the user"}},
        "required": ["summary"],
    }

    def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        summary = arguments["summary"].strip() or "(no summary)"
        return ToolResult("Finishing.", summary, finished=True, data={"summary": summary})
