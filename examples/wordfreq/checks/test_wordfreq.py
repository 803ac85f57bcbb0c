"""Acceptance checks for top_words in wordfreq.py, run from the workspace that contains it."""

import wordfreq


def assert_top(text, n, expected):
    got = [tuple(item) for item in wordfreq.top_words(text, n)]
    assert got == expected, f"top_words({text!r}, {n}) returned {got}, expected {expected}"


def test_counts_most_frequent_first():
    assert_top("a b b c c c", 3, [("c", 3), ("b", 2), ("a", 1)])


def test_ignores_case():
    assert_top("The the THE tHe", 5, [("the", 4)])


def test_ignores_punctuation_and_digits():
    assert_top("Hello, world! hello... 42 world-wide", 5, [("hello", 2), ("world", 2), ("wide", 1)])


def test_keeps_apostrophes_inside_words():
    assert_top("Don't stop. 'don't' it's", 5, [("don't", 2), ("it's", 1), ("stop", 1)])


def test_orders_ties_alphabetically():
    assert_top("pear apple fig apple pear fig kiwi", 4, [("apple", 2), ("fig", 2), ("pear", 2), ("kiwi", 1)])


def test_limits_to_n_words():
    assert_top("e d c b a", 2, [("a", 1), ("b", 1)])


def test_returns_fewer_when_text_is_short():
    assert_top("one", 10, [("one", 1)])


def test_empty_text_has_no_words():
    assert_top("", 10, [])
