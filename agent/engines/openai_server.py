"""Detect the kind of OpenAI-compatible server at a URL, its model, context size and tokenizer.

Each server tells its context size in its own way: llama-server in `GET /props`, Ollama in
`POST /api/show` and `GET /api/ps`, vLLM as `max_model_len` in `GET /v1/models`, LM Studio as
`loaded_context_length` in `GET /api/v0/models`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from agent.engines.openai_http import ServerClient

logger = logging.getLogger(__name__)

LLAMA_SERVER = "llama-server"
OLLAMA = "ollama"
VLLM = "vllm"
LLAMA_CPP_PYTHON = "llama-cpp-python"
GENERIC = "openai-compatible"

# Field names that OpenAI-compatible servers use for a model's context window in /v1/models.
CONTEXT_FIELDS = ("max_model_len", "loaded_context_length", "context_length", "context_window", "max_context_length")


@dataclass
class ServerInfo:
    """The probe result: server kind, the model to request and its context size (None if unknown)."""

    kind: str = GENERIC
    model: str = ""
    context_size: int | None = None
    models: list[str] = field(default_factory=list)
    # The context the server has actually allocated, where it differs from the model's maximum (Ollama).
    loaded_context_size: int | None = None


def probe_server(client: ServerClient, requested_model: str) -> ServerInfo:
    """Ask the server about itself. Raises EngineError when nothing listens at the base URL."""
    listing = client.get_json(f"{client.base_url}/models") or {}
    entries = [entry for entry in listing.get("data", []) if isinstance(entry, dict)] if isinstance(listing, dict) else []
    info = ServerInfo(models=[str(entry.get("id", "")) for entry in entries])
    info.model = requested_model or (info.models[0] if info.models else "")
    if requested_model and info.models and requested_model not in info.models:
        logger.warning("Model %r is not in the server's list (%s)", requested_model, ", ".join(info.models))

    props = client.get_json(f"{client.root_url}/props")
    if isinstance(props, dict) and "default_generation_settings" in props:
        info.kind = LLAMA_SERVER
        settings = props.get("default_generation_settings") or {}
        info.context_size = _positive_int(settings.get("n_ctx")) or _positive_int(props.get("n_ctx"))
        return info

    entry = next((e for e in entries if e.get("id") == info.model), entries[0] if entries else {})
    if "max_model_len" in entry:
        info.kind = VLLM
        info.context_size = _positive_int(entry["max_model_len"])
        return info

    version = client.get_json(f"{client.root_url}/api/version")
    if isinstance(version, dict) and "version" in version:
        info.kind = OLLAMA
        _probe_ollama(client, info)
        return info

    info.context_size = _context_from_entry(entry) or _probe_lm_studio(client, info.model)
    if client.post_json(f"{client.root_url}/extras/tokenize/count", {"input": "a"}) is not None:
        info.kind = LLAMA_CPP_PYTHON
    return info


def _probe_ollama(client: ServerClient, info: ServerInfo) -> None:
    details = client.post_json(f"{client.root_url}/api/show", {"model": info.model}) or {}
    model_info = details.get("model_info") or {}
    for key, value in model_info.items():
        if key.endswith(".context_length"):
            info.context_size = _positive_int(value)
    running = client.get_json(f"{client.root_url}/api/ps") or {}
    for model in running.get("models") or []:
        if model.get("name") == info.model or model.get("model") == info.model:
            info.loaded_context_size = _positive_int(model.get("context_length"))


def _probe_lm_studio(client: ServerClient, model: str) -> int | None:
    listing = client.get_json(f"{client.root_url}/api/v0/models") or {}
    for entry in listing.get("data") or [] if isinstance(listing, dict) else []:
        if isinstance(entry, dict) and entry.get("id") == model:
            return _context_from_entry(entry)
    return None


def _context_from_entry(entry: dict[str, Any]) -> int | None:
    for name in CONTEXT_FIELDS:
        size = _positive_int(entry.get(name))
        if size:
            return size
    meta = entry.get("meta")
    if isinstance(meta, dict):
        return _positive_int(meta.get("n_ctx_train"))
    return None


def _positive_int(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def count_with_server(client: ServerClient, info: ServerInfo, payload: dict[str, Any], flat_text: str) -> int | None:
    """Count the prompt's tokens with the server's tokenizer. Return None where the server offers none.

    llama-server and vLLM apply the chat template first, so their count is the real prompt's;
    llama-cpp-python only tokenizes `flat_text`, which leaves out the template's markup.
    """
    if info.kind == LLAMA_SERVER:
        rendered = client.post_json(f"{client.root_url}/apply-template", payload)
        prompt = rendered.get("prompt") if isinstance(rendered, dict) else None
        if isinstance(prompt, str):
            tokens = client.post_json(f"{client.root_url}/tokenize", {"content": prompt, "add_special": True})
            if isinstance(tokens, dict) and isinstance(tokens.get("tokens"), list):
                return len(tokens["tokens"])
        return None
    if info.kind == VLLM:
        body = {**payload, "add_generation_prompt": True}
        counted = client.post_json(f"{client.root_url}/tokenize", body)
        return _positive_int(counted.get("count")) if isinstance(counted, dict) else None
    if info.kind == LLAMA_CPP_PYTHON:
        counted = client.post_json(f"{client.root_url}/extras/tokenize/count", {"input": flat_text})
        return _positive_int(counted.get("count")) if isinstance(counted, dict) else None
    return None
