"""Checkpoints: after each step the files the agent wrote or deleted are committed to git, and only those.

Each commit carries trailers naming its run and step, which `gemma-agent log`, `diff` and `undo` read.
The user's own changes, staged or not, are never committed or moved. Because the agent's tools may
still overwrite them, a run first saves them in a commit off every branch, under SAVED_REF_PREFIX.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from agent.config import Settings
from agent.errors import UsageError
from agent.gitrepo import GitError, GitRepo, StatusEntry
from agent.workspace import AGENT_DIR

log = logging.getLogger(__name__)

RUN_TRAILER = "Gemma-Agent-Run"
STEP_TRAILER = "Gemma-Agent-Step"
BASELINE_TRAILER = "Gemma-Agent-Baseline"
REVERTS_TRAILER = "Gemma-Agent-Reverts"
SAVED_TRAILER = "Gemma-Agent-Saved"
BRANCH_PREFIX = "gemma-agent/"
# The ref prefix for each run's copy of the uncommitted changes it found, one ref per run.
SAVED_REF_PREFIX = "refs/gemma-agent/saved/"

DEFAULT_MAX_FILE_BYTES = Settings.checkpoint_max_file_bytes
SUBJECT_MAX_CHARS = 72
# Dirty files listed by name at the start of a run; the rest are counted.
LISTED_CHANGES_MAX = 10
# A step that reports a folder is expanded to its files, up to this many.
FILES_PER_STEP_MAX = 10_000
# git calls a file binary when its first 8000 bytes hold a NUL byte; the same test here.
BINARY_SNIFF_BYTES = 8000
SECRET_SCAN_BYTES = 64 * 1024

SKIPPED_FOLDERS = frozenset({"node_modules"})
SECRET_FILE_NAMES = frozenset(
    {".env", "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", ".netrc", ".pgpass", ".htpasswd", ".git-credentials"}
)
SECRET_SUFFIXES = (".pem", ".key", ".p12", ".pfx", ".jks", ".keystore", ".ppk", ".env")
# `.env.example` and friends are templates meant to be committed; `.env.local` and the like are not.
ENV_TEMPLATE_SUFFIXES = (".example", ".sample", ".template", ".dist")
SECRET_CONTENT = {
    "a private key": re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----"),
    "an AWS access key": re.compile(rb"\bAKIA[0-9A-Z]{16}\b"),
    "a GitHub token": re.compile(rb"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "a Slack token": re.compile(rb"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
}


@dataclass
class StepCheckpoint:
    """The commit of one step (None when nothing was committed), the files it contains, and those left out with the reason."""

    commit: str | None
    committed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _RunState:
    run_id: str
    # Repository-relative paths with uncommitted changes when the run began: the user's, never committed.
    user_changes: dict[str, StatusEntry]
    commits: int = 0
    # The ref holding a copy of the user's changes, and the repository paths that copy contains.
    saved_ref: str | None = None
    saved: frozenset[str] = frozenset()


class Checkpointer:
    """Commits each step's files in the workspace's git repository, creating the repository if needed."""

    def __init__(self, root: Path, *, branch: bool = False, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES):
        self.root = Path(root).expanduser().resolve()
        self.branch = branch
        self.max_file_bytes = max_file_bytes
        self.repo: GitRepo | None = None
        self._run: _RunState | None = None

    def begin_run(self, run_id: str, task: str) -> list[str]:
        """Open or create the repository and return notices for the screen (dirty files, new branch)."""
        self.root.mkdir(parents=True, exist_ok=True)
        repo, created = GitRepo.open_or_init(self.root)
        self.repo = repo
        repo.ensure_excluded(f"{AGENT_DIR}/")
        _reject_operation_in_progress(repo)

        notices: list[str] = []
        if created:
            notices += self._commit_baseline(run_id)
        changes = repo.status()
        notices += _describe_changes(changes)
        state = _RunState(run_id, {entry.path: entry for entry in changes})
        notices += self._save_user_changes(state)
        if self.branch:
            notices.append(self._switch_to_run_branch(run_id))
        self._run = state
        log.info("run %s: checkpoints in %s (task: %.80s)", run_id, repo.root, task)
        return notices

    def commit_step(self, run_id: str, step: int, changed: list[str], summary: str) -> StepCheckpoint:
        """Commit exactly the files in `changed` (workspace-relative, written or deleted) that may be committed."""
        repo, state = self._require_run(run_id)
        candidates, skipped = self._select(changed, state)
        message = step_message(run_id, step, summary, candidates, skipped)
        commit = repo.commit_paths(candidates, message) if candidates else None
        if commit is not None:
            state.commits += 1
            log.info("run %s step %d: committed %s as %s", run_id, step, candidates, commit[:10])
        committed = [self._workspace_path(path) for path in candidates] if commit else []
        return StepCheckpoint(commit, committed, skipped)

    def end_run(self, run_id: str, status: str) -> None:
        """Close the run; the commits stay where they are (on the run's branch with branch=True)."""
        _, state = self._require_run(run_id)
        log.info("run %s ended (%s) after %d checkpoint commits", run_id, status, state.commits)
        self._run = None

    # -- begin_run helpers ------------------------------------------------------------------

    def _commit_baseline(self, run_id: str) -> list[str]:
        """Commit the files a newly initialised folder already held, so the agent's edits can be undone."""
        assert self.repo is not None
        existing = [entry.path for entry in self.repo.status()]
        if not existing:
            return [f"Initialised a git repository in {self.root} to checkpoint each step."]
        empty_state = _RunState(run_id, {})
        candidates, skipped = self._select([self._workspace_path(path) for path in existing], empty_state)
        message = f"Snapshot the folder before gemma-agent run {run_id}\n\n{BASELINE_TRAILER}: {run_id}"
        if candidates:
            self.repo.commit_paths(candidates, message)
        notice = (
            f"Initialised a git repository in {self.root} and committed its {len(candidates)} existing files "
            f"as a starting point, so each step can be undone."
        )
        if skipped:
            notice += f" Left out {len(skipped)}: " + ", ".join(f"{path} ({why})" for path, why in skipped[:3])
        return [notice]

    def _save_user_changes(self, state: _RunState) -> list[str]:
        """Save the uncommitted files (by the size, binary and secret rules) under the run's saved ref.

        The copy is a commit of HEAD plus those files, built in a temporary index, so HEAD, the index
        and the work tree stay as they are. Sets `state.saved_ref` and `state.saved`; returns notices.
        """
        assert self.repo is not None
        saved: list[str] = []
        skipped: list[tuple[str, str]] = []
        empty_state = _RunState(state.run_id, {})
        for path in state.user_changes:
            absolute = self.repo.root / path
            if absolute.is_dir() and not absolute.is_symlink():
                continue  # a nested repository or submodule, whose files its own git tracks
            exists = os.path.lexists(absolute)
            reason = self._path_reason(path, empty_state, exists)
            if reason is None and exists:
                reason = self._content_reason(absolute)
            if reason:
                skipped.append((self._workspace_path(path), reason))
            else:
                saved.append(path)
        if not saved:
            return [_not_saved_notice(skipped)] if skipped else []

        ref = f"{SAVED_REF_PREFIX}{state.run_id}"
        message = f"Uncommitted changes before gemma-agent run {state.run_id}\n\n{SAVED_TRAILER}: {state.run_id}"
        try:
            commit = self.repo.save_snapshot(ref, sorted(saved), message)
        except GitError as error:
            log.warning("could not save the uncommitted changes: %s", error)
            return [f"Could not save a copy of the uncommitted changes: {error}. Commit or stash them to keep them safe."]
        notices = []
        if commit is not None:
            state.saved_ref, state.saved = ref, frozenset(saved)
            notices.append(
                f"Saved a copy of the uncommitted changes ({len(saved)} files) as {ref}. If the agent changes one, "
                f"get your version back with `git restore --source={ref} -- FILE`."
            )
        if skipped:
            notices.append(_not_saved_notice(skipped))
        return notices

    def _switch_to_run_branch(self, run_id: str) -> str:
        assert self.repo is not None
        name = f"{BRANCH_PREFIX}{run_id}"
        if self.repo.branch_exists(name):
            raise UsageError(f"Branch {name} already exists. Delete it or run without --branch.")
        previous = self.repo.branch()
        self.repo.create_branch_at_head(name)
        if previous is None:
            return f"Created and checked out branch {name}; your uncommitted changes came along untouched."
        return (
            f"Created and checked out branch {name}; branch {previous} is unchanged and your uncommitted "
            f"changes came along untouched. Return with `git switch {previous}`."
        )

    # -- commit_step helpers ----------------------------------------------------------------

    def _require_run(self, run_id: str) -> tuple[GitRepo, _RunState]:
        if self.repo is None or self._run is None or self._run.run_id != run_id:
            raise RuntimeError(f"run {run_id} was not begun with Checkpointer.begin_run")
        return self.repo, self._run

    def _select(self, changed: list[str], state: _RunState) -> tuple[list[str], list[tuple[str, str]]]:
        """Split the changed paths into repository paths to commit and (workspace path, reason) to skip."""
        assert self.repo is not None
        files, skipped = self._expand(changed)
        written: list[str] = []
        deleted: list[str] = []
        for path in files:
            exists = os.path.lexists(self.repo.root / path)
            reason = self._path_reason(path, state, exists)
            if reason:
                skipped.append((self._workspace_path(path), reason))
            else:
                (written if exists else deleted).append(path)

        ignored = self.repo.ignored(written)
        candidates: list[str] = []
        for path in written:
            reason = f"ignored by {ignored[path]}" if path in ignored else self._content_reason(self.repo.root / path)
            if reason:
                skipped.append((self._workspace_path(path), reason))
            else:
                candidates.append(path)

        for path in sorted(self.repo.tracked(self.repo.head(), deleted)):
            if path in state.user_changes:
                skipped.append((self._workspace_path(path), self._user_change_reason(path, state)))
            else:
                candidates.append(path)
        return sorted(set(candidates)), skipped

    def _expand(self, changed: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
        """Turn workspace paths into repository file paths, expanding folders and dropping ones outside."""
        assert self.repo is not None
        files: list[str] = []
        skipped: list[tuple[str, str]] = []
        for name in dict.fromkeys(changed):
            absolute = Path(os.path.normpath(self.root / name))
            if absolute != self.repo.root and self.repo.root not in absolute.parents:
                skipped.append((name, "outside the git repository"))
            elif absolute.is_dir() and not absolute.is_symlink() and absolute.name in (*SKIPPED_FOLDERS, AGENT_DIR):
                skipped.append((name, _folder_reason(absolute.name)))
            elif absolute.is_dir() and not absolute.is_symlink():
                files += self._walk(absolute, skipped)
            else:
                files.append(absolute.relative_to(self.repo.root).as_posix())
        if len(files) > FILES_PER_STEP_MAX:
            skipped += [(self._workspace_path(path), f"over {FILES_PER_STEP_MAX} files in one step") for path in files[FILES_PER_STEP_MAX:]]
            files = files[:FILES_PER_STEP_MAX]
        return files, skipped

    def _walk(self, folder: Path, skipped: list[tuple[str, str]]) -> list[str]:
        assert self.repo is not None
        files: list[str] = []
        for current, folders, names in os.walk(folder):
            for sub in list(folders):
                if sub in SKIPPED_FOLDERS or sub in (".git", AGENT_DIR):
                    folders.remove(sub)
                    if sub != ".git":
                        relative = (Path(current) / sub).relative_to(self.repo.root).as_posix()
                        skipped.append((self._workspace_path(relative), _folder_reason(sub)))
            files += [(Path(current) / name).relative_to(self.repo.root).as_posix() for name in names]
        return files

    def _path_reason(self, path: str, state: _RunState, exists: bool) -> str | None:
        """Return why `path` must not be committed, judging by its name and the run's start alone."""
        parts = PurePosixPath(path).parts
        if AGENT_DIR in parts or ".git" in parts:
            return _folder_reason(AGENT_DIR if AGENT_DIR in parts else ".git")
        if path in state.user_changes:
            return self._user_change_reason(path, state)
        if not exists:
            return None
        for folder in SKIPPED_FOLDERS:
            if folder in parts[:-1]:
                return _folder_reason(folder)
        nested = self._nested_repository(path)
        if nested:
            return f"inside {nested}/, a separate git repository"
        if _secret_name(parts[-1]):
            return f"looks like a secret (the file name {parts[-1]})"
        return None

    def _content_reason(self, absolute: Path) -> str | None:
        if absolute.is_symlink():
            return None
        size = absolute.stat().st_size
        if size > self.max_file_bytes:
            return (
                f"larger than the {_megabytes(self.max_file_bytes)} limit ({_megabytes(size)}); "
                f"raise checkpoint_max_file_bytes to commit it"
            )
        with absolute.open("rb") as handle:
            head = handle.read(max(BINARY_SNIFF_BYTES, SECRET_SCAN_BYTES))
        if b"\0" in head[:BINARY_SNIFF_BYTES]:
            return "binary file"
        for kind, pattern in SECRET_CONTENT.items():
            if pattern.search(head):
                return f"looks like a secret (it contains {kind})"
        return None

    def _user_change_reason(self, path: str, state: _RunState) -> str:
        reason = _user_change_reason(state.user_changes[path])
        if path not in state.saved:
            return reason
        return (
            f"{reason}; your version from before the run is saved in {state.saved_ref} "
            f"(`git restore --source={state.saved_ref} -- {self._workspace_path(path)}`)"
        )

    def _nested_repository(self, path: str) -> str | None:
        assert self.repo is not None
        parts = PurePosixPath(path).parts[:-1]
        for depth in range(1, len(parts) + 1):
            folder = PurePosixPath(*parts[:depth])
            if (self.repo.root / folder / ".git").exists():
                return folder.as_posix()
        return None

    def _workspace_path(self, repo_path: str) -> str:
        assert self.repo is not None
        absolute = self.repo.root / repo_path
        try:
            return absolute.relative_to(self.root).as_posix()
        except ValueError:
            return absolute.as_posix()


def step_message(run_id: str, step: int, summary: str, files: list[str], skipped: list[tuple[str, str]]) -> str:
    """Build a step's commit message: what it did, what was left out, and the run and step trailers."""
    lines = [line.rstrip() for line in summary.strip().splitlines()]
    subject = lines[0] if lines and lines[0] else f"Step {step}: change " + ", ".join(files[:3])
    if len(subject) > SUBJECT_MAX_CHARS:
        subject = subject[: SUBJECT_MAX_CHARS - 3].rstrip() + "..."
    body = "\n".join(lines[1:]).strip()

    paragraphs = [subject]
    if body:
        paragraphs.append(body)
    paragraphs.append(f"Step {step} of gemma-agent run {run_id}.")
    if skipped:
        paragraphs.append("Not committed:\n" + "\n".join(f"- {path}: {why}" for path, why in skipped))
    paragraphs.append(f"{RUN_TRAILER}: {run_id}\n{STEP_TRAILER}: {step}")
    return "\n\n".join(paragraphs)


def _describe_changes(changes: list[StatusEntry]) -> list[str]:
    if not changes:
        return []
    notices = ["Uncommitted changes are present; gemma-agent leaves them as they are and commits only its own files:"]
    notices += [entry.describe() for entry in changes[:LISTED_CHANGES_MAX]]
    if len(changes) > LISTED_CHANGES_MAX:
        notices.append(f"... and {len(changes) - LISTED_CHANGES_MAX} more (see `git status`)")
    return notices


def _not_saved_notice(skipped: list[tuple[str, str]]) -> str:
    listed = ", ".join(f"{path} ({why})" for path, why in skipped[:LISTED_CHANGES_MAX])
    more = f" and {len(skipped) - LISTED_CHANGES_MAX} more" if len(skipped) > LISTED_CHANGES_MAX else ""
    return f"Not saved, so commit or back up these yourself if the agent may change them: {listed}{more}."


def _reject_operation_in_progress(repo: GitRepo) -> None:
    operation = repo.operation_in_progress()
    if operation:
        raise UsageError(
            f"git is in the middle of {operation} in {repo.root}. Finish or abort it before running gemma-agent."
        )


def _secret_name(name: str) -> bool:
    lowered = name.lower()
    if lowered in SECRET_FILE_NAMES:
        return True
    if lowered.startswith(".env."):
        return not lowered.endswith(ENV_TEMPLATE_SUFFIXES)
    return lowered.endswith(SECRET_SUFFIXES)


def _user_change_reason(entry: StatusEntry) -> str:
    change = entry.describe().split(":", 1)[0]
    return f"held your uncommitted changes ({change}) before this run, so it is left for you to commit"


def _folder_reason(folder: str) -> str:
    if folder == AGENT_DIR:
        return f"inside {AGENT_DIR}/, which holds gemma-agent's own runs"
    return f"inside {folder}/"


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"
