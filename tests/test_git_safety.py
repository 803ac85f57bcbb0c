"""Git safety: .git is out of the tools' and commands' reach, the agent's own git runs no program the
repository names, and uncommitted changes the agent may overwrite are saved first."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agent.checkpoints import SAVED_REF_PREFIX, Checkpointer
from agent.config import Settings
from agent.history import UndoRefused, diff_text, undo
from agent.sandbox import BwrapSandbox, CommandLimits, Sandbox
from agent.sandbox.bwrap import probe
from agent.tool import ToolContext
from agent.workspace import PathOutsideWorkspace, Workspace
from tools.files import EditFile, ListFiles, ReadFile, WriteFile
from tools.shell import RunCommand

RUN = "20261204-210000-abcd"
LATER_RUN = "20261204-220000-beef"
WORKS, REASON = probe()
needs_bwrap = pytest.mark.skipif(not WORKS, reason=f"bubblewrap cannot run on this machine: {REASON}")


pytestmark = pytest.mark.usefixtures("git_home")


@pytest.fixture
def marker(tmp_path):
    """A file outside the workspace that only an escaped command would create."""
    path = tmp_path / "outside" / "ESCAPED"
    path.parent.mkdir()
    yield path
    assert not path.exists(), f"a program named by the repository ran outside the sandbox: {path.read_text()!r}"


def git(repo: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=Dana User", "-c", "user.email=dana@example.com", *args]
    return subprocess.run(command, cwd=repo, check=True, capture_output=True, text=True).stdout


def git_bytes(repo: Path, *args: str) -> bytes:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True).stdout


def user_repo(path: Path, files: dict[str, str]) -> Path:
    path.mkdir()
    git(path, "init", "-q")
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "user's first commit")
    return path


def hostile_config(repo: Path, marker: Path) -> None:
    """Configure every program git may run from a repository's config or hooks to create `marker`."""
    run = f"echo ran >> {marker}"
    git(repo, "config", "core.fsmonitor", f"{run}; false")
    git(repo, "config", "core.pager", run)
    git(repo, "config", "diff.external", run)
    git(repo, "config", "filter.evil.clean", f"{run}; cat")
    git(repo, "config", "filter.evil.smudge", f"{run}; cat")
    git(repo, "config", "filter.evil.required", "true")
    git(repo, "config", "diff.evil.textconv", f"{run}; cat")
    hooks = repo / ".git" / "hooks"
    for hook in ("pre-commit", "post-commit", "reference-transaction", "post-checkout", "post-index-change"):
        (hooks / hook).write_text(f"#!/bin/sh\n{run}\n")
        (hooks / hook).chmod(0o755)
    (repo / ".gitattributes").write_text("*.txt filter=evil diff=evil\n")


def tool_context(workspace: Path, sandbox=None) -> ToolContext:
    space = Workspace(workspace)
    space.create()
    return ToolContext(space, sandbox or Sandbox(space.root), Settings())


def saved_refs(repo: Path) -> list[str]:
    return git(repo, "for-each-ref", "--format=%(refname)", "refs/gemma-agent/").split()


# -- the file tools -------------------------------------------------------------------------


@pytest.mark.parametrize("path", [".git", ".git/config", ".git/hooks/pre-commit", "sub/.git", "sub/.git/config",
                                  ".GIT/config", "sub/../.git/HEAD"])
def test_tools_refuse_git_paths(tmp_path, path):
    repo = user_repo(tmp_path / "repo", {"app.py": "x = 1\n"})
    (repo / "sub").mkdir()
    (repo / "sub" / ".git").write_text("gitdir: ../.git\n")
    context = tool_context(repo)
    before = (repo / ".git" / "config").read_bytes()

    for tool, arguments in [
        (ReadFile(), {"path": path}),
        (WriteFile(), {"path": path, "content": "[core]\n\tfsmonitor = touch /tmp/x\n"}),
        (EditFile(), {"path": path, "old": "bare = false", "new": "fsmonitor = touch /tmp/x"}),
        (ListFiles(), {"path": path}),
    ]:
        with pytest.raises(PathOutsideWorkspace, match=r"inside \.git"):
            tool.run(arguments, context)
    assert (repo / ".git" / "config").read_bytes() == before
    assert (repo / "sub" / ".git").read_text() == "gitdir: ../.git\n"


def test_tools_refuse_symlink_into_git(tmp_path):
    repo = user_repo(tmp_path / "repo", {"app.py": "x = 1\n"})
    (repo / "settings").symlink_to(".git")
    (repo / "notes.txt").symlink_to(".git/config")
    context = tool_context(repo)

    for path in ("settings/config", "notes.txt"):
        with pytest.raises(PathOutsideWorkspace, match=r"inside \.git"):
            WriteFile().run({"path": path, "content": "[core]\n"}, context)
    assert ReadFile().run({"path": "app.py"}, context).ok


# -- the agent's own git calls ------------------------------------------------------------------


def test_checkpoint_diff_undo_run_no_configured_program(tmp_path, marker):
    repo = user_repo(tmp_path / "repo", {"notes.txt": "one\n", ".gitattributes": "*.txt filter=evil diff=evil\n"})
    hostile_config(repo, marker)
    checkpointer = Checkpointer(repo)
    checkpointer.begin_run(RUN, "task")

    (repo / "notes.txt").write_text("one\ntwo\n")
    (repo / "new.txt").write_text("fresh\n")
    step = checkpointer.commit_step(RUN, 1, ["notes.txt", "new.txt"], "Add lines")
    checkpointer.end_run(RUN, "done")

    assert step.commit is not None and sorted(step.committed) == ["new.txt", "notes.txt"]
    assert git_bytes(repo, "cat-file", "blob", f"{step.commit}:notes.txt") == b"one\ntwo\n"
    assert "+two" in diff_text(repo)
    undo(repo, steps=1)
    assert (repo / "notes.txt").read_text() == "one\n"
    assert not (repo / "new.txt").exists()


def test_hostile_config_would_run_without_the_safety_options(tmp_path, marker):
    """The same config does run programs under plain git, so the test above can fail."""
    repo = user_repo(tmp_path / "repo", {"notes.txt": "one\n"})
    hostile_config(repo, marker)
    (repo / "notes.txt").write_text("two\n")

    subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True)

    assert marker.exists()
    marker.unlink()


def test_commit_stores_raw_content_without_clean_filter(tmp_path, marker):
    repo = user_repo(tmp_path / "repo", {"keep.txt": "k\n"})
    git(repo, "config", "filter.upper.clean", "tr a-z A-Z")
    (repo / ".gitattributes").write_text("*.txt filter=upper\n")
    checkpointer = Checkpointer(repo)
    checkpointer.begin_run(RUN, "task")

    (repo / "low.txt").write_text("lower case\n")
    (repo / "run.sh").write_text("#!/bin/sh\n")
    (repo / "run.sh").chmod(0o755)
    (repo / "link").symlink_to("low.txt")
    step = checkpointer.commit_step(RUN, 1, ["low.txt", "run.sh", "link"], "Add files")

    assert git_bytes(repo, "cat-file", "blob", f"{step.commit}:low.txt") == b"lower case\n"
    modes = {line.split("\t")[1]: line.split()[0] for line in git(repo, "ls-tree", step.commit).splitlines()}
    assert modes == {"keep.txt": "100644", "link": "120000", "low.txt": "100644", "run.sh": "100755"}
    assert git_bytes(repo, "cat-file", "blob", f"{step.commit}:link") == b"low.txt"


# -- the sandbox ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [
    "git config core.fsmonitor 'echo ESCAPED > MARKER; false'",
    "printf '[core]\\n\\tfsmonitor = echo ESCAPED > MARKER\\n' >> .git/config",
    "printf '#!/bin/sh\\necho ESCAPED > MARKER\\n' > .git/hooks/reference-transaction",
    "chmod +x .git/config",
    "git config filter.evil.clean 'echo ESCAPED > MARKER; cat' && echo '* filter=evil' > .gitattributes",
    "mv .git .git-old && mkdir .git",
    "rm -rf .git && git init -q . && git config core.fsmonitor 'echo ESCAPED > MARKER; false'",
], ids=["git-config", "append-config", "hook", "hook-mode", "filter", "replace", "reinit"])
@pytest.mark.sandbox
@needs_bwrap
def test_sandboxed_command_cannot_change_git(tmp_path, marker, command):
    workspace = tmp_path / "ws"
    # The sandbox exists before the checkpoints create the repository, as in a real run.
    box = BwrapSandbox(workspace, limits=CommandLimits(timeout=20))
    try:
        checkpointer = Checkpointer(workspace)
        checkpointer.begin_run(RUN, "task")
        config = (workspace / ".git" / "config").read_bytes()
        context = tool_context(workspace, box)

        result = RunCommand().run({"command": command.replace("MARKER", str(marker))}, context)

        assert not result.ok, result.output
        assert "Read-only file system" in result.output or "busy" in result.output, result.output
        assert (workspace / ".git" / "config").read_bytes() == config
        assert not (workspace / ".git" / "hooks" / "reference-transaction").exists()
        (workspace / "app.py").write_text("x = 1\n")
        step = checkpointer.commit_step(RUN, 1, ["app.py"], "Add app")
        assert step.committed == ["app.py"]
    finally:
        box.close()


@pytest.mark.sandbox
@needs_bwrap
def test_git_commit_in_sandbox_fails_with_a_note(tmp_path):
    repo = user_repo(tmp_path / "repo", {"app.py": "x = 1\n"})
    box = BwrapSandbox(repo, limits=CommandLimits(timeout=20))
    try:
        result = RunCommand().run({"command": "echo y > b.txt && git add b.txt"}, tool_context(repo, box))
    finally:
        box.close()

    assert not result.ok
    assert "gemma-agent commits each step itself" in result.output
    assert (repo / "b.txt").exists()


# -- saving the user's uncommitted changes -----------------------------------------------------


def test_overwritten_unstaged_edit_is_recoverable_byte_for_byte(tmp_path):
    repo = user_repo(tmp_path / "repo", {"mine.txt": "original\n", "other.txt": "o\n"})
    mine = "my edit, not committed\r\nwith bytes \xe9\n".encode("latin-1")
    (repo / "mine.txt").write_bytes(mine)
    git(repo, "add", "other.txt")
    head, index = git(repo, "rev-parse", "HEAD"), (repo / ".git" / "index").read_bytes()
    staged = git(repo, "diff", "--cached", "--name-only")
    checkpointer = Checkpointer(repo)

    notices = checkpointer.begin_run(RUN, "task")

    ref = f"{SAVED_REF_PREFIX}{RUN}"
    assert any(ref in notice and "git restore --source=" in notice for notice in notices), notices
    assert git(repo, "rev-parse", "HEAD") == head
    assert (repo / ".git" / "index").read_bytes() == index
    assert git(repo, "diff", "--cached", "--name-only") == staged
    assert (repo / "mine.txt").read_bytes() == mine

    WriteFile().run({"path": "mine.txt", "content": "the agent's version\n"}, tool_context(repo))
    step = checkpointer.commit_step(RUN, 1, ["mine.txt"], "Rewrite mine")

    assert step.commit is None
    [(path, reason)] = step.skipped
    assert path == "mine.txt"
    assert f"saved in {ref} (`git restore --source={ref} -- mine.txt`)" in reason
    assert git_bytes(repo, "cat-file", "blob", f"{ref}:mine.txt") == mine
    git(repo, "restore", f"--source={ref}", "--", "mine.txt")
    assert (repo / "mine.txt").read_bytes() == mine
    assert git(repo, "rev-parse", "HEAD") == head


def test_saved_copy_skips_secrets(tmp_path):
    repo = user_repo(tmp_path / "repo", {"a.txt": "a\n", "gone.txt": "g\n", "staged.txt": "s\n"})
    (repo / "staged.txt").write_text("staged change\n")
    git(repo, "add", "staged.txt")
    (repo / "gone.txt").unlink()
    (repo / "new.txt").write_text("untracked\n")
    (repo / ".env").write_text("TOKEN=1\n")
    (repo / ".gitignore").write_text("build/\n")
    (repo / "build").mkdir()
    (repo / "build" / "out.bin").write_text("ignored\n")

    notices = Checkpointer(repo).begin_run(RUN, "task")

    ref = f"{SAVED_REF_PREFIX}{RUN}"
    saved = set(git(repo, "ls-tree", "-r", "--name-only", ref).split())
    assert saved == {"a.txt", "staged.txt", "new.txt", ".gitignore"}
    assert git(repo, "show", f"{ref}:staged.txt") == "staged change\n"
    assert any(".env (looks like a secret" in notice for notice in notices), notices
    assert git(repo, "diff", "--cached", "--name-only").split() == ["staged.txt"]


def test_clean_tree_creates_no_saved_ref(tmp_path):
    repo = user_repo(tmp_path / "repo", {"a.txt": "a\n"})

    notices = Checkpointer(repo).begin_run(RUN, "task")

    assert saved_refs(repo) == []
    assert not any("Saved a copy" in notice for notice in notices)


def test_undo_refusal_names_the_saved_copy(tmp_path):
    repo = user_repo(tmp_path / "repo", {"app.py": "x = 1\n"})
    first = Checkpointer(repo)
    first.begin_run(RUN, "task")
    (repo / "app.py").write_text("x = 2\n")
    first.commit_step(RUN, 1, ["app.py"], "Change app")
    first.end_run(RUN, "done")
    (repo / "app.py").write_text("x = 3  # mine\n")
    Checkpointer(repo).begin_run(LATER_RUN, "task")

    with pytest.raises(UndoRefused) as refused:
        undo(repo, run=RUN)

    ref = f"{SAVED_REF_PREFIX}{LATER_RUN}"
    assert f"git restore --source={ref} -- FILE" in str(refused.value)
    assert git(repo, "show", f"{ref}:app.py") == "x = 3  # mine\n"
