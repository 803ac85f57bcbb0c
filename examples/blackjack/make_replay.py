"""Write replay.jsonl: the scripted replies that rebuild the reference solution through the whole agent.

Run it after changing reference/ so that the replay and the reference stay the same:
    python examples/blackjack/make_replay.py
"""

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
REFERENCE = HERE / "reference"
REPLAY = HERE / "replay.jsonl"

PLAN = """1. Write blackjack.py with new_deck() and hand_value(cards), counting each ace as 11 unless that busts.
2. Write index.html with inline CSS and JavaScript: Hit, Stand and New Game buttons, cards and scores for both hands.
3. Run a quick Python check of the deck and the ace rules.
4. Finish."""

CHECK_COMMAND = (
    'python -c "import blackjack as b; d = b.new_deck(); '
    "assert len(d) == 52 and len(set(d)) == 52; "
    "assert b.hand_value(['AS', 'KD']) == 21; "
    "assert b.hand_value(['AS', 'AH']) == 12; "
    "assert b.hand_value(['AS', 'AH', '9C']) == 21; "
    "assert b.hand_value(['AS', '5D', 'KC']) == 16; "
    "assert b.hand_value(['AS', 'AH', 'AD', '8C']) == 21; "
    "print('ok')\""
)

SUMMARY = "Wrote blackjack.py (deck and hand values with soft aces) and index.html (the game page); the logic checks pass."


def call(name, arguments, text=""):
    return {"tool_calls": [{"name": name, "arguments": arguments}], "text": text}


def replies():
    return [
        {"text": PLAN},
        call("write_file", {"path": "blackjack.py", "content": (REFERENCE / "blackjack.py").read_text()},
             "First the game logic."),
        call("write_file", {"path": "index.html", "content": (REFERENCE / "index.html").read_text()},
             "Now the page."),
        call("run_command", {"command": CHECK_COMMAND, "timeout": 60}, "Checking the deck and the ace rules."),
        call("finish", {"summary": SUMMARY}),
    ]


def main():
    lines = [json.dumps(reply, ensure_ascii=False) for reply in replies()]
    REPLAY.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines)} replies to {REPLAY}")


if __name__ == "__main__":
    main()
