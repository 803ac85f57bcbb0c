"""Settings checked against their rules at load time, and the settings a project file may not set."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.config import KV_TYPES, RULES, SAFETY_SETTINGS, SANDBOX_BACKENDS, Settings, load_settings, user_config_path
from agent.errors import UsageError
from tests.conftest import call, write_script

runner = CliRunner()


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("MAX_STEPS", "-1", "setting 'max_steps' cannot be -1; allowed: an integer >= 1."),
        ("MAX_STEPS", "0", "setting 'max_steps' cannot be 0; allowed: an integer >= 1."),
        ("MAX_SECONDS", "-5", "setting 'max_seconds' cannot be -5.0; allowed: a number > 0."),
        ("CTX", "-1", "setting 'ctx' cannot be -1; allowed: an integer >= 512."),
        ("CTX", "511", "setting 'ctx' cannot be 511; allowed: an integer >= 512."),
        ("KV_TYPE", "bogus", "setting 'kv_type' cannot be 'bogus'; allowed: one of f16, q8_0, q4_0."),
        ("ENGINE", "foo", "setting 'engine' cannot be 'foo'; allowed: one of llamacpp, openai, scripted."),
        ("TOOL_CHOICE", "sometimes", "setting 'tool_choice' cannot be 'sometimes'; allowed: one of required, auto."),
        ("SANDBOX", "off", "setting 'sandbox' cannot be 'off'; allowed: one of auto, bwrap, none."),
        ("TEMPERATURE", "-0.1", "setting 'temperature' cannot be -0.1; allowed: a number >= 0."),
        ("TOP_P", "0", "setting 'top_p' cannot be 0.0; allowed: a number > 0 and <= 1."),
        ("TOP_P", "1.5", "setting 'top_p' cannot be 1.5; allowed: a number > 0 and <= 1."),
        ("TOP_P", "nan", "setting 'top_p' cannot be nan; allowed: a number > 0 and <= 1."),
        ("GPU_LAYERS", "-2", "setting 'gpu_layers' cannot be -2; allowed: an integer >= -1."),
        ("COMMAND_TIMEOUT", "0", "setting 'command_timeout' cannot be 0.0; allowed: a number > 0."),
        ("SEED", "-1", "setting 'seed' cannot be -1; allowed: an integer >= 0."),
    ],
)
def test_out_of_range_environment_value_is_rejected(tmp_path, variable, value, expected):
    with pytest.raises(UsageError) as raised:
        load_settings(cwd=tmp_path, env={f"GEMMA_AGENT_{variable}": value})
    assert str(raised.value) == f"environment: {expected}"


def test_bad_file_value_names_file_and_line(tmp_path):
    path = tmp_path / "gemma-agent.toml"
    path.write_text('ctx = 4096\nkv_type = "q5"\n')
    with pytest.raises(UsageError) as raised:
        load_settings(cwd=tmp_path, env={})
    assert str(raised.value) == f"{path}:2: setting 'kv_type' cannot be 'q5'; allowed: one of f16, q8_0, q4_0."


def test_bad_flag_names_the_command_line(tmp_path):
    with pytest.raises(UsageError, match=r"^command line: setting 'max_steps' cannot be -1"):
        load_settings({"max_steps": -1}, cwd=tmp_path, env={})


@pytest.mark.parametrize(
    ("key", "value"),
    [("top_p", 1.0), ("temperature", 0.0), ("ctx", 512), ("gpu_layers", -1), ("threads", 0), ("tool_choice", "auto"), ("kv_type", "q4_0")],
)
def test_values_on_the_boundary_are_accepted(tmp_path, key, value):
    assert getattr(load_settings({key: value}, cwd=tmp_path, env={}), key) == value


def test_every_default_follows_its_rule():
    defaults = Settings()
    for key, rule in RULES.items():
        assert hasattr(defaults, key), key
        assert rule.allows(getattr(defaults, key)), key


def test_choices_match_what_the_engines_and_sandbox_accept():
    from agent.recommend import KV_TYPE_FACTORS
    from agent.sandbox import BACKENDS

    assert set(KV_TYPES) == set(KV_TYPE_FACTORS)
    assert set(SANDBOX_BACKENDS) == set(BACKENDS)


def test_build_with_negative_max_steps_stops_before_running(tmp_path):
    script = write_script(tmp_path / "s.jsonl", [call("write_file", path="a.txt", content="x")])
    workspace = tmp_path / "ws"

    result = runner.invoke(app, ["build", "Do it", "--engine", "scripted", "--script", str(script), "--workspace", str(workspace), "--max-steps", "-1"])

    assert result.exit_code == 2
    assert "command line: setting 'max_steps' cannot be -1; allowed: an integer >= 1." in result.output
    assert "Stopped after" not in result.output
    assert not workspace.exists()


def test_config_show_fails_on_a_bad_environment_value(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GEMMA_AGENT_KV_TYPE", "bogus")
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == 2
    assert "environment: setting 'kv_type' cannot be 'bogus'" in result.output


# -- settings a project file may not set --------------------------------------------------------


@pytest.mark.parametrize("line", ['sandbox = "none"', "allow_network = true", '[agent]\nallow-network = true'])
def test_project_file_may_not_loosen_safety(tmp_path, line):
    path = tmp_path / "gemma-agent.toml"
    path.write_text(f"ctx = 4096\n{line}\n")
    with pytest.raises(UsageError) as raised:
        load_settings(cwd=tmp_path, env={})
    message = str(raised.value)
    key = "sandbox" if "sandbox" in line else "allow_network"
    number = line.count("\n") + 2
    assert message.startswith(f"{path}:{number}: {key!r} may not be set in the project file gemma-agent.toml")
    assert str(user_config_path()) in message
    assert f"GEMMA_AGENT_{key.upper()}" in message
    assert f"--{key.replace('_', '-')}" in message


def test_safety_settings_allowed_outside_project_file(tmp_path):
    user_file = user_config_path()
    user_file.parent.mkdir(parents=True, exist_ok=True)
    user_file.write_text('sandbox = "none"\n')
    assert load_settings(cwd=tmp_path, env={}).sandbox == "none"
    assert load_settings(cwd=tmp_path, env={"GEMMA_AGENT_ALLOW_NETWORK": "1"}).allow_network is True
    assert load_settings({"sandbox": "bwrap"}, cwd=tmp_path, env={}).sandbox == "bwrap"


def test_safety_settings_are_settings():
    assert SAFETY_SETTINGS <= set(RULES) | {"allow_network"}
    assert all(hasattr(Settings(), key) for key in SAFETY_SETTINGS)


def test_build_refuses_project_file_turning_sandbox_off(tmp_path, monkeypatch):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "gemma-agent.toml").write_text('sandbox = "none"\n')
    script = write_script(tmp_path / "s.jsonl", [call("run_command", command="touch ran")])
    monkeypatch.chdir(workspace)

    result = runner.invoke(app, ["build", "Do it", "--engine", "scripted", "--script", str(script)])

    assert result.exit_code == 2
    assert "'sandbox' may not be set in the project file" in result.output
    assert not (workspace / "ran").exists()


# -- the hint for an unknown key --------------------------------------------------------------


def test_unknown_key_without_close_match_lists_the_settings(tmp_path):
    (tmp_path / "gemma-agent.toml").write_text("flavour = 1\n")
    with pytest.raises(UsageError) as raised:
        load_settings(cwd=tmp_path, env={})
    message = str(raised.value)
    # `config show` reads the same file and would fail too, so the message must not send the user there.
    assert "config show" not in message
    assert "Known settings: engine, model," in message
    assert "max_steps" in message


def test_unknown_key_hint_avoids_failing_config_show(tmp_path, monkeypatch):
    (tmp_path / "gemma-agent.toml").write_text("temprature = 0.3\n")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == 2
    assert "Did you mean 'temperature'?" in result.output
    assert "config show" not in result.output
