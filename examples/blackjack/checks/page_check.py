"""Plays rounds of the Blackjack page in a real browser and checks every score, button and deal.

The eval harness opens index.html, calls `check(page)` with a Playwright page and fails the check
on the first AssertionError or browser console error. Each score is recomputed here from the cards
shown, independently of the page's own code.
"""

import re

MIN_ROUNDS = 30
MAX_ROUNDS = 150
BLACKJACK = 21
DEALER_STANDS_AT = 17
HANDS = ("player", "dealer")
BUTTONS = ("hit", "stand", "new-game")
REQUIRED_IDS = BUTTONS + ("player-cards", "player-score", "dealer-cards", "dealer-score", "message")
# A card reads rank then suit; suit symbols are accepted as well as letters.
CARD = re.compile(r"^(10|[2-9AJQK])\s*([SHDC\u2660\u2665\u2666\u2663])$", re.IGNORECASE)
NUMBER = re.compile(r"-?\d+")


def check(page):
    """Play until every case has been seen: stand, hit once, hit until bust, aces as 11 and as 1."""
    for element_id in REQUIRED_IDS:
        assert page.locator(f"#{element_id}").count() == 1, f'the page has no element with id="{element_id}"'

    seen = set()
    open_round = expect_new_round(page, "after the page loaded", seen)
    for round_number in range(MAX_ROUNDS):
        if round_number >= MIN_ROUNDS and {"bust", "stand", "ace as 1", "ace as 11"} <= seen:
            return
        if open_round:
            play_round(page, round_number % 3, seen)
        click(page, "new-game")
        open_round = expect_new_round(page, "after New Game", seen)
    assert "bust" in seen, f"no round ended in a bust after {MAX_ROUNDS} rounds of hitting until over 21"


def play_round(page, strategy, seen):
    """Stand at once (strategy 0), hit once then stand (1), or hit until bust (2)."""
    hits = 0
    while strategy == 2 or hits < strategy:
        click(page, "hit")
        hits += 1
        value = expect_scores(page, "after Hit", seen)
        if value > BLACKJACK:
            expect_round_over(page, f"after the player went bust with {value}")
            message = page.locator("#message").inner_text()
            assert "bust" in message.lower(), f'#message shows {message!r} after a bust; it must say "Bust"'
            seen.add("bust")
            return
        if page.locator("#hit").is_disabled():
            # Some games stand by themselves at 21; any other value must leave Hit enabled.
            assert value == BLACKJACK, f"Hit is disabled after Hit at {value}, but the player has not gone over 21"
            expect_round_over(page, "after the player reached 21")
            return

    cards_before = len(read_cards(page, "player"))
    click(page, "stand")
    expect_scores(page, "after Stand", seen)
    expect_round_over(page, "after Stand")
    assert len(read_cards(page, "player")) == cards_before, "Stand gave the player another card"
    dealer = hand_value(read_cards(page, "dealer"))
    assert dealer >= DEALER_STANDS_AT, f"after Stand the dealer stopped at {dealer}; the dealer must take cards until 17 or more"
    assert page.locator("#message").inner_text().strip(), "#message is empty after Stand; it must say who won"
    seen.add("stand")


def expect_new_round(page, when, seen):
    """Check a fresh deal; return whether the round is open for Hit and Stand."""
    for hand in HANDS:
        count = len(read_cards(page, hand))
        assert count == 2, f"#{hand}-cards shows {count} cards {when}; each hand must start with two"
    expect_scores(page, when, seen)

    naturals = [hand for hand in HANDS if hand_value(read_cards(page, hand)) == BLACKJACK]
    if page.locator("#hit").is_disabled() or page.locator("#stand").is_disabled():
        # Ending the round on a dealt 21 is a common rule; without one, both buttons must work.
        assert naturals, f"Hit or Stand is disabled {when}; both must be enabled for a new round"
        return False
    return True


def expect_round_over(page, when):
    for button in ("hit", "stand"):
        assert page.locator(f"#{button}").is_disabled(), f"#{button} is still enabled {when}; the round is over"


def expect_scores(page, when, seen):
    """Compare each shown score with the value of the shown cards; return the player's value."""
    dealt = []
    for hand in HANDS:
        cards = read_cards(page, hand)
        value = hand_value(cards)
        shown = read_score(page, hand)
        assert shown == value, f"#{hand}-score shows {shown} {when}, but the cards {cards} are worth {value}"
        note_aces(cards, seen)
        dealt += cards
    repeated = sorted({card for card in dealt if dealt.count(card) > 1})
    assert not repeated, f"{repeated} shown twice {when}; a deck holds each card once"
    return hand_value(read_cards(page, "player"))


def read_cards(page, hand):
    texts = page.locator(f"#{hand}-cards .card").all_inner_texts()
    cards = []
    for text in texts:
        match = CARD.match(text.strip())
        assert match, f'a card in #{hand}-cards reads {text.strip()!r}; a card must read like "AS" or "10H"'
        cards.append(match.group(1).upper() + match.group(2).upper())
    return cards


def read_score(page, hand):
    text = page.locator(f"#{hand}-score").inner_text()
    match = NUMBER.search(text)
    assert match, f"#{hand}-score shows {text!r}, which holds no number"
    return int(match.group())


def click(page, button):
    assert page.locator(f"#{button}").is_enabled(), f"#{button} is disabled when it should be enabled"
    page.click(f"#{button}")


def rank_value(card, ace):
    rank = card[:-1]
    if rank == "A":
        return ace
    return 10 if rank in ("J", "Q", "K") else int(rank)


def hand_value(cards):
    total = sum(rank_value(card, ace=11) for card in cards)
    soft_aces = sum(1 for card in cards if card.startswith("A"))
    while total > BLACKJACK and soft_aces:
        total -= 10
        soft_aces -= 1
    return total


def note_aces(cards, seen):
    aces = sum(1 for card in cards if card.startswith("A"))
    hard_total = sum(rank_value(card, ace=1) for card in cards)
    aces_as_eleven = (hand_value(cards) - hard_total) // 10
    if aces_as_eleven:
        seen.add("ace as 11")
    if aces_as_eleven < aces:
        seen.add("ace as 1")
