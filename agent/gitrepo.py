"""The one wrapper over gitpython: every git command gemma-agent runs goes through GitRepo.

Commits are built with plumbing (a temporary index, `write-tree`, `commit-tree`, `update-ref`) so
that only the paths named are committed and the user's staged and unstaged changes stay as they are.
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from agent.errors import AgentError, UsageError

log = logging.getLogger(__name__)

AGENT_NAME = "gemma-agent"
AGENT_EMAIL = "gemma-agent@localhost"

# Paths per git command line, to stay far below the operating system's argument length limit.
PATHS_PER_COMMAND = 500

# Every command takes pathspecs literally (a file named `*.py` is that file) and takes no optional
# locks, so a status refresh cannot collide with the user's own git. Path names are not quoted.
BASE_ENV = {"GIT_LITERAL_PATHSPECS": "1", "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat"}
BASE_OPTIONS = ("--no-pager", "-c", "core.quotePath=false")

# The repository's own config can name programs for git to run (an fsmonitor, hooks, a pager, diff and
# filter drivers). A command in the workspace may have written that config, so every git process of
# the agent runs with these settings, which take precedence over every config file, and runs none.
SAFETY_OPTIONS = (
    "-c", "core.fsmonitor=false",
    "-c", "core.hooksPath=/dev/null",
    "-c", "core.sshCommand=",
    "-c", "core.askPass=",
    "-c", "credential.helper=",
    "-c", "core.pager=cat",
    "-c", "core.editor=true",
    "-c", "sequence.editor=true",
    "-c", "diff.external=",
    "-c", "log.showSignature=false",
    "-c", "commit.gpgSign=false",
)
# Config keys of driver programs that .gitattributes selects by name. Their names cannot be given in
# advance, so each git call first lists the configured ones and blanks them (an empty value runs nothing).
DRIVER_KEYS = r"^(filter\..+\.(clean|smudge|process)|diff\..+\.(textconv|command)|merge\..+\.driver)$"

# Files whose presence means git is in the middle of an operation that a new commit would disturb.
OPERATION_MARKERS = {
    "MERGE_HEAD": "a merge",
    "rebase-merge": "a rebase",
    "rebase-apply": "a rebase or `git am`",
    "CHERRY_PICK_HEAD": "a cherry-pick",
    "REVERT_HEAD": "a revert",
    "BISECT_LOG": "a bisect",
}

_STATUS_WORDS = {
    "M": "modified",
    "A": "added",
    "D": "deleted",
    "R": "renamed",
    "C": "copied",
    "T": "type changed",
    "U": "unmerged",
}


class GitError(AgentError):
    """A git command failed; the message names the command and git's own error."""


class NotARepository(UsageError):
    """The folder is not inside a git repository."""


@dataclass(frozen=True)
class StatusEntry:
    """One line of `git status --porcelain`: `code` is the two-letter XY code (index, work tree)."""

    code: str
    path: str

    def describe(self) -> str:
        """Return a line such as `modified: config.yaml` or `deleted (staged): old.txt`."""
        staged, unstaged = self.code[0], self.code[1]
        if self.code == "??":
            return f"untracked: {self.path}"
        if staged == "U" or unstaged == "U":
            return f"unmerged: {self.path}"
        if staged != " " and unstaged != " ":
            return f"{_STATUS_WORDS.get(unstaged, 'changed')} (partly staged): {self.path}"
        if staged != " ":
            return f"{_STATUS_WORDS.get(staged, 'changed')} (staged): {self.path}"
        return f"{_STATUS_WORDS.get(unstaged, 'changed')}: {self.path}"


@dataclass(frozen=True)
class CommitInfo:
    """A commit read from `git log`: its id, parents, commit time (Unix seconds) and full message."""

    sha: str
    parents: tuple[str, ...]
    time: int
    message: str
    trailers: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def subject(self) -> str:
        return self.message.split("\n", 1)[0]


class GitRepo:
    """A git repository reached through gitpython; `root` is the top of its work tree."""

    def __init__(self, repo) -> None:
        self._repo = repo
        self.root = Path(repo.working_tree_dir).resolve()
        self._identity_env: dict[str, str] | None = None

    @classmethod
    def open(cls, path: Path) -> GitRepo:
        """Open the repository that contains `path`, or raise NotARepository."""
        import git

        try:
            repo = git.Repo(path, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise NotARepository(f"{path} is not inside a git repository.") from None
        if repo.bare or repo.working_tree_dir is None:
            raise NotARepository(f"{path} is a bare git repository; gemma-agent needs a work tree.")
        return cls(repo)

    @classmethod
    def open_or_init(cls, path: Path) -> tuple[GitRepo, bool]:
        """Open the repository that contains `path`, or initialise one there; the flag is True for a new one."""
        import git

        try:
            return cls.open(path), False
        except NotARepository as error:
            if "bare" in str(error):
                raise
        repo = git.Repo.init(path)
        log.info("initialised a git repository in %s", path)
        return cls(repo), True

    # -- running commands -------------------------------------------------------------------

    def run(self, *args: str, env: dict[str, str] | None = None, ok_codes: Sequence[int] = (0,)) -> str:
        """Run `git ARGS` in the work tree and return its output; raise GitError on other exit codes."""
        status, output, _ = self.run_status(*args, env=env, ok_codes=ok_codes)
        return output

    def run_status(
        self, *args: str, env: dict[str, str] | None = None, ok_codes: Sequence[int] = (0,), stdin: str | None = None
    ) -> tuple[int, str, str]:
        """Run `git ARGS` and return (exit code, stdout, stderr); raise GitError unless the code is in ok_codes."""
        safe_env = {**BASE_ENV, **_config_env(self._configured_drivers())}
        command = ["git", *BASE_OPTIONS, *SAFETY_OPTIONS, *args]
        status, stdout, stderr = self._execute(command, {**safe_env, **(env or {})}, stdin)
        if status not in ok_codes:
            detail = (stderr or stdout).strip().splitlines()
            message = detail[-1] if detail else f"exit code {status}"
            raise GitError(f"git {args[0]} failed in {self.root}: {message}")
        return status, stdout, stderr

    def _execute(self, command: list[str], env: dict[str, str], stdin: str | None) -> tuple[int, str, str]:
        with tempfile.TemporaryFile("w+b") as input_file:
            if stdin is not None:
                input_file.write(stdin.encode("utf-8", "surrogateescape"))
                input_file.seek(0)
            return self._repo.git.execute(
                command,
                env=env,
                istream=input_file if stdin is not None else None,
                with_extended_output=True,
                with_exceptions=False,
            )

    def _configured_drivers(self) -> list[str]:
        """Return the config overrides that blank every filter, diff and merge driver the config defines."""
        listing = ("config", "--null", "--name-only", "--get-regexp", DRIVER_KEYS)
        command = ["git", *BASE_OPTIONS, *SAFETY_OPTIONS, *listing]
        status, output, stderr = self._execute(command, BASE_ENV, None)
        if status not in (0, 1):
            raise GitError(f"git config failed in {self.root}: {stderr.strip() or status}")
        overrides: list[str] = []
        for key in filter(None, output.split("\0")):
            overrides.append(key)
            if key.startswith("filter."):
                # A filter marked required makes git fail when it does not run; blanked, it must not be required.
                overrides.append(key.rsplit(".", 1)[0] + ".required")
        return overrides

    def run_paths(self, *args: str, paths: Sequence[str], env: dict[str, str] | None = None) -> None:
        """Run `git ARGS -- PATHS` in chunks, so a long list of paths fits on the command line."""
        for start in range(0, len(paths), PATHS_PER_COMMAND):
            self.run(*args, "--", *paths[start : start + PATHS_PER_COMMAND], env=env)

    # -- state ------------------------------------------------------------------------------

    @property
    def git_dir(self) -> Path:
        return Path(self._repo.git_dir).resolve()

    def head(self) -> str | None:
        """Return the commit HEAD points at, or None on a branch with no commits yet."""
        status, output, _ = self.run_status("rev-parse", "--verify", "-q", "HEAD^{commit}", ok_codes=(0, 1))
        return output.strip() if status == 0 else None

    def branch(self) -> str | None:
        """Return the short name of the checked-out branch, or None when HEAD is detached."""
        status, output, _ = self.run_status("symbolic-ref", "-q", "--short", "HEAD", ok_codes=(0, 1))
        return output.strip() if status == 0 else None

    def branch_exists(self, name: str) -> bool:
        status, _, _ = self.run_status("show-ref", "--verify", "-q", f"refs/heads/{name}", ok_codes=(0, 1))
        return status == 0

    def operation_in_progress(self) -> str | None:
        """Return what git is in the middle of (`a rebase`, `a merge`, ...), or None."""
        for marker, name in OPERATION_MARKERS.items():
            if (self.git_dir / marker).exists():
                return name
        return None

    def status(self, paths: Sequence[str] = (), *, ignored: bool = False) -> list[StatusEntry]:
        """Return every uncommitted change (staged, unstaged, untracked), optionally only under `paths`."""
        # Submodules are compared by commit only: a status inside one would run git under its own config.
        args = ["status", "--porcelain=v1", "-z", "--no-renames", "--untracked-files=all", "--ignore-submodules=dirty"]
        if ignored:
            args.append("--ignored=matching")
        if paths:
            args += ["--", *paths]
        output = self.run(*args)
        return [StatusEntry(item[:2], item[3:]) for item in output.split("\0") if len(item) > 3]

    def is_published(self, commit: str) -> bool:
        """Return whether a remote-tracking branch contains `commit`, so rewriting it would rewrite shared history."""
        output = self.run("for-each-ref", "--contains", commit, "--format=%(refname)", "refs/remotes")
        return bool(output.strip())

    def committer_configured(self) -> bool:
        """Return whether git can name a committer (user.name and user.email, or GIT_COMMITTER_* variables)."""
        status, _, _ = self.run_status("var", "GIT_COMMITTER_IDENT", ok_codes=(0, 128))
        return status == 0

    def identity_env(self) -> dict[str, str]:
        """Return the environment for an agent commit: authored by gemma-agent, committed by the user if known.

        Without a configured identity the committer is gemma-agent too; nothing is written to any config.
        """
        if self._identity_env is None:
            env = {"GIT_AUTHOR_NAME": AGENT_NAME, "GIT_AUTHOR_EMAIL": AGENT_EMAIL}
            if not self.committer_configured():
                env |= {"GIT_COMMITTER_NAME": AGENT_NAME, "GIT_COMMITTER_EMAIL": AGENT_EMAIL}
            self._identity_env = env
        return self._identity_env

    # -- ignore rules -----------------------------------------------------------------------

    def ensure_excluded(self, pattern: str) -> bool:
        """Add `pattern` to .git/info/exclude unless it is there; return whether it was added."""
        exclude = Path(self.run("rev-parse", "--git-path", "info/exclude").strip())
        if not exclude.is_absolute():
            exclude = self.root / exclude
        text = exclude.read_text(encoding="utf-8") if exclude.exists() else ""
        if pattern in text.splitlines():
            return False
        exclude.parent.mkdir(parents=True, exist_ok=True)
        separator = "" if not text or text.endswith("\n") else "\n"
        exclude.write_text(f"{text}{separator}# gemma-agent's runs and logs\n{pattern}\n", encoding="utf-8")
        return True

    def ignored(self, paths: Sequence[str]) -> dict[str, str]:
        """Map each untracked path that an ignore rule matches to the rule, such as `.gitignore:3: dist/`."""
        if not paths:
            return {}
        stdin = "".join(f"{path}\0" for path in paths)
        # check-ignore rejects the literal pathspec setting; it takes each line as a path name anyway.
        env = {"GIT_LITERAL_PATHSPECS": "0"}
        _, output, _ = self.run_status("check-ignore", "-v", "-z", "--stdin", env=env, ok_codes=(0, 1), stdin=stdin)
        fields = output.split("\0")
        matches: dict[str, str] = {}
        for index in range(0, len(fields) - 3, 4):
            source, line, pattern, path = fields[index : index + 4]
            matches[path] = f"{self._relative_source(source)}:{line}: {pattern}"
        return matches

    def _relative_source(self, source: str) -> str:
        path = Path(source)
        if path.is_absolute() and self.root in path.parents:
            return path.relative_to(self.root).as_posix()
        return source

    # -- trees and commits ------------------------------------------------------------------

    def empty_tree(self) -> str:
        return self.run("hash-object", "-t", "tree", os.devnull).strip()

    def tracked(self, commit: str | None, paths: Sequence[str]) -> set[str]:
        """Return which of `paths` (files or folders) `commit` contains, each expanded to its files."""
        if commit is None or not paths:
            return set()
        found: set[str] = set()
        for start in range(0, len(paths), PATHS_PER_COMMAND):
            chunk = paths[start : start + PATHS_PER_COMMAND]
            output = self.run("ls-tree", "-r", "-z", "--name-only", commit, "--", *chunk)
            found.update(name for name in output.split("\0") if name)
        return found

    def changed_files(self, commit: str) -> list[tuple[str, str]]:
        """Return (status letter, path) for each file `commit` changed against its first parent."""
        output = self.run("diff-tree", "-r", "-z", "--no-commit-id", "--name-status", "--no-renames", "--root", commit)
        fields = [item for item in output.split("\0") if item]
        return [(fields[index], fields[index + 1]) for index in range(0, len(fields) - 1, 2)]

    def diff(self, old: str | None, new: str, paths: Sequence[str] = ()) -> str:
        """Return the patch from `old` (None: the empty tree) to `new`, optionally only for `paths`."""
        args = ["diff", "--no-color", "--no-ext-diff", "--no-textconv", "--binary", old or self.empty_tree(), new]
        if paths:
            args += ["--", *paths]
        return self.run(*args)

    def commit_paths(self, paths: Sequence[str], message: str) -> str | None:
        """Commit exactly `paths` (as they are in the work tree, or their deletion) on top of HEAD.

        The commit is built in a temporary index, so the user's staged changes are neither committed
        nor unstaged. Afterwards the real index entries of just these paths are set to the new commit.
        Returns the new commit, or None when the paths are unchanged against HEAD. Runs no hooks.
        """
        parent = self.head()
        with self._temporary_index(parent) as index_env:
            self.stage_work_tree(paths, index_env)
            tree = self.run("write-tree", env=index_env).strip()
        if parent is not None and tree == self.run("rev-parse", f"{parent}^{{tree}}").strip():
            return None

        commit = self._commit_tree(tree, parent, message)
        self._move_head(commit, parent, message.split("\n", 1)[0])
        try:
            self.run_paths("reset", "-q", commit, paths=list(paths))
        except GitError as error:
            # The commit stands; only `git status` shows these paths as staged until the user runs `git reset`.
            log.warning("committed %s but could not update the index for %s: %s", commit[:10], paths, error)
        return commit

    def save_snapshot(self, ref: str, paths: Sequence[str], message: str) -> str | None:
        """Store HEAD plus the work-tree state of `paths` as a commit under `ref`, off every branch.

        HEAD, the index and the work tree are left as they are. Returns the commit, or None when the
        paths match HEAD. Raises GitError when `ref` exists already.
        """
        self.run("check-ref-format", ref)
        parent = self.head()
        with self._temporary_index(parent) as index_env:
            self.stage_work_tree(paths, index_env)
            tree = self.run("write-tree", env=index_env).strip()
        if parent is not None and tree == self.run("rev-parse", f"{parent}^{{tree}}").strip():
            return None
        commit = self._commit_tree(tree, parent, message)
        self.run("update-ref", "-m", "gemma-agent: save uncommitted changes", ref, commit, "")
        return commit

    def stage_work_tree(self, paths: Sequence[str], index_env: dict[str, str]) -> None:
        """Set `paths` in the index of `index_env` to their work-tree state, or remove those that are gone.

        Contents are hashed with --no-filters: a clean filter is a program named by the repository's
        config, which a command in the workspace may have written.
        """
        files = [path for path in paths if os.path.isfile(self.root / path) and not os.path.islink(self.root / path)]
        links = [path for path in paths if os.path.islink(self.root / path)]
        blobs: dict[str, str] = {}
        for start in range(0, len(files), PATHS_PER_COMMAND):
            chunk = files[start : start + PATHS_PER_COMMAND]
            hashes = self.run("hash-object", "-w", "--no-filters", "--", *chunk).split()
            blobs.update(zip(chunk, hashes))
        for path in links:
            target = os.readlink(self.root / path)
            blobs[path] = self.run_status("hash-object", "-w", "--no-filters", "--stdin", stdin=target)[1].strip()
        file_mode = self.run("config", "--type=bool", "--default=true", "core.fileMode").strip() != "false"
        # Mode 0 removes an entry; its id is ignored but must have the repository's hash length.
        removed = "0" * len(self.empty_tree())
        entries = []
        for path in paths:
            if path in blobs:
                entries.append(f"{self._mode(path, index_env, file_mode)} {blobs[path]}\t{path}\0")
            elif not os.path.lexists(self.root / path):
                entries.append(f"0 {removed}\t{path}\0")
            else:
                log.warning("not staging %s: neither a file nor a symlink", path)
        if entries:
            update = ("update-index", "--add", "--remove", "--replace", "-z", "--index-info")
            self.run_status(*update, env=index_env, stdin="".join(entries))

    def _mode(self, path: str, index_env: dict[str, str], file_mode: bool) -> str:
        """Return the index mode git would record for the work-tree file `path` (core.fileMode as given)."""
        info = os.lstat(self.root / path)
        if stat.S_ISLNK(info.st_mode):
            return "120000"
        if not file_mode:
            listed = self.run("ls-files", "-s", "-z", "--", path, env=index_env).split(" ", 1)[0]
            return listed if listed in ("100644", "100755") else "100644"
        return "100755" if info.st_mode & stat.S_IXUSR else "100644"

    def revert_in_place(self, commits: Sequence[CommitInfo], message_for) -> list[str]:
        """Add one commit per entry of `commits` (newest first) that undoes it, and update those files.

        Each reverse patch is applied to a temporary index first; if any does not apply, GitError is
        raised and nothing has changed. `message_for(commit)` returns each new commit's message.
        """
        head = self.head()
        created: list[str] = []
        parent = head
        with self._temporary_index(head) as index_env:
            for commit in commits:
                parent_tree = commit.parents[0] if commit.parents else self.empty_tree()
                patch = self.diff(commit.sha, parent_tree)
                self._apply_to_index(patch, index_env, commit)
                tree = self.run("write-tree", env=index_env).strip()
                parent = self._commit_tree(tree, parent, message_for(commit))
                created.append(parent)
        paths = sorted({path for commit in commits for _, path in self.changed_files(commit.sha)})
        self.restore_paths(parent, paths)
        self._move_head(parent, head, "undo")
        return created

    def reset_to(self, commit: str, paths: Sequence[str]) -> None:
        """Move HEAD to `commit` and set only `paths` (index and work tree) to their state there.

        Other files, staged or not, are left as they are. The caller checks first that these paths
        have no uncommitted changes, because their work-tree copies are overwritten.
        """
        head = self.head()
        self.restore_paths(commit, paths)
        self._move_head(commit, head, "undo")

    def restore_paths(self, commit: str, paths: Sequence[str]) -> None:
        """Set `paths` in the index and work tree to `commit`, deleting those it does not contain.

        Paths in neither `commit` nor HEAD are skipped, because `checkout` rejects a path it cannot match.
        """
        known = self.tracked(commit, paths) | self.tracked(self.head(), paths)
        present = [path for path in paths if path in known]
        if present:
            self.run_paths("checkout", "--no-overlay", commit, paths=present)

    def log(self, *revisions: str, first_parent: bool = False, max_count: int = 0, grep: str = "") -> list[CommitInfo]:
        """Return commits reachable from `revisions`, newest first, with their messages and trailers."""
        # Commits made within one second tie on date, so only topological order puts children first.
        args = ["log", "--topo-order", "--format=%H%x1f%P%x1f%ct%x1f%B%x1e", "--no-color"]
        if first_parent:
            args.append("--first-parent")
        if max_count:
            args.append(f"--max-count={max_count}")
        if grep:
            args += ["--extended-regexp", f"--grep={grep}"]
        if self.head() is None:
            revisions = tuple(revision for revision in revisions if revision != "HEAD")
        if not revisions:
            return []
        output = self.run(*args, *revisions, "--")
        return [_parse_commit(record) for record in output.split("\x1e") if record.strip()]

    def branches(self, pattern: str) -> list[str]:
        """Return the full names of local branches that match a glob such as `gemma-agent/*`."""
        output = self.run("for-each-ref", "--format=%(refname)", f"refs/heads/{pattern}")
        return [line for line in output.splitlines() if line]

    def refs(self, prefix: str) -> list[str]:
        """Return the full names of refs under `prefix` (such as `refs/gemma-agent/saved/`), newest commit first."""
        output = self.run("for-each-ref", "--sort=-committerdate", "--format=%(refname)", prefix)
        return [line for line in output.splitlines() if line]

    def create_branch_at_head(self, name: str) -> None:
        """Create branch `name` at HEAD and check it out without touching the index or work tree.

        Because the new branch points where HEAD already is, only HEAD itself changes. On a branch
        with no commits yet, the new branch is born with the next commit.
        """
        self.run("check-ref-format", "--branch", name)
        head = self.head()
        if head is not None:
            self.run("update-ref", "-m", f"gemma-agent: create {name}", f"refs/heads/{name}", head, "")
        self.run("symbolic-ref", "-m", f"gemma-agent: switch to {name}", "HEAD", f"refs/heads/{name}")

    # -- helpers ----------------------------------------------------------------------------

    @contextmanager
    def _temporary_index(self, commit: str | None) -> Iterator[dict[str, str]]:
        """Yield the environment of an index file outside the repository that starts as `commit`'s tree."""
        with tempfile.TemporaryDirectory(prefix="gemma-agent-index-") as folder:
            env = {"GIT_INDEX_FILE": str(Path(folder) / "index")}
            if commit is not None:
                self.run("read-tree", commit, env=env)
            yield env

    def _apply_to_index(self, patch: str, index_env: dict[str, str], commit: CommitInfo) -> None:
        if not patch.strip():
            return
        with tempfile.NamedTemporaryFile("w", suffix=".patch", encoding="utf-8", delete=False) as handle:
            handle.write(patch + "\n")
        try:
            self.run("apply", "--cached", "--whitespace=nowarn", handle.name, env=index_env)
        except GitError as error:
            raise GitError(
                f"commit {commit.sha[:10]} ({commit.subject!r}) cannot be reverted cleanly because later "
                f"commits changed the same lines: {error}"
            ) from None
        finally:
            os.unlink(handle.name)

    def _commit_tree(self, tree: str, parent: str | None, message: str) -> str:
        args = ["commit-tree", "--no-gpg-sign", tree, "-m", message]
        if parent is not None:
            args[3:3] = ["-p", parent]
        return self.run(*args, env=self.identity_env()).strip()

    def _move_head(self, new: str, old: str | None, reason: str) -> None:
        # The old value makes the update fail, rather than drop commits, if HEAD moved meanwhile.
        self.run("update-ref", "-m", f"gemma-agent: {reason}", "HEAD", new, old or "")


def _config_env(keys: Sequence[str]) -> dict[str, str]:
    """Return GIT_CONFIG_COUNT variables that set each of `keys` to empty (`*.required` to false).

    Entries already in the agent's environment are kept ahead of these. The environment form takes a
    key verbatim, where `-c` would split a driver name that holds `=`.
    """
    if not keys:
        return {}
    try:
        start = int(os.environ.get("GIT_CONFIG_COUNT", "0"))
    except ValueError:
        start = 0
    env = {"GIT_CONFIG_COUNT": str(start + len(keys))}
    for offset, key in enumerate(keys):
        env[f"GIT_CONFIG_KEY_{start + offset}"] = key
        env[f"GIT_CONFIG_VALUE_{start + offset}"] = "false" if key.endswith(".required") else ""
    return env


def _parse_commit(record: str) -> CommitInfo:
    sha, parents, time, message = record.strip("\n").split("\x1f", 3)
    message = message.strip("\n")
    return CommitInfo(sha, tuple(parents.split()), int(time), message, parse_trailers(message))


def parse_trailers(message: str) -> dict[str, str]:
    """Return the `Key: value` trailers of a commit message's last paragraph (the last value per key)."""
    paragraphs = message.strip().split("\n\n")
    trailers: dict[str, str] = {}
    if len(paragraphs) < 2:
        return trailers
    for line in paragraphs[-1].splitlines():
        key, colon, value = line.partition(": ")
        if colon and key and " " not in key:
            trailers[key] = value.strip()
    return trailers

