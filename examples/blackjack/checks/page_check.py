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
# A card reads rank then suit, with the suit as a letter or a suit symbol.
CARD = re.compile(r"^(10|[2-9AJQK])\s*([SHDC\u2660\u2665\u2666\u2663])$", re.IGNORECASE)
NUMBER = re.compile(r"-?\d+")
CASES = {"bust", "stand", "ace as 1", "ace as 11"}


# Reads everything the check compares in one browser call.
SNAPSHOT_SCRIPT = """() => {
  const byId = (id) => document.getElementById(id);
  const cards = (id) => Array.from(document.querySelectorAll("#" + id + " .card"), (card) => card.innerText);
  return {
    player: cards("player-cards"),
    dealer: cards("dealer-cards"),
    "player-score": byId("player-score").innerText,
    "dealer-score": byId("dealer-score").innerText,
    message: byId("message").innerText,
    hit: byId("hit").disabled === true,
    stand: byId("stand").disabled === true,
  };
}"""


def check(page):
    """Play until every case has been seen: stand, hit once, hit until bust, aces as 11 and as 1."""
    for element_id in REQUIRED_IDS:
        assert page.locator(f"#{element_id}").count() == 1, f'the page has no element with id="{element_id}"'

    seen = set()
    open_round = expect_new_round(page, "after the page loaded", seen)
    for round_number in range(MAX_ROUNDS):
        if round_number >= MIN_ROUNDS and CASES <= seen:
            return
        if open_round:
            play_round(page, round_number % 3, seen)
        click(page, "new-game")
        open_round = expect_new_round(page, "after New Game", seen)

    # With a full deck every case shows up within a few dozen rounds, so a missing one is a bug.
    missing = sorted(CASES - seen)
    assert not missing, f"after {MAX_ROUNDS} rounds the game never showed: {', '.join(missing)}"


def play_round(page, strategy, seen):
    """Stand at once (strategy 0), hit once then stand (1), or hit until bust (2)."""
    hits = 0
    while strategy == 2 or hits < strategy:
        click(page, "hit")
        hits += 1
        state = expect_scores(page, "after Hit", seen)
        value = hand_value(state["player"])
        if value > BLACKJACK:
            expect_round_over(state, f"after the player went bust with {value}")
            assert "bust" in state["message"].lower(), f'#message shows {state["message"]!r} after a bust; it must say "Bust"'
            seen.add("bust")
            return
        if state["hit"]:
            # Some games stand by themselves at 21, but any other value must leave Hit enabled.
            assert value == BLACKJACK, f"Hit is disabled after Hit at {value}, but the player has not gone over 21"
            expect_round_over(state, "after the player reached 21")
            return

    cards_before = len(snapshot(page)["player"])
    click(page, "stand")
    state = expect_scores(page, "after Stand", seen)
    expect_round_over(state, "after Stand")
    assert len(state["player"]) == cards_before, "Stand gave the player another card"
    dealer = hand_value(state["dealer"])
    assert dealer >= DEALER_STANDS_AT, f"after Stand the dealer stopped at {dealer}; the dealer must take cards until 17 or more"
    assert state["message"].strip(), "#message is empty after Stand; it must say who won"
    seen.add("stand")


def expect_new_round(page, when, seen):
    """Check a fresh deal and return whether the round is open for Hit and Stand."""
    state = expect_scores(page, when, seen)
    for hand in HANDS:
        count = len(state[hand])
        assert count == 2, f'#{hand}-cards holds {count} elements with class="card" {when}; each hand must start with two cards'

    naturals = [hand for hand in HANDS if hand_value(state[hand]) == BLACKJACK]
    if state["hit"] or state["stand"]:
        # Ending the round on a dealt 21 is a common rule. Without one, both buttons must work.
        assert naturals, f"Hit or Stand is disabled {when}; both must be enabled for a new round"
        return False
    return True


def expect_round_over(state, when):
    for button in ("hit", "stand"):
        assert state[button], f"#{button} is still enabled {when}; the round is over"


def expect_scores(page, when, seen):
    """Compare each shown score with the value of the shown cards, and return the page's state."""
    state = snapshot(page)
    for hand in HANDS:
        cards = state[hand]
        value = hand_value(cards)
        shown = read_score(state, hand)
        assert shown == value, f"#{hand}-score shows {shown} {when}, but the cards {cards} are worth {value}"
        note_aces(cards, seen)
    dealt = state["player"] + state["dealer"]
    repeated = sorted({card for card in dealt if dealt.count(card) > 1})
    assert not repeated, f"{repeated} shown twice {when}; a deck holds each card once"
    return state


def snapshot(page):
    """Return the cards as normalized strings, the score texts, the message and which buttons are disabled."""
    state = page.evaluate(SNAPSHOT_SCRIPT)
    for hand in HANDS:
        state[hand] = [read_card(text, hand) for text in state[hand]]
    return state


def read_card(text, hand):
    match = CARD.match(text.strip())
    assert match, f'a card in #{hand}-cards reads {text.strip()!r}; a card must read like "AS" or "10H"'
    return match.group(1).upper() + match.group(2).upper()


def read_score(state, hand):
    text = state[f"{hand}-score"]
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
