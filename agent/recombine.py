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
from dataclasses import dataclass

MAIN_BLOCK = 'if __name__ == "__main__"'


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


def combinations(best: str, earlier: str) -> list[Combination]:
    """Return `best` with each definition that `earlier` writes differently put in its place.

    The definition brings along the imports and the definitions of `earlier` that `best` lacks, since
    it may use them. Only results that parse are returned.
    """
    best_parts = _top_level(best)
    earlier_parts = _top_level(earlier)
    if best_parts is None or earlier_parts is None:
        return []
    best_definitions, best_imports, import_end = best_parts
    earlier_definitions, earlier_imports, _ = earlier_parts

    lines = best.splitlines(keepends=True)
    known_imports = {block.text.strip() for block in best_imports}
    new_imports = "".join(_line(block.text) for block in earlier_imports if block.text.strip() not in known_imports)
    helpers = "".join(
        _line(block.text) + "\n"
        for name, block in earlier_definitions.items()
        if name not in best_definitions and name != MAIN_BLOCK
    )

    found: list[Combination] = []
    for name, block in best_definitions.items():
        replacement = earlier_definitions.get(name)
        if replacement is None or replacement.text.strip() == block.text.strip():
            continue
        if import_end <= block.start:
            head = lines[:import_end] + [new_imports] + lines[import_end:block.start]
        else:
            # An import below this definition: the new imports go right above it instead.
            head = lines[:block.start] + [new_imports]
        text = "".join(head + [helpers, _line(replacement.text)] + lines[block.end:])
        if _parses(text) and text != best:
            found.append(Combination(name, text))
    return found


def _top_level(source: str) -> tuple[dict[str, _Block], list[_Block], int] | None:
    """Return the top-level definitions by name, the top-level import statements, and the line after
    the last import or the module docstring (0 when neither); None when `source` does not parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    lines = source.splitlines(keepends=True)
    definitions: dict[str, _Block] = {}
    imports: list[_Block] = []
    head_end = 0
    for index, node in enumerate(tree.body):
        if isinstance(node, (ast.Import, ast.ImportFrom)) or (index == 0 and _is_docstring(node)):
            head_end = max(head_end, node.end_lineno or node.lineno)
        start = min([node.lineno] + [decorator.lineno for decorator in getattr(node, "decorator_list", [])]) - 1
        block = _Block(start, node.end_lineno or node.lineno, "".join(lines[start:node.end_lineno]))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            definitions[node.name] = block
        elif isinstance(node, ast.If) and _is_main_check(node.test):
            definitions[MAIN_BLOCK] = block
        elif isinstance(node, (ast.Import, ast.ImportFrom)) and not _is_future(node):
            imports.append(block)
    return definitions, imports, head_end


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
    return text if text.endswith("\n") else text + "\n"


def _parses(text: str) -> bool:
    """Tell whether `text` compiles; compiling also catches what parsing lets through, such as a misplaced __future__ import."""
    try:
        compile(text, "<combination>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True
