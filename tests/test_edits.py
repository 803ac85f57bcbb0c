"""Edits that a careful person would apply, file encodings, fenced writes and binary files."""

from __future__ import annotations

import pytest

from agent.config import Settings
from agent.sandbox import Sandbox
from agent.tool import ToolContext, ToolError
from agent.workspace import Workspace
from tools.edits import apply_edit, strip_line_numbers, visible
from tools.files import EditFile, ReadFile, WriteFile


@pytest.fixture
def context(tmp_path):
    workspace = Workspace(tmp_path / "ws")
    workspace.create()
    return ToolContext(workspace, Sandbox(workspace.root), Settings())


def edit(context, path: str, search: str, replace: str):
    return EditFile().run({"path": path, "search": search, "replace": replace}, context)


def test_crlf_file_edited_with_lf_search(context):
    target = context.workspace.root / "config.ini"
    target.write_bytes(b"[main]\r\nname = old\r\nsize = 3\r\n")

    edit(context, "config.ini", "name = old\nsize = 3\n", "name = new\nsize = 4\n")

    assert target.read_bytes() == b"[main]\r\nname = new\r\nsize = 4\r\n"


def test_crlf_partial_line_search(context):
    target = context.workspace.root / "a.txt"
    target.write_bytes(b"alpha beta\r\ngamma delta\r\n")

    edit(context, "a.txt", "beta\ngamma", "BETA\nGAMMA")

    assert target.read_bytes() == b"alpha BETA\r\nGAMMA delta\r\n"


def test_tab_file_edited_with_space_search(context):
    target = context.workspace.root / "app.py"
    target.write_text("def total(items):\n\tresult = 0\n\tfor item in items:\n\t\tresult += item\n\treturn result\n")
    search = "    for item in items:\n        result += item\n"
    replace = "    for item in items:\n        if item > 0:\n            result += item\n"

    result = edit(context, "app.py", search, replace)

    expected = "def total(items):\n\tresult = 0\n\tfor item in items:\n\t\tif item > 0:\n\t\t\tresult += item\n\treturn result\n"
    assert target.read_text() == expected
    assert "indentation" in result.output


def test_deeper_file_indentation_is_kept(context):
    target = context.workspace.root / "game.py"
    target.write_text("class Game:\n    def score(self):\n        return 1\n")

    edit(context, "game.py", "def score(self):\n    return 1\n", "def score(self):\n    total = 2\n    return total\n")

    assert target.read_text() == "class Game:\n    def score(self):\n        total = 2\n        return total\n"


def test_line_number_prefixes_are_stripped(context):
    target = context.workspace.root / "a.py"
    target.write_text("x = 1\ny = 2\nz = 3\n")

    edit(context, "a.py", "   2  y = 2\n   3  z = 3", "   2  y = 20\n   3  z = 30")

    assert target.read_text() == "x = 1\ny = 20\nz = 30\n"


def test_partly_numbered_text_is_kept():
    text = "   1  first\nsecond"

    assert strip_line_numbers(text) == text
    assert strip_line_numbers("   9  a\n  10  b") == "a\nb"


def test_edit_keeps_final_newline(context):
    target = context.workspace.root / "a.py"
    target.write_text("x = 1\ny = 2\n")

    edit(context, "a.py", "y = 2\n", "y = 3")

    assert target.read_text() == "x = 1\ny = 3\n"


def test_no_match_shows_closest_lines_with_visible_whitespace(context):
    target = context.workspace.root / "a.py"
    target.write_text("def add(a, b):\n\treturn a + b  \n\nprint(add(1, 2))\n")

    with pytest.raises(ToolError) as raised:
        edit(context, "a.py", "def add(a, b):\n    return a - b\n", "x")

    message = str(raised.value)
    assert "nothing was changed" in message
    assert "   2  →return a + b··" in message
    assert target.read_text() == "def add(a, b):\n\treturn a + b  \n\nprint(add(1, 2))\n"


def test_several_matches_change_nothing(context):
    target = context.workspace.root / "a.py"
    target.write_text("if a:\n    x = 1\nif b:\n\tx = 1\n")

    with pytest.raises(ToolError, match=r"matches 2 places .*lines 2, 4"):
        edit(context, "a.py", "x = 1\n", "x = 2\n")
    assert target.read_text() == "if a:\n    x = 1\nif b:\n\tx = 1\n"


def test_deleting_lines_leaves_no_blank_line():
    applied = apply_edit("a\n    b\nc\n", "  b\n", "", "f.txt")

    assert applied.text == "a\nc\n"


def test_visible_marks_tabs_trailing_spaces_and_cr():
    assert visible("\tx = 1  \r") == "→x = 1··␍"


def test_write_unwraps_python_fence(context):
    content = "```python\nprint('hello')\n```\n"

    result = WriteFile().run({"path": "hello.py", "content": content}, context)

    assert (context.workspace.root / "hello.py").read_text() == "print('hello')\n"
    assert "fences" in result.output


def test_write_markdown_with_fences_is_byte_for_byte(context):
    content = "```bash\npip install x\n```\n\nSome text.\n\n```python\nprint(1)\n```\n"
    single = "```\nonly a block\n```\n"

    WriteFile().run({"path": "README.md", "content": content}, context)
    WriteFile().run({"path": "NOTES.md", "content": single}, context)

    assert (context.workspace.root / "README.md").read_bytes() == content.encode()
    assert (context.workspace.root / "NOTES.md").read_bytes() == single.encode()


def test_write_keeps_inner_fences_of_code(context):
    content = 'DOC = """\n```\nexample\n```\n"""\n'

    WriteFile().run({"path": "doc.py", "content": content}, context)

    assert (context.workspace.root / "doc.py").read_text() == content


def test_read_png_is_refused(context):
    (context.workspace.root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))

    for tool, arguments in ((ReadFile(), {}), (EditFile(), {"search": "a", "replace": "b"})):
        with pytest.raises(ToolError, match="binary file \\(a PNG image\\)"):
            tool.run({"path": "logo.png", **arguments}, context)


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("bom8.txt", b"\xef\xbb\xbfname = caf\xc3\xa9\n", b"\xef\xbb\xbfname = th\xc3\xa9\n"),
        ("utf16.txt", "\ufeffname = café\n".encode("utf-16-le"), "\ufeffname = thé\n".encode("utf-16-le")),
        ("utf16be.txt", "\ufeffname = café\n".encode("utf-16-be"), "\ufeffname = thé\n".encode("utf-16-be")),
        ("latin1.txt", "name = café\n".encode("latin-1"), "name = thé\n".encode("latin-1")),
    ],
)
def test_edit_writes_back_in_file_encoding(context, name, raw, expected):
    target = context.workspace.root / name
    target.write_bytes(raw)

    shown = ReadFile().run({"path": name}, context)
    edit(context, name, "café", "thé")

    assert shown.output == "   1  name = café"
    assert target.read_bytes() == expected


def test_latin1_file_rejects_unstorable_character(context):
    target = context.workspace.root / "old.txt"
    target.write_bytes("name = café\n".encode("latin-1"))

    with pytest.raises(ToolError, match="latin-1, which cannot hold"):
        edit(context, "old.txt", "café", "caf→")
    assert target.read_bytes() == "name = café\n".encode("latin-1")
