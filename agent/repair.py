"""Fixing failed checks one file at a time, keeping the best version of each file seen so far.

Once the files a task names are written, the loop runs the checks itself. A failure that points at
one file starts a repair: the conversation goes back to the task and the plan, the model gets the
task's paragraph about that file, then writes the file again in full. A whole-file rewrite needs no
search text, and a short fresh prompt keeps a small model from drowning in its own earlier versions.

The first repair of a failure is targeted: it shows the file and the failure. Where the model
writes with a write_file call, it also requests one sentence on the cause first. In the blocks write
mode that sentence tended to become a one-line code block, taken as the file, so it is not requested
there. When a repair does not raise the file's score, later repairs request the file afresh,
without the file or the failure. Both choices were measured with Qwen2.5-Coder-1.5B on the Blackjack
logic. Shown its file, it kept the bug in all 22 tries (temperature 0.2 and 0.7), mostly copying the
file back unchanged. Asked afresh, it wrote a passing file in 2 of 8 tries at temperature 0.2, but
in 0 of 7 when the prompt also quoted the failure, which it misread (it dropped the rank the failure
named). Fresh tries at temperature 0.7 passed in 1 of 30, so the temperature stays as configured.

Each verification is compared, file by file, with the best so far. A file's score is the sum over
the checks about it of the share of each that passed. A changed file that scores lower is put back,
so fresh attempts act as a search that never loses ground. Before a Python file is repaired, the
loop tries its best version with one definition from an earlier version (agent.recombine), since the
model often gets different parts right in different tries. A file whose score does not rise over
several repairs in a row gives the next failing file its turn.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from agent.prompts import render_prompt
from agent.recombine import Combination, combinations
from agent.verify import CheckOutcome, Verification, mentions

logger = logging.getLogger(__name__)

# After this many repairs in a row that do not raise a file's score, another failing file gets a turn,
# so one bug the model cannot fix does not keep it from the others.
MAX_STALLED_REPAIRS = 3
# Above this many lines a file is repaired with any tool, since rewriting it whole costs too much.
MAX_REWRITE_LINES = 400
# The repair prompt shows a file in full only up to this size. A larger one is fixed with any tool.
MAX_SHOWN_CHARS = 24_000
WRITE_TOOL = "write_file"
# The versions of a file kept as material for combinations, the most recent ones.
MAX_VERSIONS = 10
_FENCE_LANGUAGES = {".py": "python", ".html": "html", ".htm": "html", ".js": "javascript", ".css": "css", ".json": "json"}


@dataclass
class Snapshot:
    """A file's best version so far: its content, the score of the checks about it, their first failure."""

    score: float
    failure: str
    content: bytes


@dataclass
class RepairPlan:
    """The next repair: the file to fix, and the prompt that requests it."""

    path: str
    prompt: str
    allowed_tools: list[str] | None
    # The reply to the prompt contains the file in a code block, with no call first (blocks write mode).
    direct: bool = False


class Repairs:
    """Chooses the file to fix after each failed verification and keeps the best version of each file."""

    def __init__(self, root: Path, task_files: list[str], details: dict[str, str] | None = None):
        self.root = root
        self.task_files = task_files
        self.details = details or {}
        self.best: dict[str, Snapshot] = {}
        # The file the last repair was about, and its score and failure before that repair.
        self.last_target = ""
        self.last_score: float | None = None
        self.last_failure = ""
        self.stalled: dict[str, int] = {}
        # Each file's distinct versions seen at a verification, oldest first, and the combinations tried.
        self.versions: dict[str, list[str]] = {}
        self.tried: set[str] = set()

    def plan(
        self, verification: Verification, editable: set[str], blocks: bool = False
    ) -> tuple[RepairPlan | None, list[str]]:
        """Record a failed verification; return the repair it calls for (None when no file is to blame)
        and the files put back.

        Only `editable` files are repaired or put back: those the task names or the run wrote, never
        the user's own files. When a file scores lower than its best version, it is put back and no
        repair is planned: the files are to be checked again first. With `blocks`, the model replies
        with the file's content in a code block (the blocks write mode). Otherwise it calls write_file.
        """
        failures = self._failures(verification, editable)
        scores = self._scores(verification.outcomes, editable)
        restored = self._keep_best(scores, failures)
        if restored:
            return None, restored
        self._note_progress(scores, failures)
        path = self._choose(failures)
        content = self._text(path) if path else None
        if content is None:
            return None, []
        failure = failures[path]
        self.last_target, self.last_score, self.last_failure = path, scores.get(path), failure

        rewrite = content.count("\n") + 1 <= MAX_REWRITE_LINES and len(content) <= MAX_SHOWN_CHARS
        if not rewrite:
            reply_form = "edit"
        elif blocks:
            reply_form = "block"
        else:
            reply_form = "call"
        targeted = self.stalled.get(path, 0) == 0 and rewrite
        prompt = render_prompt(
            "fix_file",
            path=path,
            failure=failure,
            content=content if targeted else "",
            language=_FENCE_LANGUAGES.get(Path(path).suffix.lower(), ""),
            detail=self.details.get(path, ""),
            how=reply_form,
        )
        allowed = [WRITE_TOOL] if rewrite else None
        return RepairPlan(path, prompt, allowed, direct=reply_form == "block"), []

    def combinations(self, path: str) -> Iterator[Combination]:
        """Yield the best version of `path` with one definition from an earlier version, each only once,
        newest earlier version first (see agent.recombine)."""
        best = self.best.get(path)
        if best is None or Path(path).suffix.lower() != ".py":
            return
        try:
            best_text = best.content.decode("utf-8")
        except UnicodeDecodeError:
            return
        for earlier in reversed(self.versions.get(path, [])):
            for combination in combinations(best_text, earlier):
                if combination.text not in self.tried:
                    self.tried.add(combination.text)
                    yield combination

    def score(self, verification: Verification, path: str, editable: set[str]) -> float | None:
        """Return the score of `path` in `verification`: the sum over the checks about it of the share that passed."""
        return self._scores(verification.outcomes, editable).get(path)

    def settle(self, verification: Verification, editable: set[str]) -> list[str]:
        """Put back each file whose best version scored higher than it does now; return those put back."""
        failures = self._failures(verification, editable)
        return self._keep_best(self._scores(verification.outcomes, editable), failures)

    def _failures(self, verification: Verification, editable: set[str]) -> dict[str, str]:
        """Map each editable text file a failing check is about to that check's message, in the checks' order."""
        failures: dict[str, str] = {}
        outcomes = verification.outcomes or [CheckOutcome("checks", False, verification.failure)]
        for outcome in outcomes:
            if outcome.passed:
                continue
            files = outcome.files or [name for name in self.task_files if mentions(outcome.message, name)]
            for name in files:
                if name not in failures and name in editable and self._text(name) is not None:
                    failures[name] = outcome.message
        return failures

    def _scores(self, outcomes: list[CheckOutcome], editable: set[str]) -> dict[str, float | None]:
        """Score each editable file: the sum over the checks about it of the share that passed (None when unscored)."""
        scores: dict[str, float | None] = {}
        for name in dict.fromkeys(name for outcome in outcomes for name in outcome.files if name in editable):
            about = [outcome.progress for outcome in outcomes if name in outcome.files]
            scores[name] = None if None in about else sum(about)
        return scores

    def _keep_best(self, scores: dict[str, float | None], failures: dict[str, str]) -> list[str]:
        """Put back each changed file that scores lower than its best version; remember each that scores
        as well or better. Returns the files put back."""
        restored: list[str] = []
        for name, score in scores.items():
            if score is None:
                continue
            try:
                content = (self.root / name).read_bytes()
            except OSError:
                content = None
            self._remember(name, content)
            best = self.best.get(name)
            if best is not None and score < best.score:
                # A lower score with the same bytes comes from another file, which is put back instead.
                if content != best.content and self._restore(name, best.content):
                    restored.append(name)
                continue
            if content is not None:
                self.best[name] = Snapshot(score, failures.get(name, ""), content)
        return restored

    def _remember(self, name: str, content: bytes | None) -> None:
        """Keep a new version of a file as material for combinations."""
        try:
            text = content.decode("utf-8") if content is not None else None
        except UnicodeDecodeError:
            return
        versions = self.versions.setdefault(name, [])
        if text is None or text in versions:
            return
        versions.append(text)
        del versions[:-MAX_VERSIONS]

    def _note_progress(self, scores: dict[str, float | None], failures: dict[str, str]) -> None:
        """Count the last repair as stalled when its file scores no higher (or, unscored, fails the same way)."""
        name = self.last_target
        if not name:
            return
        score = scores.get(name)
        if score is not None and self.last_score is not None:
            stalled = score <= self.last_score
        else:
            stalled = failures.get(name) == self.last_failure
        self.stalled[name] = self.stalled.get(name, 0) + 1 if stalled else 0

    def _choose(self, failures: dict[str, str]) -> str:
        """Return the file to fix: the first failing one that has not stalled, or when all have, the first again."""
        for name in failures:
            if self.stalled.get(name, 0) < MAX_STALLED_REPAIRS:
                return name
        for name in failures:
            self.stalled[name] = 0
        return next(iter(failures), "")

    def _restore(self, name: str, content: bytes) -> bool:
        path = self.root / name
        try:
            if path.read_bytes() == content:
                return False
        except OSError:
            pass
        try:
            path.write_bytes(content)
        except OSError as error:
            logger.warning("could not put back the best version of %s: %s", name, error)
            return False
        logger.info("checks about %s scored lower than before; put back its best version", name)
        return True

    def _text(self, name: str) -> str | None:
        try:
            return (self.root / name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
