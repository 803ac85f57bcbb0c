"""The file tools against a real workspace folder."""

from __future__ import annotations

import pytest

from agent.config import Settings
from agent.sandbox import Sandbox
from agent.tool import ToolContext, ToolError
from agent.workspace import Workspace
from tools.files import EditFile, ListFiles, ReadFile, SearchFiles, WriteFile


@pytest.fixture
def context(tmp_path):
    workspace = Workspace(tmp_path / "ws")
    workspace.create()
    return ToolContext(workspace, Sandbox(workspace.root), Settings())


def test_write_creates_folders_and_reports_change(context):
    result = WriteFile().run({"path": "src/app.py", "content": "x = 1\n"}, context)

    assert (context.workspace.root / "src/app.py").read_text() == "x = 1\n"
    assert result.changed == ["src/app.py"]


def test_write_outside_workspace_is_refused(context, tmp_path):
    for path in ("../outside.txt", str(tmp_path / "abs.txt")):
        with pytest.raises(ToolError, match="outside the workspace"):
            WriteFile().run({"path": path, "content": "x"}, context)
    assert not (tmp_path / "outside.txt").exists()
    assert not (tmp_path / "abs.txt").exists()


def test_symlink_out_of_workspace_is_refused(context, tmp_path):
    (tmp_path / "secret.txt").write_text("secret")
    (context.workspace.root / "link").symlink_to(tmp_path)

    with pytest.raises(ToolError, match="outside the workspace"):
        ReadFile().run({"path": "link/secret.txt"}, context)
    with pytest.raises(ToolError, match="outside the workspace"):
        WriteFile().run({"path": "link/new.txt", "content": "x"}, context)


def test_agent_folder_is_off_limits(context):
    with pytest.raises(ToolError, match=".gemma-agent"):
        WriteFile().run({"path": ".gemma-agent/runs/x", "content": "x"}, context)


def test_read_shows_numbered_range(context):
    (context.workspace.root / "a.txt").write_text("one\ntwo\nthree\n")

    result = ReadFile().run({"path": "a.txt", "start_line": 2, "end_line": 3}, context)

    assert result.output == "   2  two\n   3  three"


def test_read_missing_file_says_what_to_do(context):
    with pytest.raises(ToolError, match="does not exist yet. To create it, call write_file"):
        ReadFile().run({"path": "nope.txt"}, context)


def test_read_binary_is_refused(context):
    (context.workspace.root / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0")

    with pytest.raises(ToolError, match="binary"):
        ReadFile().run({"path": "image.png"}, context)


def test_edit_replaces_unique_match(context):
    (context.workspace.root / "a.py").write_text("a = 1\nb = 2\n")

    result = EditFile().run({"path": "a.py", "search": "b = 2", "replace": "b = 3"}, context)

    assert (context.workspace.root / "a.py").read_text() == "a = 1\nb = 3\n"
    assert result.changed == ["a.py"]


def test_edit_with_several_matches_changes_nothing(context):
    (context.workspace.root / "a.py").write_text("x = 1\nx = 1\n")

    with pytest.raises(ToolError, match="matches 2 places"):
        EditFile().run({"path": "a.py", "search": "x = 1", "replace": "x = 2"}, context)
    assert (context.workspace.root / "a.py").read_text() == "x = 1\nx = 1\n"


def test_edit_without_match_changes_nothing(context):
    (context.workspace.root / "a.py").write_text("x = 1\n")

    with pytest.raises(ToolError, match="not found"):
        EditFile().run({"path": "a.py", "search": "y = 1", "replace": "y = 2"}, context)
    assert (context.workspace.root / "a.py").read_text() == "x = 1\n"


def test_list_skips_git_and_agent_folders(context):
    root = context.workspace.root
    (root / "src").mkdir()
    (root / "src/a.py").write_text("")
    (root / ".git").mkdir()
    (root / ".git/HEAD").write_text("")

    result = ListFiles().run({}, context)

    assert result.output == "src/a.py"


def test_search_finds_lines_and_rejects_bad_regex(context):
    (context.workspace.root / "a.py").write_text("def add(a, b):\n    return a + b\n")

    result = SearchFiles().run({"pattern": r"def \w+"}, context)

    assert result.output == "a.py:1: def add(a, b):"
    with pytest.raises(ToolError, match="not a valid regular expression"):
        SearchFiles().run({"pattern": "("}, context)


def test_new_file_gets_normal_permissions(context):
    WriteFile().run({"path": "game.py", "content": "x = 1\n"}, context)

    mode = (context.workspace.root / "game.py").stat().st_mode & 0o777
    assert mode == 0o666 & ~_umask()


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.fixture
def outside_link(context, tmp_path):
    """A real file outside the workspace holding a secret, and a symlink `h` to it inside."""
    secret = tmp_path / "hostname"
    secret.write_text("secret-host-name\n")
    root = context.workspace.root
    (root / "a.txt").write_text("secret is not here\n")
    (root / "h").symlink_to(secret)
    return root / "h"


def test_list_marks_symlink_leading_outside(context, outside_link):
    result = ListFiles().run({}, context)

    assert result.output.splitlines() == ["a.txt", "h -> (outside the workspace)"]
    assert "hostname" not in result.output


def test_search_skips_symlink_leading_outside(context, outside_link):
    result = SearchFiles().run({"pattern": "secret"}, context)

    assert result.output == "a.txt:1: secret is not here"


def test_symlinks_inside_listed_by_own_name(context):
    root = context.workspace.root
    (root / "real.txt").write_text("hello\n")
    (root / "alias.txt").symlink_to(root / "real.txt")
    (root / "dangling").symlink_to(root / "gone.txt")

    listed = ListFiles().run({}, context).output.splitlines()
    found = SearchFiles().run({"pattern": "hello"}, context).output.splitlines()

    assert listed == ["alias.txt", "dangling", "real.txt"]
    assert found == ["alias.txt:1: hello", "real.txt:1: hello"]
