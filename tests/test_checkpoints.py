"""Checkpoint commits in throwaway repositories, with no git config of the machine's leaking in."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agent.checkpoints import Checkpointer, step_message
from agent.errors import UsageError

RUN = "20261204-210000-abcd"


pytestmark = pytest.mark.usefixtures("git_home")


def git(repo: Path, *args: str) -> str:
    """Run git as the user would, with an identity given on the command line only."""
    command = ["git", "-c", "user.name=Dana User", "-c", "user.email=dana@example.com", *args]
    return subprocess.run(command, cwd=repo, check=True, capture_output=True, text=True).stdout


def user_repo(path: Path, files: dict[str, str]) -> Path:
    path.mkdir()
    git(path, "init", "-q")
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "user's first commit")
    return path


def files_in(repo: Path, commit: str) -> list[str]:
    output = git(repo, "diff-tree", "-r", "--no-commit-id", "--name-only", "--root", commit)
    return sorted(output.split())


def short_status(repo: Path) -> dict[str, str]:
    lines = git(repo, "status", "--porcelain", "--untracked-files=all").splitlines()
    return {line[3:]: line[:2] for line in lines}


def test_new_folder_becomes_repository(tmp_path):
    workspace = tmp_path / "project"
    checkpointer = Checkpointer(workspace)

    notices = checkpointer.begin_run(RUN, "write a game")

    assert (workspace / ".git").is_dir()
    assert any("Initialised a git repository" in notice for notice in notices)
    assert ".gemma-agent/" in (workspace / ".git" / "info" / "exclude").read_text().splitlines()
    assert not (workspace / ".gitignore").exists()


def test_agent_dir_ignored_by_git(tmp_path):
    workspace = tmp_path / "project"
    checkpointer = Checkpointer(workspace)
    checkpointer.begin_run(RUN, "task")
    (workspace / ".gemma-agent" / "runs").mkdir(parents=True)
    (workspace / ".gemma-agent" / "runs" / "trajectory.jsonl").write_text("{}\n")

    assert short_status(workspace) == {}


def test_existing_repository_used_as_is(tmp_path):
    repo = user_repo(tmp_path / "repo", {"app.py": "print(1)\n"})
    head = git(repo, "rev-parse", "HEAD").strip()

    notices = Checkpointer(repo).begin_run(RUN, "task")

    assert notices == []
    assert git(repo, "rev-parse", "HEAD").strip() == head
    assert git(repo, "rev-list", "--count", "HEAD").strip() == "1"


def test_step_commits_only_agent_files(tmp_path):
    repo = user_repo(tmp_path / "repo", {"app.py": "v1\n", "config.yaml": "a: 1\n", "old.txt": "old\n"})
    (repo / "config.yaml").write_text("a: 2\n")
    git(repo, "rm", "-q", "old.txt")
    checkpointer = Checkpointer(repo)

    notices = checkpointer.begin_run(RUN, "edit app")
    (repo / "app.py").write_text("v2\n")
    checkpoint = checkpointer.commit_step(RUN, 1, ["app.py"], "Update app.py")

    assert "modified: config.yaml" in notices
    assert "deleted (staged): old.txt" in notices
    assert checkpoint.commit == git(repo, "rev-parse", "HEAD").strip()
    assert checkpoint.committed == ["app.py"]
    assert files_in(repo, checkpoint.commit) == ["app.py"]
    assert short_status(repo) == {"config.yaml": " M", "old.txt": "D "}
    assert (repo / "config.yaml").read_text() == "a: 2\n"
    assert git(repo, "show", "HEAD:config.yaml") == "a: 1\n"
    assert git(repo, "show", "HEAD:old.txt") == "old\n"


def test_staged_change_of_user_stays_staged(tmp_path):
    repo = user_repo(tmp_path / "repo", {"app.py": "v1\n", "notes.md": "n1\n"})
    (repo / "notes.md").write_text("n2\n")
    git(repo, "add", "notes.md")
    checkpointer = Checkpointer(repo)
    checkpointer.begin_run(RUN, "task")

    (repo / "app.py").write_text("v2\n")
    checkpointer.commit_step(RUN, 1, ["app.py"], "Update app.py")

    assert git(repo, "diff", "--cached", "--name-only").split() == ["notes.md"]
    assert git(repo, "diff", "--name-only").split() == []


def test_commit_message_has_trailers(tmp_path):
    repo = user_repo(tmp_path / "repo", {"app.py": "v1\n"})
    checkpointer = Checkpointer(repo)
    checkpointer.begin_run(RUN, "task")

    (repo / "app.py").write_text("v2\n")
    checkpointer.commit_step(RUN, 3, ["app.py"], "Handle aces as 1 or 11\n\nThe hand total was wrong.")
    message = git(repo, "log", "-1", "--format=%B")
    trailers = git(repo, "log", "-1", "--format=%(trailers:only,unfold)")

    assert message.startswith("Handle aces as 1 or 11\n\nThe hand total was wrong.")
    assert f"Gemma-Agent-Run: {RUN}" in trailers
    assert "Gemma-Agent-Step: 3" in trailers


def test_commit_without_git_identity(tmp_path, git_home):
    workspace = tmp_path / "project"
    checkpointer = Checkpointer(workspace)
    checkpointer.begin_run(RUN, "task")

    (workspace / "game.py").write_text("print('hi')\n")
    checkpoint = checkpointer.commit_step(RUN, 1, ["game.py"], "Add game.py")

    assert checkpoint.commit
    assert git(workspace, "log", "-1", "--format=%an <%ae>|%cn") == "gemma-agent <gemma-agent@localhost>|gemma-agent\n"
    assert "user" not in (workspace / ".git" / "config").read_text()
    assert list(git_home.iterdir()) == []


def test_commit_keeps_user_as_committer(tmp_path):
    repo = user_repo(tmp_path / "repo", {"app.py": "v1\n"})
    git(repo, "config", "user.name", "Dana User")
    git(repo, "config", "user.email", "dana@example.com")
    checkpointer = Checkpointer(repo)
    checkpointer.begin_run(RUN, "task")

    (repo / "app.py").write_text("v2\n")
    checkpointer.commit_step(RUN, 1, ["app.py"], "Update app.py")

    assert git(repo, "log", "-1", "--format=%an|%cn") == "gemma-agent|Dana User\n"


def test_large_binary_secret_and_node_modules_skipped(tmp_path):
    workspace = tmp_path / "project"
    checkpointer = Checkpointer(workspace)
    checkpointer.begin_run(RUN, "task")
    with (workspace / "model.bin").open("wb") as handle:
        handle.truncate(95 * 1024 * 1024)
    (workspace / "node_modules" / "left-pad").mkdir(parents=True)
    (workspace / "node_modules" / "left-pad" / "index.js").write_text("module.exports = 1\n")
    (workspace / ".env").write_text("API_KEY=abc\n")
    (workspace / "src").mkdir()
    (workspace / "src" / "app.py").write_text("print(1)\n")

    changed = ["model.bin", "node_modules", ".env", "src/app.py"]
    checkpoint = checkpointer.commit_step(RUN, 1, changed, "Add the app")
    reasons = dict(checkpoint.skipped)

    assert files_in(workspace, checkpoint.commit) == ["src/app.py"]
    assert checkpoint.committed == ["src/app.py"]
    assert sorted(reasons) == [".env", "model.bin", "node_modules"]
    assert "larger than the 5.0 MiB limit (95.0 MiB)" in reasons["model.bin"]
    assert "node_modules/" in reasons["node_modules"]
    assert "secret" in reasons[".env"]


def test_node_modules_file_path_skipped(tmp_path):
    workspace = tmp_path / "project"
    checkpointer = Checkpointer(workspace)
    checkpointer.begin_run(RUN, "task")
    (workspace / "web" / "node_modules" / "x").mkdir(parents=True)
    (workspace / "web" / "node_modules" / "x" / "a.js").write_text("1\n")

    checkpoint = checkpointer.commit_step(RUN, 1, ["web/node_modules/x/a.js"], "Install x")

    assert checkpoint.commit is None
    assert checkpoint.skipped == [("web/node_modules/x/a.js", "inside node_modules/")]


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("logo.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "binary file"),
        ("deploy.pem", b"cert\n", "looks like a secret (the file name deploy.pem)"),
        ("id_ed25519", b"key\n", "looks like a secret (the file name id_ed25519)"),
        (".env.local", b"TOKEN=1\n", "looks like a secret (the file name .env.local)"),
        ("settings.py", b"KEY = '''\n-----BEGIN RSA PRIVATE KEY-----\nMIIE\n'''\n", "looks like a secret (it contains a private key)"),
        ("aws.txt", b"aws_access_key_id = AKIAABCDEFGHIJKLMNOP\n", "looks like a secret (it contains an AWS access key)"),
    ],
)
def test_file_skipped_with_reason(tmp_path, name, content, reason):
    workspace = tmp_path / "project"
    checkpointer = Checkpointer(workspace)
    checkpointer.begin_run(RUN, "task")
    (workspace / name).write_bytes(content)

    checkpoint = checkpointer.commit_step(RUN, 1, [name], "Add a file")

    assert checkpoint.commit is None
    assert checkpoint.skipped == [(name, reason)]


def test_env_example_committed(tmp_path):
    workspace = tmp_path / "project"
    checkpointer = Checkpointer(workspace)
    checkpointer.begin_run(RUN, "task")
    (workspace / ".env.example").write_text("API_KEY=\n")

    checkpoint = checkpointer.commit_step(RUN, 1, [".env.example"], "Document the settings")

    assert checkpoint.committed == [".env.example"]


def test_gitignored_file_skipped(tmp_path):
    repo = user_repo(tmp_path / "repo", {".gitignore": "dist/\n*.log\n", "app.py": "v1\n"})
    checkpointer = Checkpointer(repo)
    checkpointer.begin_run(RUN, "task")
    (repo / "dist").mkdir()
    (repo / "dist" / "bundle.js").write_text("x\n")
    (repo / "build.log").write_text("ok\n")
    (repo / "app.py").write_text("v2\n")

    checkpoint = checkpointer.commit_step(RUN, 1, ["dist/bundle.js", "build.log", "app.py"], "Build")

    assert checkpoint.committed == ["app.py"]
    assert dict(checkpoint.skipped) == {
        "dist/bundle.js": "ignored by .gitignore:1: dist/",
        "build.log": "ignored by .gitignore:2: *.log",
    }


def test_size_limit_is_configurable(tmp_path):
    workspace = tmp_path / "project"
    checkpointer = Checkpointer(workspace, max_file_bytes=10)
    checkpointer.begin_run(RUN, "task")
    (workspace / "data.csv").write_text("a,b\n" * 10)

    checkpoint = checkpointer.commit_step(RUN, 1, ["data.csv"], "Add data")

    assert checkpoint.commit is None
    assert "checkpoint_max_file_bytes" in checkpoint.skipped[0][1]


def test_deleted_file_committed_as_deletion(tmp_path):
    repo = user_repo(tmp_path / "repo", {"app.py": "v1\n", "legacy/a.py": "a\n", "legacy/b.py": "b\n"})
    checkpointer = Checkpointer(repo)
    checkpointer.begin_run(RUN, "task")
    (repo / "app.py").unlink()
    for name in ("a.py", "b.py"):
        (repo / "legacy" / name).unlink()
    (repo / "legacy").rmdir()

    checkpoint = checkpointer.commit_step(RUN, 1, ["app.py", "legacy"], "Remove old code")

    assert checkpoint.committed == ["app.py", "legacy/a.py", "legacy/b.py"]
    assert git(repo, "ls-files").split() == []
    assert short_status(repo) == {}


def test_user_edited_file_left_alone(tmp_path):
    repo = user_repo(tmp_path / "repo", {"app.py": "v1\n", "util.py": "u1\n"})
    (repo / "app.py").write_text("v1 user\n")
    checkpointer = Checkpointer(repo)
    checkpointer.begin_run(RUN, "task")

    (repo / "app.py").write_text("v1 user\nagent\n")
    (repo / "util.py").write_text("u2\n")
    checkpoint = checkpointer.commit_step(RUN, 1, ["app.py", "util.py"], "Edit both")

    assert checkpoint.committed == ["util.py"]
    assert checkpoint.skipped[0][0] == "app.py"
    assert "uncommitted changes" in checkpoint.skipped[0][1]
    assert git(repo, "show", "HEAD:app.py") == "v1\n"


def test_unchanged_files_make_no_commit(tmp_path):
    repo = user_repo(tmp_path / "repo", {"app.py": "v1\n"})
    checkpointer = Checkpointer(repo)
    checkpointer.begin_run(RUN, "task")
    (repo / "app.py").write_text("v1\n")

    checkpoint = checkpointer.commit_step(RUN, 1, ["app.py"], "Rewrite app.py unchanged")

    assert checkpoint.commit is None
    assert git(repo, "rev-list", "--count", "HEAD").strip() == "1"


def test_branch_mode_keeps_user_branch(tmp_path):
    repo = user_repo(tmp_path / "repo", {"app.py": "v1\n", "config.yaml": "a: 1\n"})
    user_branch = git(repo, "branch", "--show-current").strip()
    head = git(repo, "rev-parse", "HEAD").strip()
    (repo / "config.yaml").write_text("a: 2\n")
    checkpointer = Checkpointer(repo, branch=True)

    notices = checkpointer.begin_run(RUN, "task")
    (repo / "app.py").write_text("v2\n")
    checkpoint = checkpointer.commit_step(RUN, 1, ["app.py"], "Update app.py")

    assert git(repo, "branch", "--show-current").strip() == f"gemma-agent/{RUN}"
    assert git(repo, "rev-parse", user_branch).strip() == head
    assert git(repo, "rev-parse", f"gemma-agent/{RUN}").strip() == checkpoint.commit
    assert short_status(repo) == {"config.yaml": " M"}
    assert any(f"git switch {user_branch}" in notice for notice in notices)


def test_branch_mode_rejects_existing_branch(tmp_path):
    repo = user_repo(tmp_path / "repo", {"app.py": "v1\n"})
    git(repo, "branch", f"gemma-agent/{RUN}")

    with pytest.raises(UsageError, match="already exists"):
        Checkpointer(repo, branch=True).begin_run(RUN, "task")


def test_folder_with_files_gets_baseline(tmp_path):
    workspace = tmp_path / "project"
    workspace.mkdir()
    (workspace / "main.py").write_text("print(1)\n")
    (workspace / ".env").write_text("TOKEN=1\n")
    checkpointer = Checkpointer(workspace)

    notices = checkpointer.begin_run(RUN, "task")
    (workspace / "main.py").write_text("print(2)\n")
    checkpoint = checkpointer.commit_step(RUN, 1, ["main.py"], "Print 2")

    assert "committed its 1 existing files" in notices[0]
    assert git(workspace, "rev-list", "--count", "HEAD").strip() == "2"
    assert checkpoint.committed == ["main.py"]
    assert short_status(workspace) == {".env": "??"}


def test_workspace_inside_larger_repository(tmp_path):
    repo = user_repo(tmp_path / "repo", {"README.md": "r\n", "web/index.html": "<p>1</p>\n"})
    checkpointer = Checkpointer(repo / "web")
    checkpointer.begin_run(RUN, "task")

    (repo / "web" / "index.html").write_text("<p>2</p>\n")
    checkpoint = checkpointer.commit_step(RUN, 1, ["index.html"], "Edit page")

    assert checkpoint.committed == ["index.html"]
    assert files_in(repo, checkpoint.commit) == ["web/index.html"]


def test_merge_in_progress_rejected(tmp_path):
    repo = user_repo(tmp_path / "repo", {"app.py": "v1\n"})
    (repo / ".git" / "MERGE_HEAD").write_text(git(repo, "rev-parse", "HEAD"))

    with pytest.raises(UsageError, match="middle of a merge"):
        Checkpointer(repo).begin_run(RUN, "task")


def test_commit_step_requires_begin_run(tmp_path):
    with pytest.raises(RuntimeError):
        Checkpointer(tmp_path).commit_step(RUN, 1, ["a.py"], "x")


def test_long_summary_shortened():
    message = step_message(RUN, 1, "x" * 200, ["a.py"], [("b.bin", "binary file")])

    assert len(message.splitlines()[0]) == 72
    assert "- b.bin: binary file" in message


def test_unusual_file_names_committed(tmp_path):
    workspace = tmp_path / "project"
    checkpointer = Checkpointer(workspace)
    checkpointer.begin_run(RUN, "task")
    names = ["spiel übersicht.py", "*.py", "-rf.txt"]
    for name in names:
        (workspace / name).write_text("x\n")

    checkpoint = checkpointer.commit_step(RUN, 1, names, "Add odd names")

    assert sorted(checkpoint.committed) == sorted(names)
    assert short_status(workspace) == {}
