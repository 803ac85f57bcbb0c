"""The quick syntax check that write_file and edit_file run on the file they wrote."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agent.config import Settings
from agent.sandbox import Sandbox
from agent.tool import ToolContext
from agent.workspace import Workspace
from tools.files import EditFile, WriteFile
from tools.syntax import requote_python_string, syntax_problem

needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")


@pytest.fixture
def context(tmp_path):
    workspace = Workspace(tmp_path / "ws")
    workspace.create()
    return ToolContext(workspace, Sandbox(workspace.root), Settings())


def test_python_error_names_line():
    assert syntax_problem(Path("a.py"), "x = 1\ndef f(:\n") == "Python syntax error at line 2: invalid syntax in `def f(:`."


def test_python_unterminated_string_names_line_and_cause():
    content = "import re\nwords = re.findall(r'[a-z]+(?:'[a-z]+)*', text)\n"

    problem = syntax_problem(Path("a.py"), content)

    assert problem.startswith("Python syntax error at line 2: unterminated string literal")
    assert "in `words = re.findall(r'[a-z]+(?:'[a-z]+)*', text)`" in problem
    assert "a quote character inside the string ends it early" in problem
    assert syntax_problem(Path("a.py"), "x = 1\n") == ""


@needs_node
def test_inline_script_error_names_page_line():
    page = "<html>\n<body>\n<script>\nlet x = ;\n</script>\n</body>\n</html>\n"

    problem = syntax_problem(Path("index.html"), page)

    assert problem.startswith("JavaScript SyntaxError")
    assert problem.endswith("at line 4.")
    assert syntax_problem(Path("index.html"), page.replace("let x = ;", "let x = 1;")) == ""


def test_other_files_are_not_checked():
    assert syntax_problem(Path("notes.txt"), "def f(:") == ""


def test_write_keeps_broken_file_and_reports_error(context):
    result = WriteFile().run({"path": "game.py", "content": "def f(:\n    pass\n"}, context)

    assert (context.workspace.root / "game.py").exists()
    assert result.ok is False
    assert "Python syntax error at line 1" in result.output
    assert result.changed == ["game.py"]


def test_edit_that_breaks_file_is_reported(context):
    (context.workspace.root / "game.py").write_text("def f():\n    return 1\n")

    result = EditFile().run({"path": "game.py", "search": "return 1", "replace": "return (1"}, context)

    assert result.ok is False
    assert "Python syntax error" in result.output


def test_placeholder_comment_is_reported():
    page = "<script>\n    // Your JavaScript code goes here\n</script>\n"

    problem = syntax_problem(Path("index.html"), page)

    assert problem.startswith("line 2 is a placeholder")
    assert syntax_problem(Path("a.py"), "x = 1\n# the logic goes here\n").startswith("line 2 is a placeholder")
    assert syntax_problem(Path("a.py"), "# TODO: handle errors\nx = 1\n") == ""


@pytest.mark.parametrize(
    "placeholder",
    ["pass  # your code here", "# ... rest of the logic ...", "# ... existing code ...", "# rest of the functions", "# add the game logic here"],
)
def test_placeholder_comment_forms(placeholder):
    problem = syntax_problem(Path("a.py"), f"def play():\n    deck = []\n    {placeholder}\n\nplay()\n")

    assert problem.startswith("line 3 is a placeholder")


@pytest.mark.parametrize(
    "comment",
    ["# the rest of this file parses input", "# skip the rest", "# put the cards here", "# the logic of scoring: aces count 11"],
)
def test_placeholder_lookalike_comments_pass(comment):
    assert syntax_problem(Path("a.py"), f"def play():\n    return 1\n    {comment}\n\nplay()\n") == ""


def test_leftover_comment_above_real_code_is_not_a_placeholder():
    page = "<script>\n    // Your JavaScript code goes here\n    let deck = [];\n</script>\n"

    assert syntax_problem(Path("index.html"), page) == ""
    assert syntax_problem(Path("a.py"), "def f():\n    pass\n    # the logic goes here\n\ndef g():\n    return 1\n").startswith("line 3")


@needs_node
def test_json_script_element_is_not_javascript():
    page = '<html>\n<script type="application/json">{"a": 1}</script>\n<script type="module">let x = 1;</script>\n</html>\n'

    assert syntax_problem(Path("index.html"), page) == ""
    assert syntax_problem(Path("index.html"), page.replace("let x = 1;", "let x = ;")).startswith("JavaScript SyntaxError")


@pytest.mark.parametrize(
    ("line", "fixed"),
    [
        ("words = re.findall(r'[a-z]+(?:'[a-z]+)*', text)", "words = re.findall(r\"[a-z]+(?:'[a-z]+)*\", text)"),
        ("d = {'a': 'it's'}", "d = {'a': \"it's\"}"),
        ('say("a "b" c")', 'say("a "b" c")'),
    ],
)
def test_inner_quote_string_requoted(line, fixed):
    content, note = requote_python_string(Path("a.py"), f"import re\n{line}\nx = 1\n")

    assert content == f"import re\n{fixed}\nx = 1\n"
    assert (note != "") == (fixed != line)
    if note:
        assert note.startswith("Line 2 had a ' inside a string quoted with '")
        assert fixed in note


@pytest.mark.parametrize(
    "content",
    [
        "s = 'abc\n",  # only the closing quote is missing
        "b = 'it's' + 'y'\n",  # the quote Python reports ends another string: a guess could change the meaning
        "print('it's')  # don't\n",  # not an unterminated string to Python
        "x = 1\n",
    ],
)
def test_other_quote_errors_left_alone(content):
    assert requote_python_string(Path("a.py"), content) == (content, "")
    assert requote_python_string(Path("a.txt"), "w = 'it's'\n") == ("w = 'it's'\n", "")


def test_write_and_edit_requote(context):
    broken = "import re\nWORD = re.compile(r'[a-z]+(?:'[a-z]+)*')\n"

    written = WriteFile().run({"path": "words.py", "content": broken}, context)

    assert written.ok is True
    assert "Line 2 had a ' inside a string quoted with '" in written.output
    assert "one string requoted" in written.display
    assert (context.workspace.root / "words.py").read_text() == broken.replace("r'[a-z]+(?:'[a-z]+)*'", "r\"[a-z]+(?:'[a-z]+)*\"")

    edited = EditFile().run({"path": "words.py", "search": 'r"[a-z]+(?:\'[a-z]+)*"', "replace": "r'[a-z]+(?:'[a-z]+)*'"}, context)

    assert edited.ok is True
    assert "now quoted with \"" in edited.output
    assert "(?:'[a-z]+)*\")" in (context.workspace.root / "words.py").read_text()


@pytest.mark.parametrize(
    "content",
    [
        "print('Hello, ' + name + ')\n",  # the last closing quote is missing, no string contains a quote
        "x = 'a' + '\n",
        "x = 1\ry = 'it's'\r",  # lone carriage returns: Python's line numbers differ from split("\n")
    ],
)
def test_missing_closing_quote_not_requoted(content):
    assert requote_python_string(Path("a.py"), content) == (content, "")
