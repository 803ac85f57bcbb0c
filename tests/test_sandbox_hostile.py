"""Hostile commands against the bubblewrap sandbox: each must be contained, leave nothing running,
change nothing outside the workspace, and leave the sandbox able to run the next command."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest

from agent.config import Settings
from agent.sandbox import BwrapSandbox, CommandLimits, create_sandbox
from agent.sandbox.bwrap import probe
from agent.sandbox.secrets import MASK
from agent.tool import ToolContext
from agent.workspace import PathOutsideWorkspace, Workspace
from tools.shell import RunCommand

WORKS, REASON = probe()
pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.skipif(not WORKS, reason=f"bubblewrap cannot run on this machine: {REASON}"),
]

MAX_PROCESSES = 64
MAX_FILE_MB = 64
EXIT_GRACE_SECONDS = 3.0

LIMITS = CommandLimits(timeout=10, max_processes=MAX_PROCESSES, max_file_bytes=MAX_FILE_MB * 1024 * 1024)


@pytest.fixture
def area(tmp_path):
    """A workspace plus a sibling folder with a file, to detect changes outside the workspace."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("unchanged\n")
    return workspace


@pytest.fixture
def sandbox(area):
    box = BwrapSandbox(area, limits=LIMITS)
    before = _snapshot(area.parent, skip=area)
    yield box
    box.close()
    _assert_nothing_alive(area)
    assert _snapshot(area.parent, skip=area) == before, "something outside the workspace changed"


def _snapshot(folder: Path, skip: Path) -> dict[str, tuple[int, float]]:
    result = {}
    for path in sorted(folder.rglob("*")):
        if path == skip or skip in path.parents:
            continue
        info = path.lstat()
        result[str(path)] = (info.st_size, info.st_mtime)
    return result


def _sandbox_pids(workspace: Path) -> list[int]:
    """Return live processes that carry this workspace's sandbox environment (zombies have none).

    Other runs may use the sandbox uid at the same time, so the environment identifies this test's processes.
    """
    marker = f"GIT_CONFIG_VALUE_0={workspace}".encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            pids.append(int(entry))
    return pids


def _assert_nothing_alive(workspace: Path) -> None:
    deadline = time.monotonic() + EXIT_GRACE_SECONDS
    while _sandbox_pids(workspace) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _sandbox_pids(workspace) == [], "a process started in the sandbox is still running"


def _run_and_check_after(sandbox: BwrapSandbox, command: str, timeout: float | None = None):
    started = time.monotonic()
    result = sandbox.run(command, timeout=timeout)
    elapsed = time.monotonic() - started
    _assert_nothing_alive(sandbox.root)
    following = sandbox.run("echo next command works")
    assert following.exit_code == 0
    assert following.output == "next command works\n"
    return result, elapsed


def test_shadow_file_unreadable(sandbox):
    result, _ = _run_and_check_after(sandbox, "cat /etc/shadow")

    assert "root:" not in result.output


def test_write_to_parent_folder_fails(sandbox, area):
    # Under /tmp the parent folder is part of the private /tmp, so the write may succeed in there.
    _run_and_check_after(sandbox, "echo escaped > ../outside.txt")

    assert not (area.parent / "outside.txt").exists()


def test_write_to_absolute_paths_fails(sandbox, area):
    target = area.parent / "outside" / "keep.txt"
    command = f"echo escaped > {target}; echo escaped > /etc/gemma-agent-escape; echo escaped > /escape.txt"
    result, _ = _run_and_check_after(sandbox, command)

    assert target.read_text() == "unchanged\n"
    assert not Path("/etc/gemma-agent-escape").exists()
    assert not Path("/escape.txt").exists()
    assert "Read-only file system" in result.output


def test_agent_folder_is_read_only(sandbox, area):
    (area / ".gemma-agent").mkdir(exist_ok=True)
    result, _ = _run_and_check_after(sandbox, "echo forged > .gemma-agent/trajectory.jsonl")

    assert result.exit_code != 0
    assert not (area / ".gemma-agent" / "trajectory.jsonl").exists()


def test_symlink_to_root_stays_confined(sandbox, area):
    result, _ = _run_and_check_after(
        sandbox, "ln -s / rootlink && cat rootlink/etc/shadow; echo escaped > rootlink/etc/gemma-agent-escape"
    )

    assert "root:" not in result.output
    assert not Path("/etc/gemma-agent-escape").exists()
    workspace = Workspace(area)
    with pytest.raises(PathOutsideWorkspace):
        workspace.resolve("rootlink/etc/passwd")
    with pytest.raises(PathOutsideWorkspace):
        workspace.resolve("rootlink")


def test_credentials_in_home_hidden(area, monkeypatch):
    # /tmp is private inside the sandbox, so the home must live elsewhere to be visible at all.
    home = Path(tempfile.mkdtemp(prefix="gemma-agent-test-home-", dir="/var/tmp"))
    # Readable by others, as most homes are; an owner-only folder under /var is hidden whole when run as root.
    home.chmod(0o755)
    try:
        (home / ".ssh").mkdir()
        (home / ".ssh" / "id_ed25519").write_text("PRIVATE KEY DATA\n")
        (home / ".netrc").write_text("machine example.com password hunter2\n")
        (home / "notes.txt").write_text("visible\n")
        monkeypatch.setenv("HOME", str(home))
        with BwrapSandbox(area, limits=LIMITS) as box:
            result = box.run(f"ls -A {home}/.ssh; cat {home}/.netrc {home}/notes.txt")
    finally:
        shutil.rmtree(home)

    assert "id_ed25519" not in result.output
    assert "hunter2" not in result.output
    assert "visible" in result.output


@pytest.fixture
def listener():
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def accept_all():
        while not stop.is_set():
            try:
                connection, _ = server.accept()
                connection.close()
            except OSError:
                continue

    thread = threading.Thread(target=accept_all, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


def test_loopback_server_unreachable_without_network(sandbox, listener):
    result, _ = _run_and_check_after(sandbox, f"exec 3<>/dev/tcp/127.0.0.1/{listener} && echo connected")

    assert "connected" not in result.output
    assert result.exit_code != 0


def test_loopback_server_reachable_with_network(area, listener):
    with BwrapSandbox(area, limits=LIMITS, allow_network=True) as box:
        result = box.run(f"exec 3<>/dev/tcp/127.0.0.1/{listener} && echo connected")

    assert result.output == "connected\n"
    _assert_nothing_alive(area)


def test_read_prompt_gets_end_of_input(sandbox):
    result, elapsed = _run_and_check_after(sandbox, 'read -p "name? " x; echo "status $?"')

    assert "status 1" in result.output
    assert elapsed < 5


def test_endless_output_stopped_at_log_limit(area):
    limits = CommandLimits(timeout=30, log_limit_bytes=8 * 1024 * 1024, output_limit=2000)
    with BwrapSandbox(area, limits=limits) as box:
        started = time.monotonic()
        result = box.run("yes")
        elapsed = time.monotonic() - started

    assert result.limit == "output"
    assert result.exit_code is None
    assert elapsed < 10
    assert "grep" in result.explanation
    assert len(result.output) < 2500
    assert (area / result.log_path).stat().st_size == 8 * 1024 * 1024
    _assert_nothing_alive(area)


def test_long_output_keeps_head_and_tail(sandbox, area):
    result, _ = _run_and_check_after(sandbox, "seq 1 3000000")

    assert result.exit_code == 0
    assert result.output.startswith("1\n2\n3\n")
    assert result.output.endswith("2999999\n3000000\n")
    assert "22888896 bytes in total" in result.output
    assert result.log_path in result.output
    assert (area / result.log_path).stat().st_size == 22888896
    assert len(result.output) < LIMITS.output_limit + 500


def test_background_job_killed_when_shell_exits(sandbox):
    result, elapsed = _run_and_check_after(sandbox, "sleep 600 & echo started")

    assert result.output == "started\n"
    assert elapsed < 5


def test_term_trapping_processes_killed_on_timeout(sandbox):
    command = "trap '' TERM; setsid bash -c \"trap '' TERM HUP; sleep 600\" & sleep 600"
    result, elapsed = _run_and_check_after(sandbox, command, timeout=2)

    assert result.limit == "timeout"
    assert result.exit_code is None
    assert "background: true" in result.explanation
    assert elapsed < 2 + EXIT_GRACE_SECONDS


def test_process_flood_bounded(sandbox):
    # The flood is finite (at most 2**11 processes if nothing bounded it) and the command has a short
    # timeout, so a broken limit cannot exhaust the machine's process table.
    flood = "f(){ [ $1 -lt 11 ] && { f $(($1+1)) & f $(($1+1)) & wait; }; }; f 0; echo flood over"
    peak = 0
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, len(_sandbox_pids(sandbox.root)))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result, _ = _run_and_check_after(sandbox, flood, timeout=4)
    finally:
        done.set()
        sampler.join()

    assert result.limit == "processes"
    assert "fewer processes" in result.explanation
    # bwrap's own two processes carry the environment too but are not counted by the bound.
    assert peak <= sandbox.process_bound + 2


def test_huge_file_write_stopped(sandbox, area):
    result, _ = _run_and_check_after(sandbox, "head -c 2G /dev/zero > big.bin")

    assert result.limit == "file_size"
    assert (area / "big.bin").stat().st_size <= MAX_FILE_MB * 1024 * 1024
    assert "smaller files" in result.explanation


def test_huge_file_in_private_tmp_stopped(sandbox):
    result, _ = _run_and_check_after(sandbox, "head -c 2G /dev/zero > /tmp/big.bin; ls /tmp/big.bin")

    assert result.limit == "file_size"


def test_env_hides_and_masks_api_key(sandbox, monkeypatch):
    secret = "sk-dummy0123456789abcdefghij"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-value-1234")

    listing, _ = _run_and_check_after(sandbox, "env")
    echoed, _ = _run_and_check_after(sandbox, f"echo {secret} tok-value-1234")

    assert "OPENAI_API_KEY" not in listing.output
    assert "MY_SERVICE_TOKEN" not in listing.output
    assert secret not in listing.output
    assert secret not in echoed.output
    assert "tok-value-1234" not in echoed.output
    assert echoed.output == f"{MASK} {MASK}\n"


def test_invalid_utf8_replaced(sandbox):
    result, _ = _run_and_check_after(sandbox, r"printf 'ok\xff\xfe\n'")

    assert result.output == "ok\ufffd\ufffd\n"


def test_binary_output_has_no_control_characters(sandbox):
    result, _ = _run_and_check_after(sandbox, "head -c 64 /bin/ls")

    assert result.exit_code == 0
    assert all(char in "\n\t" or ord(char) >= 32 for char in result.output)
    assert "\x7f" not in result.output


def test_run_command_tool_reports_limit(area):
    settings = Settings(command_timeout=1)
    workspace = Workspace(area)
    with create_sandbox(settings, area) as box:
        result = RunCommand().run({"command": "sleep 30"}, ToolContext(workspace, box, settings))

    assert result.output.startswith("Stopped by the time limit.")
    assert "background: true" in result.output
    assert result.display == "$ sleep 30 → stopped: time limit"
    _assert_nothing_alive(area)


def test_background_server_reachable_then_killed(sandbox):
    started = sandbox.start("python3 -m http.server 0 --bind 127.0.0.1 2>&1 || echo failed")
    port = started.output.split("port ")[1].split()[0] if "port " in started.output else ""

    fetched = sandbox.run(f"exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected")

    assert started.exit_code is None
    assert started.background_id == 1
    assert port.isdigit(), started.output
    assert fetched.output == "connected\n"
    assert len(_sandbox_pids(sandbox.root)) >= 1
    sandbox.close()
    _assert_nothing_alive(sandbox.root)


def test_sandbox_dies_with_agent(area):
    script = textwrap.dedent(
        f"""
        import sys, time
        from agent.sandbox import BwrapSandbox
        box = BwrapSandbox({str(area)!r})
        box.start("sleep 600")
        print("ready", flush=True)
        time.sleep(600)
        """
    )
    agent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=Path.cwd())
    try:
        assert agent.stdout.readline().strip() == "ready"
        assert _sandbox_pids(area)
    finally:
        agent.send_signal(signal.SIGKILL)
        agent.wait()

    _assert_nothing_alive(area)


@pytest.mark.skipif(os.geteuid() != 0, reason="the SANDBOX_UID fallback is used only when the agent runs as root")
def test_root_fallback_without_pid_max(area, monkeypatch):
    monkeypatch.setattr("agent.sandbox.bwrap.supports_namespace_pid_max", lambda: False)
    box = BwrapSandbox(area, limits=LIMITS)
    flood = "for i in $(seq 200); do sleep 30 & done; wait"
    try:
        identity = box.run("id -u; cat /etc/shadow; echo escaped > /etc/gemma-agent-escape; echo ok > inside.txt")
        flooded = box.run(flood, timeout=3)
    finally:
        box.close()

    assert not box.pid_max_bound
    assert identity.output.startswith("70000\n")
    assert "root:" not in identity.output
    assert not Path("/etc/gemma-agent-escape").exists()
    assert (area / "inside.txt").read_text() == "ok\n"
    assert flooded.limit == "processes"
    _assert_nothing_alive(area)
