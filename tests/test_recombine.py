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
