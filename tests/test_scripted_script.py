"""The scripted engine's script file: every line's shape is checked before a run starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.engines.scripted import load_script
from agent.errors import UsageError

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
GOOD = '{"tool_calls": [{"name": "write_file", "arguments": {"path": "a.txt", "content": "x"}}]}'


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"tool_calls": [{"arguments": {}}]}', 'tool call 1 needs "name"'),
        ('{"tool_calls": [{"name": "", "arguments": {}}]}', 'tool call 1 needs "name"'),
        ('{"tool_calls": "write_file"}', '"tool_calls" must be a list'),
        ('{"text": 5}', '"text" must be a string, got a number'),
        ('{"tool_calls": [{"name": "read_file", "arguments": "path=a.txt"}]}', '"arguments" must be an object'),
        ('{"tool_calls": [{"name": "read_file", "arguments": ["a.txt"]}]}', '"arguments" must be an object'),
        ('{"tool_calls": [{"name": "read_file", "id": 3}]}', '"id" must be a string'),
        ('{"tool_calls": ["read_file"]}', "tool call 1 must be an object"),
        ('{"text": "hi", "txt": "typo"}', "unknown key 'txt' in a reply; allowed keys: text, tool_calls."),
        ('{"tool_calls": [{"name": "read_file", "args": {}}]}', "unknown key 'args' in a tool call; allowed keys: arguments, id, name."),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, line, expected):
    script = tmp_path / "s.jsonl"
    script.write_text(f'{{"text": "plan"}}\n\n{line}\n')
    with pytest.raises(UsageError) as raised:
        load_script(script)
    message = str(raised.value)
    assert message.startswith(f"{script}:3")
    assert expected in message


def test_malformed_line_stops_build_before_writing(tmp_path):
    script = tmp_path / "s.jsonl"
    script.write_text(GOOD + '\n{"tool_calls": [{"arguments": {}}]}\n')
    workspace = tmp_path / "ws"

    result = runner.invoke(app, ["build", "Do it", "--engine", "scripted", "--script", str(script), "--workspace", str(workspace)])

    assert result.exit_code == 2
    assert f"{script}:2: tool call 1 needs" in result.output
    assert "Traceback" not in result.output
    assert not (workspace / "a.txt").exists()


def test_well_formed_lines_are_kept_as_written(tmp_path):
    script = tmp_path / "s.jsonl"
    script.write_text('{"text": "plan"}\n' + GOOD + '\n{"tool_calls": [{"id": "c1", "name": "finish", "arguments": {}}], "text": ""}\n')
    replies = load_script(script)
    assert [sorted(reply) for reply in replies] == [["text"], ["tool_calls"], ["text", "tool_calls"]]


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*/replay.jsonl")), ids=lambda path: path.parent.name)
def test_shipped_example_scripts_pass_the_checks(example):
    assert load_script(example)
