"""The sandbox's parts: output cleaning, secret masking, environment, limits, backends and run_command."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import agent.sandbox as sandbox_module
from agent.config import Settings
from agent.errors import UsageError
from agent.sandbox import (
    BwrapSandbox,
    CommandLimits,
    Sandbox,
    create_sandbox,
    describe_backend,
    mask_secrets,
    startup_notice,
)
from agent.sandbox.bwrap import probe
from agent.sandbox.environment import command_environment
from agent.sandbox.limits import detect_limit, explain
from agent.sandbox.output import OutputCollector, clean_output, cut_middle
from agent.sandbox.secrets import MASK
from agent.chat.messages import ToolCall
from agent.tool import ToolContext, ToolSet
from agent.workspace import Workspace
from tools.shell import RunCommand

BWRAP_WORKS, BWRAP_REASON = probe()
needs_bwrap = pytest.mark.skipif(not BWRAP_WORKS, reason=f"bubblewrap cannot run on this machine: {BWRAP_REASON}")


# Output cleaning


def test_clean_output_replaces_invalid_utf8():
    assert clean_output(b"ok\xff\xfe\n") == "ok\ufffd\ufffd\n"


def test_clean_output_strips_ansi_sequences():
    raw = b"\x1b[31mred\x1b[0m \x1b]0;title\x07plain \x1b[2K\x1b[1Gdone\n"

    assert clean_output(raw) == "red plain done\n"


def test_clean_output_keeps_last_progress_state():
    assert clean_output(b"10%\r50%\r100%\nnext\r\n") == "100%\nnext\n"


def test_clean_output_drops_control_characters_but_tabs():
    assert clean_output(b"a\tb\x00c\x07d\x08e\x7f\n") == "a\tbcde\n"


def test_cut_middle_keeps_head_tail_and_names_log():
    text = "".join(f"line {n}\n" for n in range(1000))

    cut = cut_middle(text, 200, 9999, ".gemma-agent/logs/x.log")

    assert cut.startswith("line 0\n")
    assert cut.endswith("line 999\n")
    assert "9999 bytes in total" in cut
    assert ".gemma-agent/logs/x.log" in cut
    assert len(cut) < 400


def test_cut_middle_leaves_short_text():
    assert cut_middle("short\n", 200, 6, "") == "short\n"


def test_collector_logs_only_long_streams(tmp_path):
    short = OutputCollector(keep_bytes=100, log_limit=10_000, log_path=tmp_path / "short.log")
    short.add(b"x" * 150)
    short.close()

    assert not short.logged
    assert short.raw() == b"x" * 150


def test_collector_keeps_head_tail_and_full_log(tmp_path):
    stream = b"".join(b"%06d\n" % n for n in range(10_000))
    collector = OutputCollector(keep_bytes=70, log_limit=1_000_000, log_path=tmp_path / "logs" / "a.log")
    for start in range(0, len(stream), 333):
        collector.add(stream[start : start + 333])
    collector.close()

    assert collector.total == len(stream)
    assert collector.has_gap
    assert collector.raw() == stream[:70] + stream[-70:]
    assert (tmp_path / "logs" / "a.log").read_bytes() == stream


def test_collector_log_stops_at_limit(tmp_path):
    collector = OutputCollector(keep_bytes=10, log_limit=500, log_path=tmp_path / "a.log")
    for _ in range(10):
        collector.add(b"y" * 100)
    collector.close()

    assert collector.over_log_limit
    assert (tmp_path / "a.log").stat().st_size == 500


# Secrets


def test_mask_secrets_hides_secret_environment_values():
    environ = {"OPENAI_API_KEY": "abc123secretvalue", "DB_PASSWORD": "hunter2hunter2", "HOME": "/home/someone"}

    masked = mask_secrets("key=abc123secretvalue pw=hunter2hunter2 home=/home/someone", environ)

    assert masked == f"key={MASK} pw={MASK} home=/home/someone"


def test_mask_secrets_hides_known_key_formats():
    samples = [
        "sk-proj-abcdefghijklmnop1234",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "AKIAIOSFODNN7EXAMPLE",
        "hf_abcdefghijklmnopqrstuvwxyz012345",
    ]
    for sample in samples:
        assert mask_secrets(f"value: {sample}.", {}) == f"value: {MASK}."


def test_mask_secrets_leaves_short_values():
    assert mask_secrets("debug is 1", {"SECRET_FLAG": "1"}) == "debug is 1"


def test_mask_secrets_hides_private_key_block():
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----"

    assert mask_secrets(f"before\n{key}\nafter", {}) == f"before\n{MASK}\nafter"


# Environment


def test_environment_is_an_allow_list(tmp_path):
    environ = {"PATH": "/usr/bin", "OPENAI_API_KEY": "sk-x", "AWS_PROFILE": "prod", "LANG": "en_US.UTF-8"}

    env = command_environment(tmp_path / "home", tmp_path, environ)

    assert "OPENAI_API_KEY" not in env
    assert "AWS_PROFILE" not in env
    assert env["PATH"] == "/usr/bin"
    assert env["LANG"] == "en_US.UTF-8"
    assert env["HOME"] == str(tmp_path / "home")


def test_environment_sets_non_interactive_values(tmp_path):
    env = command_environment(tmp_path / "home", tmp_path, {})

    for name, value in {"CI": "1", "PAGER": "cat", "GIT_PAGER": "cat", "GIT_TERMINAL_PROMPT": "0",
                        "DEBIAN_FRONTEND": "noninteractive", "PIP_NO_INPUT": "1", "npm_config_yes": "true"}.items():
        assert env[name] == value
    assert "/usr/bin" in env["PATH"]


# Limits


@pytest.mark.parametrize(
    ("exit_code", "text", "expected"),
    [
        (152, "", "cpu"),
        (153, "", "file_size"),
        (0, "bash: line 1: 3 File size limit exceededhead -c 2G", "file_size"),
        (1, "bash: fork: retry: Resource temporarily unavailable", "processes"),
        (1, "MemoryError", "memory"),
        (0, "print('MemoryError is a Python exception')", ""),
        (1, "AssertionError", ""),
        (0, "", ""),
    ],
)
def test_detect_limit(exit_code, text, expected):
    assert detect_limit(exit_code, text) == expected


def test_timeout_request_capped_by_setting():
    limits = CommandLimits(timeout=60, max_timeout=120)

    assert limits.timeout_for(None) == 60
    assert limits.timeout_for(5) == 5
    assert limits.timeout_for(10_000) == 120


def test_limits_follow_settings():
    settings = Settings(command_timeout=7, command_memory_mb=100, command_max_processes=9, output_limit=500)

    limits = CommandLimits.from_settings(settings)

    assert limits.timeout == 7
    assert limits.memory_bytes == 100 * 1024 * 1024
    assert limits.max_processes == 9
    assert limits.output_limit == 500


def test_every_limit_has_an_explanation():
    for limit in ("timeout", "output", "cpu", "memory", "processes", "file_size"):
        assert len(explain(limit, CommandLimits(), 60)) > 40


# The plain backend


@pytest.fixture
def plain(tmp_path):
    box = Sandbox(tmp_path / "ws", limits=CommandLimits(timeout=5, output_limit=300, background_wait=0.5))
    yield box
    box.close()


def test_plain_runs_in_workspace(plain, tmp_path):
    result = plain.run("pwd; exit 3")

    assert result.output == f"{tmp_path / 'ws'}\n"
    assert result.exit_code == 3
    assert result.limit == ""


def test_plain_stdin_is_closed(plain):
    started = time.monotonic()
    result = plain.run("cat; echo done")

    assert result.output == "done\n"
    assert time.monotonic() - started < 3


def test_plain_timeout_kills_background_children(plain, tmp_path):
    result = plain.run("sleep 60 & echo $! > pid; sleep 60", timeout=1)
    pid = int((tmp_path / "ws" / "pid").read_text())
    time.sleep(0.2)

    assert result.limit == "timeout"
    assert result.exit_code is None
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_plain_environment_excludes_user_variables(plain, monkeypatch):
    monkeypatch.setenv("GEMMA_TEST_PRIVATE", "private-value")

    result = plain.run("env | grep -E '^(CI|GEMMA_TEST_PRIVATE)='")

    assert result.output == "CI=1\n"


def test_plain_long_output_logged(plain, tmp_path):
    result = plain.run("seq 1 20000")

    assert result.output.startswith("1\n2\n")
    assert result.output.endswith("19999\n20000\n")
    assert result.log_path.startswith(".gemma-agent/logs/")
    assert (tmp_path / "ws" / result.log_path).read_text().splitlines()[-1] == "20000"


def test_plain_background_output_and_close(plain):
    result = plain.start("echo serving; sleep 60")
    pid = plain.background()[0].process.pid

    assert result.exit_code is None
    assert result.output == "serving\n"
    assert result.background_id == 1
    plain.close()
    assert plain.background() == []
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_plain_background_that_exits_reports_code(tmp_path):
    box = Sandbox(tmp_path / "ws", limits=CommandLimits(background_wait=5))
    result = box.start("echo broken; exit 4")
    box.close()

    assert result.exit_code == 4
    assert result.output == "broken\n"


# Choosing a backend


def test_factory_none_selects_plain(tmp_path):
    box = create_sandbox(Settings(sandbox="none"), tmp_path)

    assert type(box) is Sandbox
    assert box.name == "none"


def test_factory_rejects_unknown_backend(tmp_path):
    with pytest.raises(UsageError, match="Invalid sandbox 'docker'"):
        create_sandbox(Settings(sandbox="docker"), tmp_path)


@pytest.mark.parametrize("backend", ["auto", "bwrap"])
def test_factory_refuses_when_bwrap_cannot_run(backend, tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox_module, "probe", lambda: (False, "bwrap is not installed"))

    with pytest.raises(UsageError, match='bwrap is not installed.*sandbox = "none"'):
        create_sandbox(Settings(sandbox=backend), tmp_path)


def test_describe_backend_reports_unavailable(monkeypatch):
    monkeypatch.setattr(sandbox_module, "probe", lambda: (False, "no user namespaces"))

    assert describe_backend(Settings()) == ("unavailable", "no user namespaces")
    assert describe_backend(Settings(sandbox="none"))[0] == "none"


def test_startup_notice_warns_about_weaker_isolation():
    assert startup_notice(Settings(sandbox="none")).startswith("Warning: sandbox = none")
    assert "Network access is on" in startup_notice(Settings(allow_network=True))
    assert startup_notice(Settings()) == ""


@pytest.mark.sandbox
@needs_bwrap
def test_describe_backend_names_bwrap():
    name, reason = describe_backend(Settings(allow_network=True))

    assert name == "bwrap"
    assert "network on" in reason


@pytest.mark.sandbox
@needs_bwrap
def test_factory_auto_selects_bwrap(tmp_path):
    with create_sandbox(Settings(), tmp_path) as box:
        result = box.run("echo inside")

    assert isinstance(box, BwrapSandbox)
    assert result.output == "inside\n"


# The run_command tool


@pytest.fixture
def context(tmp_path):
    workspace = Workspace(tmp_path / "ws")
    workspace.create()
    settings = Settings(sandbox="none", command_timeout=5, command_max_timeout=10, background_wait=0.5)
    box = create_sandbox(settings, workspace.root)
    yield ToolContext(workspace, box, settings)
    box.close()


def test_run_command_reports_exit_code_and_output(context):
    result = RunCommand().run({"command": "echo hello; exit 2"}, context)

    assert result.output == "Exit code: 2\nhello"
    assert result.display.startswith("$ echo hello; exit 2 → exit 2")
    assert result.data["exit_code"] == 2


def test_run_command_marks_empty_output(context):
    assert RunCommand().run({"command": "true"}, context).output == "Exit code: 0\n(no output)"


def test_run_command_rejects_empty_command(context):
    result = ToolSet([RunCommand()]).run(ToolCall("run_command", {"command": "  "}), context)

    assert not result.ok
    assert "The command is empty" in result.output


def test_run_command_accepts_string_timeout(context):
    result = ToolSet([RunCommand()]).run(ToolCall("run_command", {"command": "sleep 5", "timeout": "1"}), context)

    assert result.output.startswith("Stopped by the time limit.")


def test_run_command_background_returns_id_and_log(context):
    result = RunCommand().run({"command": "echo up; sleep 30", "background": True}, context)

    assert result.output.startswith("Started in the background as process 1")
    assert "Output so far:\nup" in result.output
    assert "tail -n 50 .gemma-agent/logs/background-1-" in result.output
    assert result.display.endswith("running in background (process 1)")


def test_run_command_display_is_short(context):
    result = RunCommand().run({"command": "echo " + "x" * 200}, context)

    assert len(result.display) < 100


def test_run_command_declaration_is_small():
    spec = RunCommand().spec

    assert spec.name == "run_command"
    assert set(spec.parameters["properties"]) == {"command", "timeout", "background"}
    assert spec.parameters["required"] == ["command"]
    assert len(spec.description) < 160


def test_run_command_masks_secret_in_output(context, monkeypatch):
    monkeypatch.setenv("SERVICE_API_KEY", "very-secret-value-42")

    result = RunCommand().run({"command": "echo very-secret-value-42"}, context)

    assert "very-secret-value-42" not in result.output
    assert MASK in result.output


def test_home_is_private_and_removed_on_close(tmp_path):
    box = Sandbox(tmp_path / "ws")
    home = Path(box.run("echo $HOME").output.strip())

    assert home.is_dir()
    assert home != Path(os.path.expanduser("~"))
    box.close()
    assert not home.exists()
