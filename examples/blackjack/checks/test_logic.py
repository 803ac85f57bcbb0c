"""Acceptance checks for blackjack.py, run from the workspace that contains it."""

import pytest

import blackjack

RANKS = ["A", "2", "3", "4", "5", "6", "7", "8", "9", "10", "J", "Q", "K"]
SUITS = ["S", "H", "D", "C"]
ALL_CARDS = {rank + suit for rank in RANKS for suit in SUITS}

ACE_HANDS = [
    (["AS", "KD"], 21),
    (["AS", "AH"], 12),
    (["AS", "AH", "9C"], 21),
    (["AS", "5D", "KC"], 16),
    (["AS", "AH", "AD", "8C"], 21),
    (["AS", "6D"], 17),
    (["AS", "6D", "9H"], 16),
    (["AS", "AH", "AD", "AC"], 14),
    (["AS", "AH", "KD", "QC"], 22),
]


def assert_value(cards, expected):
    got = blackjack.hand_value(cards)
    assert got == expected, f"hand_value({cards}) returned {got!r}, expected {expected}"


def test_deck_has_52_cards():
    deck = list(blackjack.new_deck())
    assert len(deck) == 52, f"new_deck() returned {len(deck)} cards, expected 52"


def test_deck_cards_are_unique():
    deck = list(blackjack.new_deck())
    repeated = sorted({card for card in deck if deck.count(card) > 1})
    assert not repeated, f"new_deck() repeats {repeated}; every card must appear once"


def test_deck_holds_every_card():
    deck = set(blackjack.new_deck())
    missing = sorted(ALL_CARDS - deck)
    assert not missing, f"new_deck() lacks {missing[:5]}; cards are rank then suit, such as 'AS' or '10H'"


@pytest.mark.parametrize("number", range(2, 11))
def test_number_cards_count_face_value(number):
    for suit in SUITS:
        assert_value([f"{number}{suit}"], number)
    assert_value([f"{number}S", "2H"], number + 2)


@pytest.mark.parametrize("rank", ["J", "Q", "K"])
def test_face_cards_count_ten(rank):
    assert_value([f"{rank}S"], 10)
    assert_value([f"{rank}H", "5D"], 15)
    assert_value([f"{rank}C", "QD", "2S"], 22)


@pytest.mark.parametrize(("cards", "expected"), ACE_HANDS)
def test_aces_count_eleven_or_one(cards, expected):
    assert_value(cards, expected)
