"""Blackjack game logic: a 52-card deck and hand values with aces counted as 11 or 1.

A card is a string of its rank then its suit, such as "AS", "10H", "QD" or "7C".
"""

import random

RANKS = ["A", "2", "3", "4", "5", "6", "7", "8", "9", "10", "J", "Q", "K"]
SUITS = ["S", "H", "D", "C"]
BLACKJACK = 21


def new_deck():
    """Return the 52 different cards in random order."""
    deck = [rank + suit for suit in SUITS for rank in RANKS]
    random.shuffle(deck)
    return deck


def card_value(card):
    """Return a card's value with an ace counted as 11."""
    rank = card[:-1]
    if rank == "A":
        return 11
    if rank in ("J", "Q", "K"):
        return 10
    return int(rank)


def hand_value(cards):
    """Return the best value of a hand: each ace counts 11 unless that takes the hand over 21."""
    total = sum(card_value(card) for card in cards)
    soft_aces = sum(1 for card in cards if card[:-1] == "A")
    return total
