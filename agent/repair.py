"""Fixing failed checks one file at a time, keeping the best version of each file seen so far.

Once the files a task names are written, the loop runs the checks itself. A failure that points at
one file starts a repair: the conversation goes back to the task and the plan, and the model is
shown what the task says about that file, then writes the file again in full. A whole-file rewrite
needs no search text, and a short fresh prompt keeps a small model from drowning in its own earlier
versions.

The first repair of a failure is targeted: it shows the file and the failure (and where the model
writes with a write_file call, requests one sentence on the cause first; in the blocks write mode
that sentence tended to become a one-line code block, taken as the file). When the failure survives,
later repairs request the file afresh, without the file or the failure. Both choices were measured with Qwen2.5-Coder-1.5B on the
Blackjack logic. Shown its file, it kept the bug in all 22 tries (temperature 0.2 and 0.7), mostly
copying the file back unchanged. Asked afresh, it wrote a passing file in 2 of 8 tries at
temperature 0.2, but in 0 of 7 when the prompt also quoted the failure, which it misread (it
dropped the rank the failure named). Fresh tries at temperature 0.7 passed in 1 of 30, so the
temperature stays as configured.

Each verification is compared, file by file, with the best so far (the checks about a file, each
counted by the share of it that passed): a rewrite that scores lower is undone, so fresh attempts
act as a search that never loses ground. A file whose failure survives several repairs in a row
gives the next failing file its turn.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from agent.prompts import render_prompt
from agent.verify import CheckOutcome, Verification

logger = logging.getLogger(__name__)

# After this many repairs in a row that leave a file's failure as it was, another failing file gets a
# turn, so one bug the model cannot fix does not keep it from the others.
MAX_STALLED_REPAIRS = 3
# Above this many lines a file is repaired with any tool, since rewriting it whole costs too much.
MAX_REWRITE_LINES = 400
# The repair prompt shows a file in full only up to this size. The model reads a larger one with read_file.
MAX_SHOWN_CHARS = 24_000
WRITE_TOOL = "write_file"
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
        self.last_failure: dict[str, str] = {}
        self.stalled: dict[str, int] = {}

    def plan(
        self, verification: Verification, editable: set[str], blocks: bool = False
    ) -> tuple[RepairPlan | None, list[str]]:
        """Record a failed verification; return the repair it calls for (None when no file is to blame)
        and the files put back.

        Only `editable` files are repaired or put back: those the task names or the run wrote, never
        the user's own files. A file that scores lower than its best version is put back first, and
        its repair is of the best version's failure. With `blocks`, the model replies with the file's
        content in a code block (the blocks write mode). Otherwise it calls write_file.
        """
        failures = self._failures(verification, editable)
        restored, worse = self._keep_best(verification.outcomes, failures, editable)
        path = self._choose(failures)
        content = self._text(path) if path else None
        if content is None:
            return None, restored
        failure = failures[path]
        if path in worse or failure == self.last_failure.get(path):
            self.stalled[path] = self.stalled.get(path, 0) + 1
        else:
            self.stalled[path] = 0
        self.last_failure[path] = failure

        rewrite = content.count("\n") + 1 <= MAX_REWRITE_LINES
        if not rewrite:
            reply_form = "edit"
        elif blocks:
            reply_form = "block"
        else:
            reply_form = "call"
        targeted = self.stalled[path] == 0 or not rewrite
        shown_content = content if targeted and len(content) <= MAX_SHOWN_CHARS else ""
        prompt = render_prompt(
            "fix_file",
            path=path,
            failure=failure,
            worse=worse.get(path, ""),
            content=shown_content,
            language=_FENCE_LANGUAGES.get(Path(path).suffix.lower(), ""),
            detail=self.details.get(path, ""),
            how=reply_form,
        )
        allowed = [WRITE_TOOL] if rewrite else None
        return RepairPlan(path, prompt, allowed, direct=reply_form == "block"), restored

    def settle(self, verification: Verification, editable: set[str]) -> list[str]:
        """Put back each file whose best version scored higher than it does now; return those put back."""
        restored, _ = self._keep_best(verification.outcomes, self._failures(verification, editable), editable)
        return restored

    def _failures(self, verification: Verification, editable: set[str]) -> dict[str, str]:
        """Map each editable text file a failing check is about to that check's message, in the checks' order."""
        failures: dict[str, str] = {}
        outcomes = verification.outcomes or [CheckOutcome("checks", False, verification.failure)]
        for outcome in outcomes:
            if outcome.passed:
                continue
            files = outcome.files or [name for name in self.task_files if name in outcome.message]
            for name in files:
                if name not in failures and name in editable and self._text(name) is not None:
                    failures[name] = outcome.message
        return failures

    def _keep_best(
        self, outcomes: list[CheckOutcome], failures: dict[str, str], editable: set[str]
    ) -> tuple[list[str], dict[str, str]]:
        """Put back each file that scores lower than its best version; remember each that scores as well or better.

        Returns the files put back, and for each the failure its worse version had. `failures` is
        updated to the best versions' failures.
        """
        restored: list[str] = []
        worse: dict[str, str] = {}
        for name in dict.fromkeys(name for outcome in outcomes for name in outcome.files if name in editable):
            about = [outcome for outcome in outcomes if name in outcome.files]
            if any(outcome.progress is None for outcome in about):
                continue
            score = sum(outcome.progress for outcome in about)
            best = self.best.get(name)
            if best is not None and score < best.score:
                if self._restore(name, best.content):
                    restored.append(name)
                worse[name] = failures.get(name, "")
                failures[name] = best.failure
                continue
            try:
                self.best[name] = Snapshot(score, failures.get(name, ""), (self.root / name).read_bytes())
            except OSError:
                continue
        # A file put back fails as its best version did, which may be no failure at all.
        for name in restored:
            if not failures.get(name):
                failures.pop(name, None)
        return restored, worse

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
