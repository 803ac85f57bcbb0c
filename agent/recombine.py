"""Combining versions of a Python file: one top-level definition of an earlier version put into the best one.

A small model that writes a file afresh several times often gets different parts right in different
tries. In one wordfreq run, Qwen2.5-Coder-1.5B wrote versions whose `top_words` passed every test
while the command line failed, and others whose command line read its file while `top_words` ordered
ties wrongly. None of its 14 versions got both. The checks can tell which combination works, so the
loop tries the best version with one definition (a function, a class, or the
`if __name__ == "__main__":` block) taken from an earlier version, and keeps a combination that
scores higher. Every line is still one the model wrote.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

MAIN_BLOCK = 'if __name__ == "__main__"'
BYTE_ORDER_MARK = "\ufeff"
# A source line as Python counts lines: str.splitlines() also breaks at form feeds and other
# characters that Python keeps inside a line, which would shift every block after them.
_SOURCE_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
_PARSE_ERRORS = (SyntaxError, ValueError, RecursionError, MemoryError)


@dataclass(frozen=True)
class Combination:
    """The best version with the definition `name` taken from an earlier version: the new file's text."""

    name: str
    text: str


@dataclass(frozen=True)
class _Block:
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class _Module:
    """A parsed version: its lines, top-level definitions by name, import statements, the names bound
    at top level, and the line new imports go before (after the leading comments, docstring and imports)."""

    lines: list[str]
    definitions: dict[str, _Block]
    imports: list[_Block]
    bound: set[str]
    head_end: int


def combinations(best: str, earlier: str) -> list[Combination]:
    """Return `best` with each definition that `earlier` writes differently put in its place.

    The definition brings along the imports and the definitions of `earlier` that `best` lacks, since
    it may use them. A definition whose name `best` binds otherwise (an import, an assignment) stays
    behind, because it would change what `best` means by that name. Only results that compile are returned.
    """
    # Python reads a file that starts with a byte-order mark, but ast.parse rejects the mark in a str.
    mark = BYTE_ORDER_MARK if best.startswith(BYTE_ORDER_MARK) else ""
    best, earlier = best.removeprefix(BYTE_ORDER_MARK), earlier.removeprefix(BYTE_ORDER_MARK)
    ours = _module(best)
    theirs = _module(earlier)
    if ours is None or theirs is None:
        return []

    known_imports = {block.text.strip() for block in ours.imports}
    new_imports = "".join(dict.fromkeys(_line(block.text) for block in theirs.imports if block.text.strip() not in known_imports))
    helpers = "".join(
        _line(block.text) + "\n"
        for name, block in theirs.definitions.items()
        if name not in ours.bound and name != MAIN_BLOCK
    )

    found: list[Combination] = []
    for name, block in ours.definitions.items():
        replacement = theirs.definitions.get(name)
        if replacement is None or replacement.text.strip() == block.text.strip():
            continue
        lines = ours.lines
        if ours.head_end <= block.start:
            head = lines[:ours.head_end] + [new_imports] + lines[ours.head_end:block.start]
        else:
            # An import below this definition: the new imports go right above it instead.
            head = lines[:block.start] + [new_imports]
        text = "".join(head + [helpers, _line(replacement.text)] + lines[block.end:])
        if text != best and _compiles(text):
            found.append(Combination(name, mark + text))
    return found


def _module(source: str) -> _Module | None:
    """Parse one version into its parts; return None when it does not parse."""
    try:
        tree = ast.parse(source)
    except _PARSE_ERRORS:
        return None
    lines = _SOURCE_LINE.findall(source)
    definitions: dict[str, _Block] = {}
    imports: list[_Block] = []
    bound: set[str] = set()
    # New imports never go above a shebang, an encoding line or other leading comments.
    head_end = next((index for index, line in enumerate(lines) if not line.lstrip().startswith("#")), len(lines))
    for index, node in enumerate(tree.body):
        start = min([node.lineno] + [decorator.lineno for decorator in getattr(node, "decorator_list", [])]) - 1
        end = node.end_lineno or node.lineno
        block = _Block(start, end, "".join(lines[start:end]))
        bound |= _names_bound(node)
        if isinstance(node, (ast.Import, ast.ImportFrom)) or (index == 0 and _is_docstring(node)):
            head_end = max(head_end, end)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            definitions[node.name] = block
        elif isinstance(node, ast.If) and _is_main_check(node.test):
            definitions[MAIN_BLOCK] = block
        elif isinstance(node, (ast.Import, ast.ImportFrom)) and not _is_future(node) and _only_imports(block.text):
            imports.append(block)
    return _Module(lines, definitions, imports, bound, head_end)


def _names_bound(node: ast.stmt) -> set[str]:
    """Return the names a top-level statement binds: a definition, an import, an assignment."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    return {target.id for target in ast.walk(node) if isinstance(target, ast.Name) and isinstance(target.ctx, ast.Store)}


def _only_imports(text: str) -> bool:
    """Tell whether the lines of an import statement contain nothing else (`import re; x = f()` does)."""
    try:
        return all(isinstance(node, (ast.Import, ast.ImportFrom)) for node in ast.parse(text.strip()).body)
    except _PARSE_ERRORS:
        return False


def _is_main_check(test: ast.expr) -> bool:
    """Tell whether `test` is `__name__ == "__main__"`, either way round."""
    if not isinstance(test, ast.Compare) or len(test.ops) != 1 or not isinstance(test.ops[0], ast.Eq):
        return False
    sides = [test.left, test.comparators[0]]
    names = [side.id for side in sides if isinstance(side, ast.Name)]
    values = [side.value for side in sides if isinstance(side, ast.Constant)]
    return names == ["__name__"] and values == ["__main__"]


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _is_future(node: ast.stmt) -> bool:
    return isinstance(node, ast.ImportFrom) and node.module == "__future__"


def _line(text: str) -> str:
    return text if text.endswith(("\n", "\r")) else text + "\n"


def _compiles(text: str) -> bool:
    """Tell whether `text` compiles; compiling also catches what parsing lets through, such as a misplaced __future__ import."""
    try:
        compile(text, "<combination>", "exec", dont_inherit=True)
    except _PARSE_ERRORS:
        return False
    return True
