"""One settings object, layered: defaults < user config file < ./gemma-agent.toml < GEMMA_AGENT_* < flags."""

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


def _setting_fields() -> list[dataclasses.Field]:
    return [f for f in fields(Settings) if f.name != "sources"]


def user_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "gemma-agent" / "config.toml"


def load_settings(flags: dict[str, Any] | None = None, cwd: Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """Build the settings from every layer. Flags whose value is None were not given and are skipped."""
    settings = Settings()
    environ = os.environ if env is None else env
    for path in (user_config_path(), (cwd or Path.cwd()) / PROJECT_FILE):
        if path.is_file():
            _apply(settings, _read_toml(path), str(path))
    _apply(settings, _from_env(environ), "environment")
    _apply(settings, {k: v for k, v in (flags or {}).items() if v is not None}, "command line")
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
    if not path.is_file():
        return source
    pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=|^\s*[\"']?{re.escape(key.replace('_', '-'))}[\"']?\s*=")
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if pattern.match(line):
            return f"{source}:{number}"
    return source


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
            close = difflib.get_close_matches(key, kinds, n=1)
            hint = f"Did you mean {close[0]!r}? " if close else ""
            raise UsageError(
                f"{_key_location(source, key)}: unknown setting {key!r}. {hint}"
                "Run `gemma-agent config show` to list the settings."
            )
        setattr(settings, key, _convert(key, raw, kinds[key], _key_location(source, key)))
        settings.sources[key] = source


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
