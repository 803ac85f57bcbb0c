"""Print the most frequent words of a text file or of standard input."""

import argparse
import re
import sys
from collections import Counter

WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")
DEFAULT_COUNT = 10


def top_words(text, n=DEFAULT_COUNT):
    """Return the n most frequent words as (word, count), most frequent first, ties alphabetical."""
    counts = Counter(WORD.findall(text.lower()))
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ranked[:n]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file", nargs="?", help="text file to read; standard input when omitted")
    parser.add_argument("-n", type=int, default=DEFAULT_COUNT, help="how many words to print")
    args = parser.parse_args(argv)

    with open(args.file, encoding="utf-8") as handle:
        text = handle.read()
    for word, count in top_words(text, args.n):
        print(f"{word} {count}")


if __name__ == "__main__":
    main()
