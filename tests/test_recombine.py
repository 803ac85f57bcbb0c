"""Combinations of a Python file's versions: one top-level definition of an earlier version put into the best one."""

from __future__ import annotations

import ast

from agent.recombine import MAIN_BLOCK, combinations

BEST = '''"""Word counts."""
import re


def top_words(text, n):
    return []


def main():
    print("usage")


if __name__ == "__main__":
    main()
'''

EARLIER = '''import sys
from collections import Counter


def tokens(text):
    return text.split()


@staticmethod
def top_words(text, n):
    return Counter(tokens(text)).most_common(n)


def main():
    print("usage")


if "__main__" == __name__:
    main(sys.argv)
'''


def by_name(found):
    return {combination.name: combination.text for combination in found}


def test_only_differing_definitions_offered():
    found = by_name(combinations(BEST, EARLIER))

    assert sorted(found) == sorted(["top_words", MAIN_BLOCK])
    for text in found.values():
        ast.parse(text)


def test_definition_brings_imports_and_helpers():
    text = by_name(combinations(BEST, EARLIER))["top_words"]

    assert text.startswith('"""Word counts."""\nimport re\nimport sys\nfrom collections import Counter\n')
    assert "def tokens(text):" in text
    assert text.index("def tokens(text):") < text.index("@staticmethod\ndef top_words")
    assert "return []" not in text
    assert text.endswith('if __name__ == "__main__":\n    main()\n')


def test_main_block_replaced():
    text = by_name(combinations(BEST, EARLIER))[MAIN_BLOCK]

    assert text.endswith('if "__main__" == __name__:\n    main(sys.argv)\n')
    assert text.count("__main__") == 1
    assert "return []" in text


def test_unparsable_version_offers_nothing():
    assert combinations(BEST, "def top_words(:\n") == []
    assert combinations("def f(:\n", EARLIER) == []


def test_same_versions_offer_nothing():
    assert combinations(BEST, BEST) == []


def test_future_import_stays_first():
    best = "from __future__ import annotations\n\ndef f():\n    return 1\n"
    earlier = "from __future__ import annotations\nimport os\n\ndef f():\n    return os.sep\n"

    (combination,) = combinations(best, earlier)

    assert combination.text.startswith("from __future__ import annotations\nimport os\n")


def test_form_feed_keeps_blocks_whole():
    best = "def f():\n    return 1\n#\x0c\ndef g():\n    return 2\n"
    earlier = "def f():\n    return 3\n\ndef g():\n    return 2\n"

    (combination,) = combinations(best, earlier)

    assert combination.name == "f"
    assert combination.text == "def f():\n    return 3\n#\x0c\ndef g():\n    return 2\n"


def test_shebang_stays_first():
    (combination,) = combinations("#!/usr/bin/env python3\ndef f():\n    return 1\n", "import re\ndef f():\n    return re\n")

    assert combination.text.startswith("#!/usr/bin/env python3\nimport re\n")


def test_helper_never_shadows_best_name():
    best = 'from os.path import join\n\ndef f():\n    return 1\n\ndef g():\n    return join("a", "b")\n'
    earlier = 'def join(a, b):\n    return a + b\n\ndef f():\n    return join("x", "y")\n'

    (combination,) = combinations(best, earlier)

    assert "def join" not in combination.text


def test_import_sharing_line_with_code_not_copied():
    best = "def f():\n    return 1\n"
    earlier = "import os; X = os.getcwd()\nimport re; import sys\n\ndef f():\n    return 2\n"

    (combination,) = combinations(best, earlier)

    assert "X = " not in combination.text
    assert combination.text.count("import re; import sys") == 1


def test_byte_order_mark_kept_in_combinations():
    found = by_name(combinations("\ufeff" + BEST, "\ufeff" + EARLIER))

    assert sorted(found) == sorted(["top_words", MAIN_BLOCK])
    assert found["top_words"].startswith('\ufeff"""Word counts."""')
    assert found["top_words"].count("\ufeff") == 1
    assert by_name(combinations(BEST, "\ufeff" + EARLIER))["top_words"].startswith('"""Word counts."""')
