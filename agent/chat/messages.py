"""The conversation data the loop, the engines and the prompt renderers share."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ToolSpec:
    """A tool declaration as the model sees it: name, description and a JSON schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]

    def to_openai(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


@dataclass
class ToolCall:
    """One call the model asked for. `id` pairs the call with its result message."""

    name: str
    arguments: dict[str, Any]
    id: str = ""

    def key(self) -> str:
        """Return a canonical text of name and arguments, equal for exact duplicates."""
        return self.name + json.dumps(self.arguments, sort_keys=True, ensure_ascii=False)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}


@dataclass
class Message:
    """One turn of the conversation.

    Roles are `system`, `user`, `assistant` and `tool`. An assistant message carries its tool
    calls; a tool message carries one result, with `name` and `tool_call_id` of its call.
    `thinking` keeps the model's thought channel for the trajectory; renderers never send it back.
    """

    role: str
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    name: str = ""
    tool_call_id: str = ""
    thinking: str = ""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            data["tool_calls"] = [call.to_dict() for call in self.tool_calls]
        if self.name:
            data["name"] = self.name
        if self.tool_call_id:
            data["tool_call_id"] = self.tool_call_id
        if self.thinking:
            data["thinking"] = self.thinking
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Message:
        calls = [ToolCall(c["name"], c.get("arguments", {}), c.get("id", "")) for c in data.get("tool_calls", [])]
        return cls(
            role=data["role"],
            content=data.get("content", ""),
            tool_calls=calls,
            name=data.get("name", ""),
            tool_call_id=data.get("tool_call_id", ""),
            thinking=data.get("thinking", ""),
        )
