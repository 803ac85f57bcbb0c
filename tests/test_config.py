"""Settings layers (defaults < user file < project file < environment < flags), their errors, and `config show`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.config import load_settings, user_config_path
from agent.errors import UsageError

runner = CliRunner()


@pytest.fixture
def user_file() -> Path:
    path = user_config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def test_defaults_without_any_file(tmp_path):
    settings = load_settings(cwd=tmp_path, env={})
    assert settings.ctx == 32768
    assert settings.model_dirs == []
    assert dict((key, source) for key, _, source in settings.explain())["ctx"] == "default"


def test_each_layer_overrides_the_one_before(tmp_path, user_file):
    user_file.write_text("ctx = 1000\ntemperature = 0.5\nmax_steps = 7\nseed = 1\n")
    (tmp_path / "gemma-agent.toml").write_text("[agent]\ntemperature = 0.6\nmax-steps = 8\nseed = 2\n")
    env = {"GEMMA_AGENT_MAX_STEPS": "9", "GEMMA_AGENT_SEED": "3"}

    settings = load_settings({"seed": 4, "ctx": None}, cwd=tmp_path, env=env)

    assert (settings.ctx, settings.temperature, settings.max_steps, settings.seed) == (1000, 0.6, 9, 4)
    sources = {key: source for key, _, source in settings.explain()}
    assert sources["ctx"] == str(user_file)
    assert sources["temperature"] == str(tmp_path / "gemma-agent.toml")
    assert sources["max_steps"] == "environment"
    assert sources["seed"] == "command line"


def test_environment_converts_types(tmp_path):
    env = {"GEMMA_AGENT_THINKING": "yes", "GEMMA_AGENT_TEMPERATURE": "0.7", "GEMMA_AGENT_MODEL_DIRS": os.pathsep.join(["/a", "/b"])}
    settings = load_settings(cwd=tmp_path, env=env)
    assert settings.thinking is True
    assert settings.temperature == 0.7
    assert settings.model_dirs == ["/a", "/b"]


def test_model_dirs_from_toml_array(tmp_path):
    (tmp_path / "gemma-agent.toml").write_text('model_dirs = ["~/models", "/srv/gguf"]\n')
    assert load_settings(cwd=tmp_path, env={}).model_dirs == ["~/models", "/srv/gguf"]


def test_malformed_toml_names_file_line_and_text(tmp_path):
    path = tmp_path / "gemma-agent.toml"
    path.write_text("ctx = 4096\ntemperature = \nseed = 1\n")
    with pytest.raises(UsageError) as raised:
        load_settings(cwd=tmp_path, env={})
    message = str(raised.value)
    assert message.startswith(f"{path}:2: invalid TOML")
    assert "temperature =" in message
    assert "\n" not in message


def test_unknown_key_names_file_line_and_suggestion(tmp_path, user_file):
    user_file.write_text("# mine\ntemprature = 0.3\n")
    with pytest.raises(UsageError) as raised:
        load_settings(cwd=tmp_path, env={})
    message = str(raised.value)
    assert message.startswith(f"{user_file}:2: unknown setting 'temprature'")
    assert "Did you mean 'temperature'?" in message


def test_wrong_type_names_file_line_and_key(tmp_path):
    path = tmp_path / "gemma-agent.toml"
    path.write_text('model = "x.gguf"\nctx = "big"\n')
    with pytest.raises(UsageError) as raised:
        load_settings(cwd=tmp_path, env={})
    assert str(raised.value) == f"{path}:2: setting 'ctx' must be an integer, got 'big'."


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("ctx = 1.5", "an integer"),
        ("temperature = true", "a number"),
        ("thinking = 3", "true or false"),
        ('model = ["a"]', "a string"),
        ("model_dirs = [1, 2]", "a list of strings"),
    ],
)
def test_wrong_types_rejected(tmp_path, line, words):
    (tmp_path / "gemma-agent.toml").write_text(line + "\n")
    with pytest.raises(UsageError, match=words):
        load_settings(cwd=tmp_path, env={})


def test_wrong_type_in_environment(tmp_path):
    with pytest.raises(UsageError) as raised:
        load_settings(cwd=tmp_path, env={"GEMMA_AGENT_MAX_STEPS": "many"})
    assert str(raised.value).startswith("environment: setting 'max_steps' must be an integer")


def test_unknown_table_rejected(tmp_path):
    path = tmp_path / "gemma-agent.toml"
    path.write_text("[engine]\nctx = 5\n")
    with pytest.raises(UsageError, match=r"unknown table \[engine\]"):
        load_settings(cwd=tmp_path, env={})


def test_unreadable_file(tmp_path):
    (tmp_path / "gemma-agent.toml").mkdir()
    # A folder with the config file's name is not a file, so it is skipped rather than read.
    assert load_settings(cwd=tmp_path, env={}).ctx == 32768


def test_config_show_lists_values_and_sources(tmp_path, monkeypatch):
    (tmp_path / "gemma-agent.toml").write_text("ctx = 2048\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GEMMA_AGENT_SEED", "5")

    result = runner.invoke(app, ["config", "show", "--json"])

    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["ctx"] == {"value": 2048, "source": str(tmp_path / "gemma-agent.toml")}
    assert shown["seed"] == {"value": 5, "source": "environment"}
    assert shown["temperature"]["source"] == "default"
    assert "model_dirs" in shown


def test_config_show_table(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == 0
    assert "setting" in result.output
    assert "max_steps" in result.output


def test_config_show_broken_file_exits_2_one_line(tmp_path, monkeypatch):
    (tmp_path / "gemma-agent.toml").write_text("ctx = = 3\n")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert "gemma-agent.toml:1: invalid TOML" in result.output
