"""The agent's history read back from git: `gemma-agent log`, `diff` and `undo`.

Steps are found by their commit trailers; task, status and timings come from each run's trajectory
when it is still in `.gemma-agent/runs/`. Undo touches only the agent's commits and refuses, with the
reason, whenever it would discard a change of the user's.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from agent.checkpoints import (
    BASELINE_TRAILER,
    BRANCH_PREFIX,
    REVERTS_TRAILER,
    RUN_TRAILER,
    SAVED_REF_PREFIX,
    STEP_TRAILER,
)
from agent.errors import UsageError
from agent.gitrepo import CommitInfo, GitError, GitRepo, NotARepository
from agent.trajectory import TRAJECTORY_FILE, read_events
from agent.workspace import AGENT_DIR

log = logging.getLogger(__name__)

# Commits below HEAD that undo examines to find the agent's steps.
UNDO_SCAN_MAX = 1000
# A bare number up to this many digits names a step of the latest run; longer ones are run ids.
STEP_NUMBER_MAX_DIGITS = 6
AGENT_COMMIT_PATTERN = f"^({RUN_TRAILER}|{REVERTS_TRAILER}): "


class UndoRefused(UsageError):
    """Undo would discard a change of the user's, so nothing was changed."""


@dataclass
class StepRecord:
    """One checkpointed step: its commit, subject, the files it changed (status letter, path) and timings."""

    run_id: str
    step: int
    commit: str
    subject: str
    committed_at: int
    files: list[tuple[str, str]]
    seconds: float | None = None
    reverted_by: str | None = None


@dataclass
class RunRecord:
    """One run: its task and status (from the trajectory, when present), when it started, and its steps."""

    run_id: str
    task: str = ""
    status: str = ""
    started_at: float | None = None
    seconds: float | None = None
    steps: list[StepRecord] = field(default_factory=list)

    @property
    def sort_time(self) -> float:
        if self.started_at is not None:
            return self.started_at
        return min((step.committed_at for step in self.steps), default=0)


@dataclass
class UndoResult:
    """The outcome of an undo: `method` is "reset" (the branch moved back) or "revert" (new commits undo the steps)."""

    method: str
    undone: list[StepRecord]
    files: list[str]
    previous_head: str
    head: str
    revert_commits: list[str] = field(default_factory=list)

    def describe(self) -> list[str]:
        """Return the lines to show the user."""
        steps = ", ".join(f"step {step.step} of {step.run_id}" for step in self.undone)
        lines = [f"Undid {len(self.undone)} step(s): {steps}."]
        if self.method == "reset":
            lines.append(f"Moved the branch back to {self.head[:10]} and restored: {', '.join(self.files)}.")
        else:
            commits = ", ".join(commit[:10] for commit in self.revert_commits)
            lines.append(f"Added revert commit(s) {commits}, restoring: {', '.join(self.files)}.")
        lines.append(f"The previous state is commit {self.previous_head[:10]} (see `git reflog`).")
        return lines


# -- log ------------------------------------------------------------------------------------


def load_runs(workspace: Path) -> list[RunRecord]:
    """Return the runs of the workspace, newest first, each with its steps in order.

    Raises UsageError when the workspace folder does not exist, rather than reporting no runs.
    """
    given = workspace
    workspace = Path(workspace).expanduser().resolve()
    if not workspace.is_dir():
        raise UsageError(f"Workspace folder not found: {given}. Pass --workspace with the folder the agent worked in.")
    runs: dict[str, RunRecord] = {}
    for step in _load_steps(workspace):
        runs.setdefault(step.run_id, RunRecord(step.run_id)).steps.append(step)
    runs_dir = workspace / AGENT_DIR / "runs"
    if runs_dir.is_dir():
        for folder in sorted(runs_dir.iterdir()):
            if (folder / TRAJECTORY_FILE).is_file():
                runs.setdefault(folder.name, RunRecord(folder.name))

    for record in runs.values():
        record.steps.sort(key=lambda step: step.step)
        _add_trajectory(record, runs_dir / record.run_id / TRAJECTORY_FILE)
    return sorted(runs.values(), key=lambda record: record.sort_time, reverse=True)


def log_json(runs: list[RunRecord]) -> str:
    """Return the runs as a JSON array, for `gemma-agent log --json`."""
    return json.dumps([asdict(run) for run in runs], indent=2, ensure_ascii=False)


def log_text(runs: list[RunRecord]) -> str:
    """Return the runs as plain text, one block per run with a line per step and its files."""
    if not runs:
        return "No gemma-agent runs here yet."
    blocks = []
    for run in runs:
        lines = [_run_heading(run)]
        if run.task:
            lines.append(f"  task: {run.task.splitlines()[0][:100]}")
        for step in run.steps:
            lines.append(_step_line(step))
            lines += [f"      {status} {path}" for status, path in step.files]
        if not run.steps:
            lines.append("  (no files changed)")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _load_steps(workspace: Path) -> list[StepRecord]:
    try:
        repo = GitRepo.open(workspace)
    except NotARepository:
        return []
    revisions = ["HEAD", *repo.branches(f"{BRANCH_PREFIX}*")]
    commits = repo.log(*revisions, grep=AGENT_COMMIT_PATTERN)
    reverted = {commit.trailers[REVERTS_TRAILER]: commit.sha for commit in commits if REVERTS_TRAILER in commit.trailers}
    steps = [_step_record(repo, commit) for commit in commits if _is_step(commit)]
    for step in steps:
        step.reverted_by = reverted.get(step.commit)
    _fill_step_seconds_from_commits(steps)
    return steps


def _is_step(commit: CommitInfo) -> bool:
    return RUN_TRAILER in commit.trailers and commit.trailers.get(STEP_TRAILER, "").isdigit()


def _step_record(repo: GitRepo, commit: CommitInfo) -> StepRecord:
    return StepRecord(
        run_id=commit.trailers[RUN_TRAILER],
        step=int(commit.trailers[STEP_TRAILER]),
        commit=commit.sha,
        subject=commit.subject,
        committed_at=commit.time,
        files=repo.changed_files(commit.sha),
    )


def _fill_step_seconds_from_commits(steps: list[StepRecord]) -> None:
    """Time each step as the gap since the run's previous checkpoint; the trajectory refines it later."""
    previous: dict[str, int] = {}
    for step in sorted(steps, key=lambda item: (item.run_id, item.step)):
        if step.run_id in previous:
            step.seconds = float(step.committed_at - previous[step.run_id])
        previous[step.run_id] = step.committed_at


def _add_trajectory(record: RunRecord, path: Path) -> None:
    """Fill task, status, start, duration and per-step seconds from the run's trajectory, when present."""
    if not path.is_file():
        return
    events = [event for event in read_events(path) if isinstance(event.get("time"), (int, float))]
    if not events:
        return
    record.started_at = events[0]["time"]
    record.seconds = round(events[-1]["time"] - events[0]["time"], 3)
    record.task = next((str(event["task"]) for event in events if event.get("task")), record.task)
    record.status = next((str(event["status"]) for event in reversed(events) if event.get("status")), record.status)

    step_ends: dict[int, float] = {}
    for event in events:
        if isinstance(event.get("step"), int):
            step_ends[event["step"]] = max(step_ends.get(event["step"], 0.0), event["time"])
    for step in record.steps:
        if step.step in step_ends:
            start = step_ends.get(step.step - 1, record.started_at)
            step.seconds = round(step_ends[step.step] - start, 3)


def _run_heading(run: RunRecord) -> str:
    parts = [f"run {run.run_id}"]
    if run.sort_time:
        parts.append(datetime.fromtimestamp(run.sort_time).strftime("%Y-%m-%d %H:%M"))
    if run.status:
        parts.append(run.status)
    if run.seconds is not None:
        parts.append(f"{run.seconds:.1f} s")
    parts.append(f"{len(run.steps)} checkpointed step(s)")
    return "  ".join(parts)


def _step_line(step: StepRecord) -> str:
    timing = f"  {step.seconds:.1f} s" if step.seconds is not None else ""
    reverted = f"  (undone by {step.reverted_by[:10]})" if step.reverted_by else ""
    return f"  step {step.step}  {step.commit[:10]}  {step.subject}{timing}{reverted}"


# -- diff -----------------------------------------------------------------------------------


def diff_text(workspace: Path, target: str | None = None) -> str:
    """Return the patch of a run or a step: TARGET is RUN, RUN:N, or N (step N of the latest run)."""
    workspace = Path(workspace).expanduser().resolve()
    repo = _open_repository(workspace)
    runs = [run for run in load_runs(workspace) if run.steps]
    if not runs:
        raise UsageError(f"No gemma-agent checkpoints in {workspace}; there is nothing to diff.")

    run, step_number = _resolve_target(runs, target)
    if step_number is not None:
        step = next((step for step in run.steps if step.step == step_number), None)
        if step is None:
            numbers = ", ".join(str(step.step) for step in run.steps)
            raise UsageError(f"Run {run.run_id} has no checkpoint for step {step_number}; its steps are {numbers}.")
        return repo.diff(_first_parent(repo, step.commit), step.commit)

    files = sorted({path for step in run.steps for _, path in step.files})
    oldest, newest = _oldest_and_newest(repo, run.steps)
    return repo.diff(_first_parent(repo, oldest.commit), newest.commit, files)


def _resolve_target(runs: list[RunRecord], target: str | None) -> tuple[RunRecord, int | None]:
    if not target:
        return runs[0], None
    run_part, colon, step_part = target.rpartition(":")
    if colon:
        if not step_part.isdigit():
            raise UsageError(f"Invalid step {target!r}: write RUN:N, such as {runs[0].run_id}:2.")
        return find_run(runs, run_part), int(step_part)
    if target.isdigit() and len(target) <= STEP_NUMBER_MAX_DIGITS:
        return runs[0], int(target)
    return find_run(runs, target), None


def find_run(runs: list[RunRecord], name: str) -> RunRecord:
    """Return the run whose id is `name` or starts with it; raise UsageError when none or several match."""
    exact = [run for run in runs if run.run_id == name]
    matches = exact or [run for run in runs if run.run_id.startswith(name)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        known = ", ".join(run.run_id for run in runs[:5])
        raise UsageError(f"No run {name!r} with checkpoints here. Recent runs: {known or 'none'}.")
    raise UsageError(f"Run {name!r} is ambiguous; it matches {', '.join(run.run_id for run in matches)}.")


def _oldest_and_newest(repo: GitRepo, steps: list[StepRecord]) -> tuple[StepRecord, StepRecord]:
    """Order steps by commit ancestry rather than time, because several commits can share one second."""
    shas = {step.commit for step in steps}
    order = [commit.sha for commit in repo.log(*shas) if commit.sha in shas]
    by_sha = {step.commit: step for step in steps}
    return by_sha[order[-1]], by_sha[order[0]]


def _first_parent(repo: GitRepo, commit: str) -> str | None:
    parents = repo.log(commit, max_count=1)[0].parents
    return parents[0] if parents else None


# -- undo -----------------------------------------------------------------------------------


def undo(workspace: Path, *, steps: int | None = None, run: str | None = None) -> UndoResult:
    """Undo the last `steps` agent steps, or every step of `run`, on the checked-out branch.

    Moves the branch back when the agent's commits are the newest and unpublished; otherwise adds
    revert commits. Raises UndoRefused when a later commit or an uncommitted edit of the user's
    touches the same files, so nothing of the user's is lost.
    """
    if steps is not None and run is not None:
        raise UsageError("Give --steps or --run, not both.")
    if run is None and steps is None:
        steps = 1
    if steps is not None and steps < 1:
        raise UsageError(f"--steps must be 1 or more, got {steps}.")

    repo = _open_repository(Path(workspace).expanduser().resolve())
    operation = repo.operation_in_progress()
    if operation:
        raise UndoRefused(f"git is in the middle of {operation}. Finish or abort it, then run undo again.")

    chain = repo.log("HEAD", first_parent=True, max_count=UNDO_SCAN_MAX)
    targets, above = _select_targets(chain, steps, run, repo.branch())
    records = [_step_record(repo, commit) for commit in targets]
    files = sorted({path for record in records for _, path in record.files})
    _refuse_user_commits_on_top(repo, above, files, targets)
    _refuse_uncommitted_edits(repo, files)
    return _apply_undo(repo, targets, above, records, files)


def _select_targets(
    chain: list[CommitInfo], steps: int | None, run: str | None, branch: str | None
) -> tuple[list[CommitInfo], list[CommitInfo]]:
    """Return the step commits to undo (newest first) and the other commits above the oldest of them."""
    reverted: set[str] = set()
    live_steps: list[CommitInfo] = []
    for commit in chain:
        if REVERTS_TRAILER in commit.trailers:
            reverted.add(commit.trailers[REVERTS_TRAILER])
        elif _is_step(commit) and commit.sha not in reverted:
            live_steps.append(commit)

    where = f"on branch {branch}" if branch else "below HEAD"
    if not live_steps:
        raise UsageError(f"No gemma-agent steps to undo {where}.")
    if run is not None:
        run_ids = list(dict.fromkeys(commit.trailers[RUN_TRAILER] for commit in live_steps))
        run_id = find_run([RunRecord(run_id) for run_id in run_ids], run).run_id
        targets = [commit for commit in live_steps if commit.trailers[RUN_TRAILER] == run_id]
    else:
        if steps > len(live_steps):
            raise UsageError(f"Only {len(live_steps)} gemma-agent step(s) can be undone {where}; use --steps {len(live_steps)}.")
        targets = live_steps[:steps]

    oldest = chain.index(targets[-1])
    target_shas = {commit.sha for commit in targets}
    above = [commit for commit in chain[:oldest] if commit.sha not in target_shas]
    return targets, above


def _is_agent_commit(commit: CommitInfo) -> bool:
    return any(key in commit.trailers for key in (RUN_TRAILER, REVERTS_TRAILER, BASELINE_TRAILER))


def _refuse_user_commits_on_top(repo: GitRepo, above: list[CommitInfo], files: list[str], targets: list[CommitInfo]) -> None:
    undone_files = set(files)
    for commit in above:
        if _is_agent_commit(commit):
            continue
        overlap = sorted(undone_files & {path for _, path in repo.changed_files(commit.sha)})
        if overlap:
            shas = " ".join(target.sha[:10] for target in targets)
            raise UndoRefused(
                f"Cannot undo: your commit {commit.sha[:10]} ({commit.subject!r}) changed {', '.join(overlap)} "
                f"after the agent did, and undoing would discard that change. Revert the agent's commits yourself "
                f"with `git revert {shas}` and resolve the conflicts."
            )


def _refuse_uncommitted_edits(repo: GitRepo, files: list[str]) -> None:
    edited = [entry.path for entry in repo.status(files, ignored=True)] if files else []
    if edited:
        raise UndoRefused(
            f"Cannot undo: {', '.join(edited)} changed since the agent's last commit (uncommitted), and undoing "
            f"would overwrite that. Commit or stash the change, then run undo again.{_saved_copy_hint(repo, edited)}"
        )


def _saved_copy_hint(repo: GitRepo, edited: list[str]) -> str:
    """Return a sentence naming the newest saved copy (from the start of a run) that contains one of `edited`, or ""."""
    wanted = set(edited)
    for ref in repo.refs(SAVED_REF_PREFIX):
        held = sorted(wanted & {path for _, path in repo.changed_files(ref)})
        if held:
            return (
                f" Your uncommitted version of {', '.join(held)} from before a gemma-agent run is saved in {ref}; "
                f"see it with `git diff {ref}^ {ref}` and restore a file with `git restore --source={ref} -- FILE`."
            )
    return ""


def _apply_undo(
    repo: GitRepo, targets: list[CommitInfo], above: list[CommitInfo], records: list[StepRecord], files: list[str]
) -> UndoResult:
    previous_head = repo.head() or ""
    oldest = targets[-1]
    base = oldest.parents[0] if oldest.parents else None
    # The branch moves back only over the agent's own commits, and only when no remote-tracking branch contains them.
    if not above and base is not None and not repo.is_published(oldest.sha):
        repo.reset_to(base, files)
        log.info("undo: reset %s to %s", previous_head[:10], base[:10])
        return UndoResult("reset", records, files, previous_head, base)

    try:
        created = repo.revert_in_place(targets, _revert_message)
    except GitError as error:
        raise UndoRefused(f"Cannot undo: {error}") from None
    log.info("undo: reverted %s with %s", [commit.sha[:10] for commit in targets], created)
    return UndoResult("revert", records, files, previous_head, created[-1], created)


def _revert_message(commit: CommitInfo) -> str:
    run_id, step = commit.trailers[RUN_TRAILER], commit.trailers[STEP_TRAILER]
    return (
        f'Revert "{commit.subject}"\n\n'
        f"This undoes step {step} of gemma-agent run {run_id} (commit {commit.sha}).\n\n"
        f"{REVERTS_TRAILER}: {commit.sha}"
    )


def _open_repository(workspace: Path) -> GitRepo:
    try:
        return GitRepo.open(workspace)
    except NotARepository:
        raise UsageError(f"{workspace} is not a git repository, so it has no gemma-agent checkpoints.") from None
