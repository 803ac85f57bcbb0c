"""Every prompt template renders strictly, and a missing variable is an error."""

from __future__ import annotations

import jinja2
import pytest

from agent.chat.parse import parse_reply
from agent.prompts import render_prompt, template_names

SAMPLE_VARIABLES = {"task": "Build a game", "problems": ["Bad call."], "name": "write_file", "failure": "test failed", "rounds_left": 2, "tools": [], "tool_names": ["finish"], "action": "read_file path=\"a.txt\"", "times": 2, "status": "interrupted", "step": "Write game.py", "done": 1, "number": 2, "files": ["game.py"], "detail": "", "path": "a.py", "truncated": False, "unclosed": False, "content": "x = 1\n", "language": "python", "how": "block", "direct": False}


def test_every_template_renders():
    names = template_names()

    assert "system" in names
    assert "plan" in names
    for name in names:
        assert render_prompt(name, **SAMPLE_VARIABLES).strip(), name


def test_missing_variable_raises():
    with pytest.raises(jinja2.UndefinedError):
        render_prompt("plan")


def test_templates_hold_no_runnable_call():
    """A small model copies examples word for word: no template text may parse as a call that runs."""
    from tools import default_toolset

    specs = default_toolset().specs()
    for name in template_names():
        parsed = parse_reply(render_prompt(name, **SAMPLE_VARIABLES), specs)
        assert parsed.calls == [], name
