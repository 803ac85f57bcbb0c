"""The bubblewrap backend: each command in its own mount and PID namespaces.

The workspace is mounted read-write (its .git read-only), the rest of the system read-only, /tmp and
/run are private, and credential files are hidden. Without allow_network, all commands of one sandbox
share one private network namespace that has only a loopback interface. The command runs in a new
session (so it cannot inject input into the agent's terminal) and dies with the agent (--die-with-parent).

Bounding a process flood: no cgroup is available to an unprivileged agent, and a watchdog counting
processes in the PID namespace would be racy (a fork loop creates hundreds of processes between two
polls). So the bound is one the kernel enforces at fork():
- Run by an ordinary user, commands get a fresh user namespace and RLIMIT_NPROC. Since Linux 5.14 the
  kernel counts RLIMIT_NPROC per user namespace, so only this command's processes count, not the
  user's others (checked on 6.18: 30 processes of the same uid outside did not reduce a limit of 20).
- Run by root, RLIMIT_NPROC is never enforced for uid 0, even inside a user namespace. Since Linux
  6.14 each PID namespace has its own kernel.pid_max, so the command first lowers it in its new
  namespace (with CAP_SYS_ADMIN, dropped right after), which caps how many processes can exist there.
  The kernel rejects values below PID_MAX_FLOOR, so the bound is at least that.
- Run by root on an older kernel, commands switch to SANDBOX_UID, keeping only CAP_DAC_OVERRIDE so they
  can write the root-owned workspace, and RLIMIT_NPROC counts every process of SANDBOX_UID.
The PID namespace also ends every command cleanly: when its shell exits or is killed, the kernel kills
everything left in the namespace, including processes that trap SIGTERM, started a new session or
were left running in the background.
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

from agent.errors import UsageError

from agent.sandbox.limits import MB, prlimit_argv
from agent.sandbox.runner import AGENT_DIR, Sandbox

# A uid no account uses, outside Debian's reserved ranges and below the usual subordinate-uid ranges.
SANDBOX_UID = 70_000
# The smallest kernel.pid_max Linux accepts in a PID namespace (RESERVED_PIDS + 1).
PID_MAX_FLOOR = 301
# pid_max is the highest PID plus one; PID 1 and the shell that lowers it take two more.
PID_MAX_MARGIN = 3
PRIVATE_TMP_BYTES = 512 * MB
PRIVATE_RUN_BYTES = 16 * MB
PROBE_TIMEOUT_SECONDS = 10
# The workspace's git data, mounted read-only in every command.
GIT_DIR = ".git"
HOLDER_START_SECONDS = 5
KILL_WAIT_SECONDS = 2

# Files and folders in a home directory that hold credentials; hidden from every command.
CREDENTIAL_PATHS = (
    ".ssh",
    ".gnupg",
    ".aws",
    ".azure",
    ".kube",
    ".docker",
    ".netrc",
    ".git-credentials",
    ".npmrc",
    ".pypirc",
    ".cargo/credentials",
    ".cargo/credentials.toml",
    ".config/gcloud",
    ".config/gh",
    ".config/hub",
    ".config/gemma-agent",
    ".claude/.credentials.json",
    ".codex/auth.json",
    ".cache/huggingface/token",
    ".huggingface/token",
    ".local/share/keyrings",
)

# System folders scanned, two levels deep, for entries only their owner may read. They are hidden when
# the agent runs as root, because commands then run as root (or keep CAP_DAC_OVERRIDE) and could read them.
# NOTE: deeper owner-only files, and such files elsewhere (such as /opt), stay readable in that case.
PRIVATE_SCAN_ROOTS = ("/etc", "/var")


class BwrapSandbox(Sandbox):
    """Runs each command under bubblewrap with the limits of Sandbox plus namespaces and hidden credentials."""

    name = "bwrap"

    def __init__(self, root: Path, *args, **kwargs):
        kwargs.setdefault("allow_network", False)
        super().__init__(root, *args, **kwargs)
        self.as_root = os.geteuid() == 0
        self.pid_max_bound = self.as_root and supports_namespace_pid_max()
        self._hidden: list[Path] | None = None
        self._network_holder: subprocess.Popen | None = None
        self._network_pid = 0

    @property
    def process_bound(self) -> int:
        """Return how many processes one command can run at once; the floor of pid_max may raise it."""
        if self.pid_max_bound:
            return max(self.limits.max_processes + PID_MAX_MARGIN, PID_MAX_FLOOR) - 1
        return self.limits.max_processes

    def wrap(self, shell_argv: list[str]) -> list[str]:
        return [
            *self._network_entry(),
            "bwrap",
            *self._namespace_options(),
            *self._mount_options(),
            # NOTE: the kernel sends the parent-death signal when the parent *thread* exits, so a
            # background process started from a short-lived thread dies with that thread.
            "--die-with-parent",
            "--new-session",
            "--chdir",
            str(self.root),
            "--",
            *self._identity(),
            *prlimit_argv(self.limits, with_processes=True),
            *shell_argv,
        ]

    def close(self) -> None:
        super().close()
        holder = self._network_holder
        if holder is not None:
            holder.stdin.close()
            try:
                holder.wait(timeout=KILL_WAIT_SECONDS)
            except subprocess.TimeoutExpired:
                self._kill(holder)
                holder.wait()
            self._network_holder = None

    def _kill(self, process: subprocess.Popen) -> None:
        """Kill the namespace's first process, so the kernel kills every other process in the PID namespace.

        The outer bwrap then reaps it and exits. Killing the outer bwrap first would also work, through
        --die-with-parent, but would leave the first process as a zombie of whatever adopts it.
        """
        for pid in _child_pids(process.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            process.wait(timeout=KILL_WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            super()._kill(process)

    def _network_entry(self) -> list[str]:
        """Return the nsenter prefix that joins this sandbox's private network namespace, or [] with network on.

        All commands of one sandbox share that namespace, so a command can reach a server that a
        background process started on 127.0.0.1, while nothing reaches the host's network.
        """
        if self.allow_network:
            return []
        pid = self._network_holder_pid()
        if self.as_root:
            return ["nsenter", f"--target={pid}", "--net", "--"]
        # An ordinary user may join the namespace only from inside the user namespace that owns it.
        return ["nsenter", f"--target={pid}", "--user", "--net", "--preserve-credentials", "--"]

    def _network_holder_pid(self) -> int:
        """Start, once, a process that keeps the private network namespace alive; return its pid."""
        if self._network_holder is None or self._network_holder.poll() is not None:
            argv = ["bwrap", "--ro-bind", "/", "/", "--unshare-net", "--die-with-parent"]
            argv += [] if self.as_root else ["--unshare-user"]
            # `cat` waits on a pipe only this process holds, so the holder also ends when the agent does.
            self._network_holder = subprocess.Popen(
                argv + ["--", "cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, start_new_session=True
            )
            self._network_pid = _child_pid(self._network_holder)
        return self._network_pid

    def _namespace_options(self) -> list[str]:
        # UTS and cgroup namespaces are left out: they protect little here and cost ~3 ms per command.
        options = ["--unshare-pid", "--unshare-ipc"]
        if not self.as_root:
            return options + ["--unshare-user"]
        # bwrap run by root keeps every capability unless --cap-drop removes them. setpriv drops what is
        # kept here, after it was used to lower pid_max or to switch to SANDBOX_UID.
        if self.pid_max_bound:
            kept = ("CAP_SYS_ADMIN", "CAP_SETPCAP")
        else:
            kept = ("CAP_DAC_OVERRIDE", "CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP")
        options += ["--cap-drop", "ALL"]
        for capability in kept:
            options += ["--cap-add", capability]
        return options

    def _mount_options(self) -> list[str]:
        options = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        for path in map(str, self._hidden_paths()):
            if os.path.isdir(path):
                options += ["--tmpfs", path, "--remount-ro", path]
            else:
                options += ["--ro-bind", "/dev/null", path]
        # A private /run hides the sockets of system services (docker, dbus), which work across
        # network namespaces because they are files.
        options += ["--size", str(PRIVATE_RUN_BYTES), "--tmpfs", "/run"]
        options += ["--perms", "1777", "--size", str(PRIVATE_TMP_BYTES), "--tmpfs", "/tmp"]
        options += _resolver_options() if self.allow_network else []
        home = str(self.home())
        options += ["--bind", home, home, "--bind", str(self.root), str(self.root)]
        agent_dir = str(self.root / AGENT_DIR)
        options += ["--ro-bind", agent_dir, agent_dir]
        # Looked up per command, so a repository the checkpoints create after the sandbox is covered too.
        for path in map(str, git_paths(self.root)):
            options += ["--ro-bind", path, path]
        return options

    def _identity(self) -> list[str]:
        """Return the prefix that bounds the process count as root and leaves the command without capabilities."""
        if not self.as_root:
            return []
        if self.pid_max_bound:
            pid_max = max(self.limits.max_processes + PID_MAX_MARGIN, PID_MAX_FLOOR)
            lower = f'echo {pid_max} > /proc/sys/kernel/pid_max && exec "$@"'
            drop = "-all"
            return ["/bin/sh", "-c", lower, "sh", "setpriv", f"--inh-caps={drop}", f"--bounding-set={drop}", "--"]
        # NOTE: files the commands create in the workspace then belong to SANDBOX_UID, not root, and
        # access(2) checks ignore CAP_DAC_OVERRIDE, so tools may treat root-only folders such as /root
        # as unreadable (bash then skips PATH entries under /root).
        uid = str(SANDBOX_UID)
        keep = "-all,+dac_override"
        return [
            "setpriv", "--reuid", uid, "--regid", uid, "--clear-groups",
            f"--inh-caps={keep}", f"--ambient-caps={keep}", f"--bounding-set={keep}", "--",
        ]

    def _hidden_paths(self) -> list[Path]:
        if self._hidden is None:
            homes = {Path.home(), Path("/root"), *map(Path, glob.glob("/home/*"))}
            hidden = [home / name for home in homes for name in CREDENTIAL_PATHS]
            if self.as_root:
                hidden += [path for top in PRIVATE_SCAN_ROOTS for path in _owner_only_entries(Path(top))]
            self._hidden = [path for path in hidden if _exists(path) and not _contains(path, self.root)]
        return self._hidden


def git_paths(root: Path) -> list[Path]:
    """Return the workspace's .git and, for a .git file, the folders it names that lie inside the workspace.

    These are mounted read-only: the agent's own git runs on the host, so config or hooks written
    there from inside the sandbox would run outside it. Paths outside the workspace are read-only anyway.
    """
    entry = root / GIT_DIR
    if not os.path.lexists(entry):
        return []
    real = Path(os.path.realpath(entry))
    found = [real] if _contains(root, real) and real.exists() else []
    if real.is_file():
        git_dir = _gitfile_target(real)
        common = git_dir / "commondir" if git_dir else None
        for folder in (git_dir, _gitfile_target(common, prefix="") if common and common.is_file() else None):
            if folder is not None and folder.is_dir() and _contains(root, folder):
                found.append(folder)
    return found


def _gitfile_target(path: Path, prefix: str = "gitdir:") -> Path | None:
    """Return the folder a `.git` file (`gitdir: PATH`) or a `commondir` file (`PATH`) names, resolved."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    if not text.startswith(prefix):
        return None
    return Path(os.path.realpath(path.parent / text[len(prefix):].strip()))


def _child_pids(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _child_pid(process: subprocess.Popen) -> int:
    """Return the pid of bwrap's sandboxed child, the first process inside the new namespaces."""
    deadline = time.monotonic() + HOLDER_START_SECONDS
    while time.monotonic() < deadline:
        pids = _child_pids(process.pid)
        if pids:
            return pids[0]
        if process.poll() is not None:
            break
        time.sleep(0.005)
    raise UsageError(f"bwrap did not start its network namespace within {HOLDER_START_SECONDS} seconds.")


def _owner_only_entries(top: Path, depth: int = 2) -> list[Path]:
    """Return files and folders under `top` that others may not read, without descending into them."""
    found = []
    try:
        entries = list(os.scandir(top))
    except OSError:
        return found
    for entry in entries:
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISLNK(info.st_mode):
            continue
        if not info.st_mode & stat.S_IROTH:
            found.append(Path(entry.path))
        elif stat.S_ISDIR(info.st_mode) and depth > 1:
            found += _owner_only_entries(Path(entry.path), depth - 1)
    return found


def _resolver_options() -> list[str]:
    """Mount the folder /etc/resolv.conf points into when it lives under /run, so DNS works with network on."""
    target = Path(os.path.realpath("/etc/resolv.conf"))
    if target.parts[:2] == ("/", "run") and target.exists():
        return ["--ro-bind", str(target.parent), str(target.parent)]
    return []


def _exists(path: Path) -> bool:
    try:
        return path.exists() and not path.is_symlink()
    except OSError:
        return False


def _contains(path: Path, inner: Path) -> bool:
    return path == inner or path in inner.parents


@functools.lru_cache(maxsize=None)
def probe() -> tuple[bool, str]:
    """Check once per process that bubblewrap can create the namespaces a command needs; return (works, reason)."""
    binary = shutil.which("bwrap")
    if binary is None:
        return False, "bubblewrap (bwrap) is not installed; on Debian or Ubuntu: apt-get install bubblewrap"
    argv = [binary, "--ro-bind", "/", "/", "--unshare-pid", "--unshare-net", "--die-with-parent"]
    if os.geteuid() != 0:
        argv.append("--unshare-user")
    try:
        result = subprocess.run(argv + ["--", "true"], capture_output=True, text=True, timeout=PROBE_TIMEOUT_SECONDS)
    except (OSError, subprocess.TimeoutExpired) as error:
        return False, f"bwrap could not run: {error}"
    if result.returncode != 0:
        detail = f"exit code {result.returncode}"
        if result.stderr.strip():
            detail = result.stderr.strip().splitlines()[-1]
        return False, f"bwrap cannot create namespaces here ({detail}); user namespaces may be disabled"
    missing = [tool for tool in ("prlimit", "setpriv", "nsenter") if shutil.which(tool) is None]
    if missing:
        return False, f"{' and '.join(missing)} (util-linux) not found; it applies the limits inside the sandbox"
    return True, _version(binary)


@functools.lru_cache(maxsize=None)
def supports_namespace_pid_max() -> bool:
    """Check once whether root can lower kernel.pid_max inside a new PID namespace (Linux 6.14 and later)."""
    argv = ["bwrap", "--ro-bind", "/", "/", "--proc", "/proc", "--unshare-pid", "--die-with-parent"]
    write = f"echo {PID_MAX_FLOOR} > /proc/sys/kernel/pid_max && cat /proc/sys/kernel/pid_max"
    try:
        result = subprocess.run(argv + ["--", "/bin/sh", "-c", write], capture_output=True, text=True,
                                timeout=PROBE_TIMEOUT_SECONDS)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and result.stdout.strip() == str(PID_MAX_FLOOR)


def _version(binary: str) -> str:
    try:
        result = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=PROBE_TIMEOUT_SECONDS)
        return result.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "bubblewrap"
