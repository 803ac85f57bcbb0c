"""The environment of a command: an allow-list of the user's variables plus fixed non-interactive settings."""

from __future__ import annotations

import os
from pathlib import Path

# Variables copied from the user's environment when set. They locate tools and certificates and
# hold no credentials; everything else, API keys included, stays out of the sandbox.
ALLOWED_VARIABLES = (
    "PATH",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "PYENV_ROOT",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
    "JAVA_HOME",
    "GOROOT",
    "GOPATH",
    "CARGO_HOME",
    "RUSTUP_HOME",
    "NVM_DIR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
)

FALLBACK_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Settings that keep tools from waiting for input that never comes, paging, or colouring output.
NON_INTERACTIVE = {
    "TERM": "dumb",
    "CI": "1",
    "PAGER": "cat",
    "GIT_PAGER": "cat",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_EDITOR": "true",
    "EDITOR": "true",
    "DEBIAN_FRONTEND": "noninteractive",
    "PIP_NO_INPUT": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "npm_config_yes": "true",
    "npm_config_fund": "false",
    "npm_config_audit": "false",
    "npm_config_update_notifier": "false",
    "NO_COLOR": "1",
    "PYTHONUNBUFFERED": "1",
    # Files are rewritten within the same second at the same size (a - b becomes a + b), which
    # Python's bytecode cache cannot tell apart, so stale .pyc files would hide the agent's edits.
    "PYTHONDONTWRITEBYTECODE": "1",
}


def command_environment(home: Path, workspace: Path, environ: dict[str, str] | None = None) -> dict[str, str]:
    """Return the environment for one command: allowed variables, HOME, git's trust of the workspace."""
    source = os.environ if environ is None else environ
    env = {name: source[name] for name in ALLOWED_VARIABLES if name in source}
    env.setdefault("PATH", FALLBACK_PATH)
    env.setdefault("LANG", "C.UTF-8")
    env.update(NON_INTERACTIVE)
    env["HOME"] = str(home)
    env["TMPDIR"] = "/tmp"
    # Commands may run under another uid than the workspace's owner; without this, git rejects the
    # repository as having "dubious ownership". Environment config counts as command-line scope.
    env["GIT_CONFIG_COUNT"] = "1"
    env["GIT_CONFIG_KEY_0"] = "safe.directory"
    env["GIT_CONFIG_VALUE_0"] = str(workspace)
    return env
