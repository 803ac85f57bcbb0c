"""One settings object, layered: defaults < user config file < ./gemma-agent.toml < GEMMA_AGENT_* < flags.

Every value is checked where it is read: its type, then its setting's rule in RULES (a range or a list of
choices), so a bad value stops the command with the file and line, the environment or the command line
that gave it.

The project file ./gemma-agent.toml may not set the settings in SAFETY_SETTINGS (`sandbox`,
`allow_network`): the agent writes files in the folder it works in, so a project file could otherwise
switch off the sandbox for the next run there. Set those in the user config file, in the environment
or with a flag.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from agent.errors import UsageError

PROJECT_FILE = "gemma-agent.toml"
ENV_PREFIX = "GEMMA_AGENT_"
ENVIRONMENT_SOURCE = "environment"
COMMAND_LINE_SOURCE = "command line"
# Settings that loosen the isolation of the commands the model runs; a project file may not set them.
SAFETY_SETTINGS = frozenset({"sandbox", "allow_network"})
ENGINES = ("llamacpp", "openai", "scripted")
KV_TYPES = ("f16", "q8_0", "q4_0")
# "none" is left out: a run whose model may not call tools can never finish.
TOOL_CHOICES = ("required", "auto")
WRITE_MODES = ("auto", "calls", "blocks")
SANDBOX_BACKENDS = ("auto", "bwrap", "none")
MIN_CTX = 512


@dataclass
class Settings:
    """Every setting of a run. Field names are the config keys; flags use the same names with dashes."""

    # Engine
    engine: str = "llamacpp"
    model: str = ""
    # Folders searched for GGUF files by `models list` and by --model NAME, besides the Hugging Face cache.
    model_dirs: list[str] = field(default_factory=list)
    script: str = ""
    base_url: str = ""
    api_model: str = ""
    api_key_env: str = ""
    # OpenAI-compatible server: seconds to connect, seconds of silence allowed before the first chunk
    # of a reply (prompt evaluation can take minutes) and between chunks after it, and how often a
    # transient failure (connection reset, HTTP 429/502/503/504) is retried, with a doubling delay.
    server_connect_timeout: float = 10.0
    server_first_chunk_timeout: float = 900.0
    server_read_timeout: float = 120.0
    server_retries: int = 3
    server_retry_delay: float = 1.0
    ctx: int = 32768
    gpu_layers: int = -1
    threads: int = 0
    batch_size: int = 512
    flash_attn: bool = True
    kv_type: str = "f16"
    cpu_moe: int = 0
    # Keep every sliding-window layer's KV cells (more memory); off: checkpoint them at turn boundaries.
    swa_full: bool = False
    thinking: bool = False
    # Sampling
    temperature: float = 0.2
    top_p: float = 0.95
    top_k: int = 40
    repeat_penalty: float = 1.05
    seed: int = 0
    max_reply_tokens: int = 4096
    # Loop
    max_steps: int = 30
    max_seconds: float = 3600.0
    tool_choice: str = "required"
    # How the model writes whole files: "calls" (content inside the write_file call), "blocks" (the call
    # names the file, the next reply holds its content in a code block) or "auto" (see agent.session).
    write_mode: str = "auto"
    # Commands
    sandbox: str = "auto"
    allow_network: bool = False
    command_timeout: float = 60.0
    command_max_timeout: float = 600.0
    command_cpu_seconds: int = 300
    command_memory_mb: int = 4096
    command_max_processes: int = 256
    command_max_file_mb: int = 1024
    command_log_limit_mb: int = 64
    background_wait: float = 3.0
    output_limit: int = 16_000
    # Workspace
    checkpoints: bool = True
    branch: bool = False
    # Files the agent writes that are larger than this are left out of its git checkpoints.
    checkpoint_max_file_bytes: int = 5 * 1024 * 1024
    # Output
    json: bool = False
    verbose: bool = False
    # Where each value came from, for `gemma-agent config show`.
    sources: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def explain(self) -> list[tuple[str, Any, str]]:
        """Return (key, value, source) for every setting."""
        return [(f.name, getattr(self, f.name), self.sources.get(f.name, "default")) for f in _setting_fields()]


@dataclass(frozen=True)
class Rule:
    """The values a setting accepts besides its type: one of `choices`, or a number within the bounds."""

    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    # An exclusive lower bound, for values that must be above zero but may be fractions.
    above: float | None = None

    def allows(self, value: Any) -> bool:
        if self.choices:
            return value in self.choices
        # Written as `not (...)` checks so that a NaN fails every bound.
        if self.minimum is not None and not value >= self.minimum:
            return False
        if self.above is not None and not value > self.above:
            return False
        return self.maximum is None or value <= self.maximum

    def describe(self, kind_name: str) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        kind = "an integer" if kind_name == "int" else "a number"
        bounds = [f">= {_number(self.minimum)}" if self.minimum is not None else "", f"> {_number(self.above)}" if self.above is not None else ""]
        bounds.append(f"<= {_number(self.maximum)}" if self.maximum is not None else "")
        return f"{kind} " + " and ".join(bound for bound in bounds if bound)


def _number(value: float | None) -> str:
    return f"{value:g}"


POSITIVE_INT = Rule(minimum=1)
NOT_NEGATIVE = Rule(minimum=0)
POSITIVE = Rule(above=0)

RULES: dict[str, Rule] = {
    "engine": Rule(choices=ENGINES),
    "server_connect_timeout": POSITIVE,
    "server_first_chunk_timeout": POSITIVE,
    "server_read_timeout": POSITIVE,
    "server_retries": NOT_NEGATIVE,
    "server_retry_delay": NOT_NEGATIVE,
    "ctx": Rule(minimum=MIN_CTX),
    # -1 puts every layer on the GPU.
    "gpu_layers": Rule(minimum=-1),
    # 0 uses one thread per physical core.
    "threads": NOT_NEGATIVE,
    "batch_size": POSITIVE_INT,
    "kv_type": Rule(choices=KV_TYPES),
    "cpu_moe": NOT_NEGATIVE,
    "temperature": NOT_NEGATIVE,
    "top_p": Rule(above=0, maximum=1),
    # 0 turns top-k sampling off.
    "top_k": NOT_NEGATIVE,
    "repeat_penalty": POSITIVE,
    "seed": NOT_NEGATIVE,
    "max_reply_tokens": POSITIVE_INT,
    "max_steps": POSITIVE_INT,
    "max_seconds": POSITIVE,
    "tool_choice": Rule(choices=TOOL_CHOICES),
    "write_mode": Rule(choices=WRITE_MODES),
    "sandbox": Rule(choices=SANDBOX_BACKENDS),
    "command_timeout": POSITIVE,
    "command_max_timeout": POSITIVE,
    "command_cpu_seconds": POSITIVE_INT,
    "command_memory_mb": POSITIVE_INT,
    "command_max_processes": POSITIVE_INT,
    "command_max_file_mb": POSITIVE_INT,
    "command_log_limit_mb": POSITIVE_INT,
    "background_wait": NOT_NEGATIVE,
    "output_limit": POSITIVE_INT,
    "checkpoint_max_file_bytes": NOT_NEGATIVE,
}


def _setting_fields() -> list[dataclasses.Field]:
    return [f for f in fields(Settings) if f.name != "sources"]


def user_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "gemma-agent" / "config.toml"


def load_settings(flags: dict[str, Any] | None = None, cwd: Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """Build the settings from every layer. Flags whose value is None were not given and are skipped."""
    settings = Settings()
    environ = os.environ if env is None else env
    user_path, project_path = user_config_path(), (cwd or Path.cwd()) / PROJECT_FILE
    if user_path.is_file():
        _apply(settings, _read_toml(user_path), str(user_path))
    if project_path.is_file():
        values = _read_toml(project_path)
        _refuse_safety_settings(values, str(project_path))
        _apply(settings, values, str(project_path))
    _apply(settings, _from_env(environ), ENVIRONMENT_SOURCE)
    _apply(settings, {k: v for k, v in (flags or {}).items() if v is not None}, COMMAND_LINE_SOURCE)
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise UsageError(_toml_error_message(path, error)) from None
    except OSError as error:
        raise UsageError(f"{path}: cannot be read: {error.strerror}.") from None
    # Keys may sit at the top level or in an [agent] table.
    flat = {k: v for k, v in data.items() if not isinstance(v, dict)}
    tables = {k for k, v in data.items() if isinstance(v, dict)} - {"agent"}
    if tables:
        raise UsageError(f"{path}: unknown table [{sorted(tables)[0]}]. Settings go at the top level or in [agent].")
    flat.update(data.get("agent", {}))
    return {key.replace("-", "_"): value for key, value in flat.items()}


def _toml_error_message(path: Path, error: tomllib.TOMLDecodeError) -> str:
    """Return a one-line message naming the file, the line and the text on it (which shows the key)."""
    match = re.search(r"line (\d+)", str(error))
    reason = re.sub(r"\s*\(at (end of document|line \d+, column \d+)\)", "", str(error))
    if not match:
        return f"{path}: invalid TOML: {reason}. Fix the file or remove it."
    number = int(match.group(1))
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    text = lines[number - 1].strip() if 0 < number <= len(lines) else ""
    return f"{path}:{number}: invalid TOML: {reason} in `{text}`. Fix the line or remove the file."


def _key_location(source: str, key: str) -> str:
    """Return `file:line` of `key` when `source` is a config file that sets it, else `source` itself."""
    path = Path(source)
    if source in (ENVIRONMENT_SOURCE, COMMAND_LINE_SOURCE) or not path.is_file():
        return source
    pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=|^\s*[\"']?{re.escape(key.replace('_', '-'))}[\"']?\s*=")
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if pattern.match(line):
            return f"{source}:{number}"
    return source


def _refuse_safety_settings(values: dict[str, Any], source: str) -> None:
    """Stop at the first setting of SAFETY_SETTINGS in a project file, saying where it may be set instead."""
    for key in values:
        if key in SAFETY_SETTINGS:
            raise UsageError(
                f"{_key_location(source, key)}: {key!r} may not be set in the project file {PROJECT_FILE}, which the "
                f"agent itself can write. Set it in {user_config_path()}, in the environment ({ENV_PREFIX}{key.upper()}) "
                f"or with --{key.replace('_', '-')}."
            )


def _from_env(environ: dict[str, str] | os._Environ) -> dict[str, Any]:
    names = {f.name for f in _setting_fields()}
    values = {}
    for key, value in environ.items():
        if key.startswith(ENV_PREFIX) and key[len(ENV_PREFIX):].lower() in names:
            values[key[len(ENV_PREFIX):].lower()] = value
    return values


def _apply(settings: Settings, values: dict[str, Any], source: str) -> None:
    kinds = {f.name: f.type for f in _setting_fields()}
    for key, raw in values.items():
        if key not in kinds:
            raise UsageError(f"{_key_location(source, key)}: unknown setting {key!r}. {_known_settings_hint(key, kinds)}")
        location = _key_location(source, key)
        value = _convert(key, raw, kinds[key], location)
        _check_rule(key, value, kinds[key], location)
        setattr(settings, key, value)
        settings.sources[key] = source


def _known_settings_hint(key: str, names: dict[str, Any]) -> str:
    """Name the closest settings, or all of them: `config show` cannot list them while this file is broken."""
    close = difflib.get_close_matches(key, names, n=1)
    if close:
        return f"Did you mean {close[0]!r}?"
    return f"Known settings: {', '.join(names)}."


def _check_rule(key: str, value: Any, kind: Any, location: str) -> None:
    rule = RULES.get(key)
    if rule is None or rule.allows(value):
        return
    kind_name = kind if isinstance(kind, str) else kind.__name__
    raise UsageError(f"{location}: setting {key!r} cannot be {value!r}; allowed: {rule.describe(kind_name)}.")


def _convert(key: str, raw: Any, kind: Any, source: str) -> Any:
    kind_name = kind if isinstance(kind, str) else kind.__name__
    try:
        if kind_name.startswith("list"):
            return _convert_list(raw)
        if kind_name == "bool":
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in ("1", "true", "yes", "on"):
                return True
            if str(raw).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind_name == "int":
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError
            return int(raw)
        if kind_name == "float":
            if isinstance(raw, bool):
                raise ValueError
            return float(raw)
        if isinstance(raw, (bool, list, dict)):
            raise ValueError
        return str(raw)
    except (TypeError, ValueError):
        raise UsageError(f"{source}: setting {key!r} must be {_kind_words(kind_name)}, got {raw!r}.") from None


def _convert_list(raw: Any) -> list[str]:
    """Accept a TOML array of strings, or one string of entries separated by os.pathsep (environment)."""
    if isinstance(raw, str):
        return [part for part in raw.split(os.pathsep) if part]
    if isinstance(raw, (list, tuple)) and all(isinstance(item, str) for item in raw):
        return list(raw)
    raise ValueError


def _kind_words(kind_name: str) -> str:
    if kind_name.startswith("list"):
        return f"a list of strings (in the environment: entries separated by {os.pathsep!r})"
    return {"bool": "true or false", "int": "an integer", "float": "a number", "str": "a string"}.get(kind_name, kind_name)
