"""`log`, `diff` and `undo` over checkpoints made in throwaway repositories."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from agent.checkpoints import Checkpointer
from agent.errors import UsageError
from agent.history import UndoRefused, diff_text, load_runs, log_json, log_text, undo

RUN = "20261204-210000-abcd"
LATER_RUN = "20261204-220000-ef01"


pytestmark = pytest.mark.usefixtures("git_home")


def git(repo: Path, *args: str) -> str:
    """Run git as the user would, with an identity given on the command line only."""
    command = ["git", "-c", "user.name=Dana User", "-c", "user.email=dana@example.com", *args]
    return subprocess.run(command, cwd=repo, check=True, capture_output=True, text=True).stdout


def snapshot(folder: Path) -> dict[str, str]:
    """Return every file of the work tree (outside .git and .gemma-agent) with its text."""
    return {
        path.relative_to(folder).as_posix(): path.read_text()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not {".git", ".gemma-agent"} & set(path.relative_to(folder).parts)
    }


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


def run_steps(repo: Path, run_id: str, steps: list[dict[str, str | None]]) -> list[str]:
    """Play a run: each step writes (text) or deletes (None) files, then checkpoints them."""
    checkpointer = Checkpointer(repo)
    checkpointer.begin_run(run_id, "build the game")
    commits = []
    for number, changes in enumerate(steps, start=1):
        for name, text in changes.items():
            if text is None:
                (repo / name).unlink()
            else:
                (repo / name).parent.mkdir(parents=True, exist_ok=True)
                (repo / name).write_text(text)
        checkpoint = checkpointer.commit_step(run_id, number, list(changes), f"Step {number} edits {', '.join(changes)}")
        commits.append(checkpoint.commit)
    checkpointer.end_run(run_id, "finished")
    return commits


@pytest.fixture
def repo(tmp_path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q")
    (path / "README.md").write_text("readme\n")
    (path / "old.py").write_text("old\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "user's first commit")
    return path


THREE_STEPS = [
    {"game.py": "v1\n"},
    {"game.py": "v2\n", "cards.py": "cards\n"},
    {"game.py": "v3\n", "old.py": None},
]


def test_undo_two_steps_restores_step_one(repo):
    commits = run_steps(repo, RUN, THREE_STEPS)
    after_step_one = {"README.md": "readme\n", "game.py": "v1\n", "old.py": "old\n"}

    result = undo(repo, steps=2)

    assert result.method == "reset"
    assert [step.step for step in result.undone] == [3, 2]
    assert snapshot(repo) == after_step_one
    assert head(repo) == commits[0]
    assert git(repo, "status", "--porcelain") == ""


def test_undo_refused_after_user_commit(repo):
    run_steps(repo, RUN, THREE_STEPS)
    undo(repo, steps=2)
    (repo / "game.py").write_text("v1 fixed by hand\n")
    git(repo, "commit", "-q", "-am", "Fix the game by hand")
    before = (head(repo), snapshot(repo))

    with pytest.raises(UndoRefused) as refusal:
        undo(repo, steps=1)

    assert "your commit" in str(refusal.value)
    assert "Fix the game by hand" in str(refusal.value)
    assert "game.py" in str(refusal.value)
    assert "\n" not in str(refusal.value)
    assert (head(repo), snapshot(repo)) == before


def test_undo_refused_on_uncommitted_edit(repo):
    run_steps(repo, RUN, THREE_STEPS)
    (repo / "cards.py").write_text("my own cards\n")

    with pytest.raises(UndoRefused, match="cards.py changed since"):
        undo(repo, steps=2)

    assert (repo / "cards.py").read_text() == "my own cards\n"
    assert (repo / "game.py").read_text() == "v3\n"


def test_undo_keeps_user_changes_elsewhere(repo):
    run_steps(repo, RUN, THREE_STEPS[:2])
    (repo / "README.md").write_text("readme, staged\n")
    git(repo, "add", "README.md")
    (repo / "README.md").write_text("readme, staged and more\n")
    (repo / "scratch.txt").write_text("mine\n")

    undo(repo, steps=1)

    assert git(repo, "status", "--porcelain") == "MM README.md\n?? scratch.txt\n"
    assert git(repo, "show", ":README.md") == "readme, staged\n"
    assert (repo / "README.md").read_text() == "readme, staged and more\n"
    assert not (repo / "cards.py").exists()


def test_undo_reverts_under_unrelated_user_commit(repo):
    run_steps(repo, RUN, THREE_STEPS[:2])
    (repo / "README.md").write_text("readme 2\n")
    git(repo, "commit", "-q", "-am", "Update the readme")
    user_commit = head(repo)

    result = undo(repo, steps=1)

    assert result.method == "revert"
    assert git(repo, "rev-parse", "HEAD~1").strip() == user_commit
    assert (repo / "game.py").read_text() == "v1\n"
    assert not (repo / "cards.py").exists()
    assert (repo / "README.md").read_text() == "readme 2\n"
    assert git(repo, "status", "--porcelain") == ""


def test_undo_reverts_published_steps(repo):
    run_steps(repo, RUN, THREE_STEPS[:2])
    git(repo, "update-ref", "refs/remotes/origin/main", "HEAD")

    result = undo(repo, steps=1)

    assert result.method == "revert"
    assert (repo / "game.py").read_text() == "v1\n"
    assert git(repo, "rev-list", "--count", "HEAD").strip() == "4"


def test_undo_skips_already_reverted_steps(repo):
    run_steps(repo, RUN, THREE_STEPS)
    git(repo, "update-ref", "refs/remotes/origin/main", "HEAD")
    undo(repo, steps=1)

    second = undo(repo, steps=1)

    assert [step.step for step in second.undone] == [2]
    assert snapshot(repo) == {"README.md": "readme\n", "game.py": "v1\n", "old.py": "old\n"}


def test_undo_whole_run(repo):
    run_steps(repo, RUN, THREE_STEPS[:1])
    after_first_run = snapshot(repo)
    run_steps(repo, LATER_RUN, [{"cards.py": "c1\n"}, {"cards.py": "c2\n", "rules.md": "r\n"}])

    result = undo(repo, run=LATER_RUN[:13])

    assert result.method == "reset"
    assert snapshot(repo) == after_first_run


def test_undo_older_run_under_newer_run(repo):
    run_steps(repo, RUN, [{"cards.py": "c1\n"}])
    run_steps(repo, LATER_RUN, [{"game.py": "g1\n"}])

    result = undo(repo, run=RUN)

    assert result.method == "revert"
    assert snapshot(repo) == {"README.md": "readme\n", "game.py": "g1\n", "old.py": "old\n"}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"steps": 1, "run": RUN}, "not both"),
        ({"steps": 0}, "1 or more"),
        ({"steps": 5}, "Only 3 gemma-agent step"),
        ({"run": "nosuchrun"}, "No run 'nosuchrun'"),
    ],
)
def test_undo_rejects_bad_usage(repo, arguments, message):
    run_steps(repo, RUN, THREE_STEPS)

    with pytest.raises(UsageError, match=message):
        undo(repo, **arguments)


def test_undo_without_steps(repo):
    with pytest.raises(UsageError, match="No gemma-agent steps to undo"):
        undo(repo)


def test_undo_outside_repository(tmp_path):
    with pytest.raises(UsageError, match="not a git repository"):
        undo(tmp_path)


def test_log_lists_runs_and_steps(repo):
    run_steps(repo, RUN, THREE_STEPS)
    run_steps(repo, LATER_RUN, [{"rules.md": "r\n"}])

    runs = load_runs(repo)

    assert [run.run_id for run in runs] == [LATER_RUN, RUN]
    assert [step.step for step in runs[1].steps] == [1, 2, 3]
    assert runs[1].steps[1].files == [("A", "cards.py"), ("M", "game.py")]
    assert runs[1].steps[2].files == [("M", "game.py"), ("D", "old.py")]
    assert runs[1].steps[0].subject == "Step 1 edits game.py"


def test_log_reads_trajectory(repo):
    run_steps(repo, RUN, THREE_STEPS[:2])
    trajectory = repo / ".gemma-agent" / "runs" / RUN / "trajectory.jsonl"
    trajectory.parent.mkdir(parents=True)
    events = [
        {"event": "run_start", "time": 100.0, "task": "Build blackjack", "run_id": RUN},
        {"event": "tool_call", "time": 103.5, "step": 1},
        {"event": "tool_call", "time": 110.0, "step": 2},
        {"event": "run_end", "time": 111.0, "status": "finished"},
    ]
    trajectory.write_text("".join(json.dumps(event) + "\n" for event in events))

    run = load_runs(repo)[0]
    text = log_text([run])

    assert (run.task, run.status, run.seconds) == ("Build blackjack", "finished", 11.0)
    assert [step.seconds for step in run.steps] == [3.5, 6.5]
    assert "task: Build blackjack" in text
    assert "step 2" in text
    assert "6.5 s" in text
    assert "A cards.py" in text


def test_log_lists_run_without_checkpoints(repo):
    trajectory = repo / ".gemma-agent" / "runs" / RUN / "trajectory.jsonl"
    trajectory.parent.mkdir(parents=True)
    trajectory.write_text(json.dumps({"event": "run_start", "time": 1.0, "task": "Explain"}) + "\n")

    runs = load_runs(repo)

    assert [(run.run_id, run.steps) for run in runs] == [(RUN, [])]
    assert "(no files changed)" in log_text(runs)


def test_log_json_round_trips(repo):
    run_steps(repo, RUN, THREE_STEPS[:1])

    data = json.loads(log_json(load_runs(repo)))

    assert data[0]["run_id"] == RUN
    assert data[0]["steps"][0]["files"] == [["A", "game.py"]]
    assert len(data[0]["steps"][0]["commit"]) == 40


def test_log_marks_undone_steps(repo):
    run_steps(repo, RUN, THREE_STEPS[:2])
    git(repo, "update-ref", "refs/remotes/origin/main", "HEAD")
    result = undo(repo, steps=1)

    steps = load_runs(repo)[0].steps

    assert steps[1].reverted_by == result.revert_commits[0]
    assert "undone by" in log_text(load_runs(repo))


def test_log_includes_run_branches(repo):
    user_branch = git(repo, "branch", "--show-current").strip()
    checkpointer = Checkpointer(repo, branch=True)
    checkpointer.begin_run(RUN, "task")
    (repo / "game.py").write_text("v1\n")
    checkpointer.commit_step(RUN, 1, ["game.py"], "Add game")
    git(repo, "switch", "-q", user_branch)

    assert [run.run_id for run in load_runs(repo)] == [RUN]


def test_log_empty_workspace(tmp_path):
    assert load_runs(tmp_path) == []
    assert log_text([]) == "No gemma-agent runs here yet."


def test_diff_of_step_and_run(repo):
    run_steps(repo, RUN, THREE_STEPS)

    step_two = diff_text(repo, f"{RUN}:2")
    step_three = diff_text(repo, "3")
    whole_run = diff_text(repo, RUN)

    assert "+++ b/cards.py" in step_two
    assert "-v1\n+v2" in step_two
    assert "deleted file mode" in step_three
    assert "-v2\n+v3" in step_three
    assert "new file mode" in whole_run
    assert "+v3" in whole_run
    assert "+cards" in whole_run
    assert "README.md" not in whole_run
    assert diff_text(repo) == whole_run


def test_diff_rejects_unknown_step(repo):
    run_steps(repo, RUN, THREE_STEPS[:1])

    with pytest.raises(UsageError, match="no checkpoint for step 7; its steps are 1"):
        diff_text(repo, "7")


def test_diff_without_runs(repo):
    with pytest.raises(UsageError, match="nothing to diff"):
        diff_text(repo)


def test_log_missing_folder_is_usage_error(tmp_path):
    from typer.testing import CliRunner

    from agent.cli import app

    missing = tmp_path / "nowhere"
    result = CliRunner().invoke(app, ["log", "-w", str(missing)])

    assert result.exit_code == 2
    assert f"Workspace folder not found: {missing}." in result.output
    assert "No gemma-agent runs" not in result.output
