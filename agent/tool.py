"""The contract between the loop and the tools: declaration, context, result and the model's errors."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent.chat.messages import ToolCall, ToolSpec

if TYPE_CHECKING:
    from agent.config import Settings
    from agent.sandbox import Sandbox
    from agent.workspace import Workspace


class ToolError(Exception):
    """A mistake of the model's (bad arguments, a missing file, an edit that did not match).

    The message goes back to the model as the tool result and must say what to do differently.
    """


@dataclass
class ToolContext:
    """The resources a tool may use: the workspace, the sandbox that runs commands, and the settings."""

    workspace: Workspace
    sandbox: Sandbox
    settings: Settings


@dataclass
class ToolResult:
    """The outcome of one call: `output` is the text for the model, `display` a short line for the person.

    `ok` is False when the model made a mistake; `changed` lists workspace-relative paths the call wrote
    or deleted; `finished` is set by the finish tool. `data["content_request"]` (a path) requests from the loop
    the model's next reply as that file's content, which the loop hands to `Tool.write_content`.
    """

    output: str
    display: str = ""
    ok: bool = True
    changed: list[str] = field(default_factory=list)
    finished: bool = False
    data: dict[str, Any] = field(default_factory=dict)


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


class Tool:
    """A tool the model can call. Subclasses set name, description and parameters and implement run()."""

    name: str = ""
    description: str = ""
    parameters: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
    changes_files: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            _check_declaration(cls)

    @property
    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.description, self.parameters)

    def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        raise NotImplementedError

    def write_content(self, arguments: dict[str, Any], content: str, context: ToolContext) -> ToolResult:
        """Finish a call whose result asked for content (`data["content_request"]`) with that content."""
        raise NotImplementedError(f"tool {self.name} does not take content after its call")

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Return the arguments checked against the schema, or raise ToolError naming the bad one."""
        properties = self.parameters.get("properties", {})
        for key in self.parameters.get("required", []):
            if key not in arguments:
                raise ToolError(f"{self.name} needs the argument {key!r}. Its arguments are: {', '.join(properties)}.")
        unknown = [key for key in arguments if key not in properties]
        if unknown:
            raise ToolError(f"{self.name} has no argument {unknown[0]!r}. Its arguments are: {', '.join(properties)}.")
        return {key: _coerce(self.name, key, value, properties[key]) for key, value in arguments.items()}


def _coerce(tool: str, key: str, value: Any, schema: dict[str, Any]) -> Any:
    """Check one argument's type, accepting the lossless conversions small models need (\"3\" for 3)."""
    expected = schema.get("type", "string")
    if expected == "integer" and isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if expected == "boolean" and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if expected == "string" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    types = _JSON_TYPES.get(expected, (object,))
    if not isinstance(value, types) or (expected in ("integer", "number") and isinstance(value, bool)):
        raise ToolError(f"The argument {key!r} of {tool} must be a {expected}, not {type(value).__name__}.")
    return value


def _check_declaration(cls: type[Tool]) -> None:
    """Fail at import time when a tool's declaration is inconsistent: that is our bug, not the model's."""
    params = cls.parameters
    if params.get("type") != "object":
        raise TypeError(f"tool {cls.name}: parameters must be a JSON schema of type object")
    missing = [key for key in params.get("required", []) if key not in params.get("properties", {})]
    if missing:
        raise TypeError(f"tool {cls.name}: required argument {missing[0]} is not declared")
    if not cls.description:
        raise TypeError(f"tool {cls.name}: a description is required")


class ToolSet:
    """The tools of one run, by name."""

    def __init__(self, tools: Iterable[Tool]):
        self.tools = {tool.name: tool for tool in tools}

    def specs(self) -> list[ToolSpec]:
        return [tool.spec for tool in self.tools.values()]

    def get(self, name: str) -> Tool | None:
        return self.tools.get(name)

    def run(self, call: ToolCall, context: ToolContext) -> ToolResult:
        """Run one call. The model's mistakes come back as a result with ok=False; our bugs raise."""
        tool = self.tools.get(call.name)
        if tool is None:
            names = ", ".join(self.tools)
            return ToolResult(f"There is no tool named {call.name!r}. The tools are: {names}.", "unknown tool", ok=False)
        try:
            return tool.run(tool.validate(call.arguments), context)
        except ToolError as error:
            return ToolResult(f"Error: {error}", str(error).split("\n")[0], ok=False)

    def write_content(self, call: ToolCall, content: str, context: ToolContext) -> ToolResult:
        """Finish `call`, whose result asked for content, with `content`; the model's mistakes come back as a result."""
        try:
            return self.tools[call.name].write_content(call.arguments, content, context)
        except ToolError as error:
            return ToolResult(f"Error: {error}", str(error).split("\n")[0], ok=False)

    def names(self) -> Sequence[str]:
        return list(self.tools)
