"""Finding, naming and downloading model files: the Gemma 4 catalog, GGUF discovery and `--model` resolution.

Model files are looked for in the configured `model_dirs`, in the Hugging Face cache (where `models pull`
puts them) and in any folder given on the command line. Only the GGUF metadata is read, never the weights.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.errors import AgentError, EngineError, UsageError

logger = logging.getLogger(__name__)

GB = 1000**3
HASH_CHUNK_BYTES = 16 * 1024 * 1024
DEFAULT_MODEL = "gemma-4-26b-a4b"
DEFAULT_QUANT = "Q4_K_M"


@dataclass(frozen=True)
class CatalogModel:
    """A Gemma 4 size in the `models pull` catalog, with the sizes `models recommend` needs.

    `quant_sizes` are GGUF file sizes in bytes. `kv_bytes_per_token_sliding`/`_global` are the f16 KV cache
    bytes one token takes over all sliding-window layers and over all global layers.
    """

    name: str
    repo_id: str
    description: str
    quant_sizes: dict[str, int]
    block_count: int
    sliding_window: int
    kv_bytes_per_token_sliding: int
    kv_bytes_per_token_global: int
    # Share of the weights in MoE expert tensors (0 for a dense model): what --cpu-moe moves to RAM.
    expert_fraction: float = 0.0
    context_length: int = 131072

    def file_pattern(self, quant: str) -> str:
        return f"*{quant}*.gguf"


# NOTE: the repository ids follow ggml-org's naming of its Gemma GGUF uploads. Only the Q4_K_M size of
# gemma-4-26b-a4b (16.80 GB) comes from that repository's file list. The other sizes and every KV figure
# are estimates from the models' layer counts, and they agree with a measured ~7 GiB full-size KV cache
# at 32k context for 26B-A4B. `models pull` reads the real file name, size and sha256 from the
# repository, so only `models recommend` relies on these numbers.
CATALOG: dict[str, CatalogModel] = {
    model.name: model
    for model in (
        CatalogModel(
            name="gemma-4-26b-a4b",
            repo_id="ggml-org/gemma-4-26B-A4B-it-GGUF",
            description="Gemma 4 26B-A4B instruction-tuned: MoE, 25.2B parameters, 3.8B active per token (the default)",
            quant_sizes={"Q4_K_M": int(16.80 * GB), "Q8_0": int(26.9 * GB)},
            block_count=30,
            sliding_window=1024,
            kv_bytes_per_token_sliding=25 * 8 * 256 * 2 * 2,
            kv_bytes_per_token_global=5 * 2 * 512 * 2 * 2,
            expert_fraction=0.9,
            context_length=262144,
        ),
        CatalogModel(
            name="gemma-4-31b",
            repo_id="ggml-org/gemma-4-31B-it-GGUF",
            description="Gemma 4 31B instruction-tuned: dense, slower than 26B-A4B at similar quality",
            quant_sizes={"Q4_K_M": int(18.7 * GB), "Q8_0": int(32.6 * GB)},
            block_count=60,
            sliding_window=1024,
            kv_bytes_per_token_sliding=50 * 16 * 256 * 2 * 2,
            kv_bytes_per_token_global=10 * 4 * 512 * 2 * 2,
            context_length=262144,
        ),
        CatalogModel(
            name="gemma-4-e4b",
            repo_id="ggml-org/gemma-4-E4B-it-GGUF",
            description="Gemma 4 E4B instruction-tuned: small, for 8 GB machines; weaker at multi-file tasks",
            quant_sizes={"Q4_K_M": int(5.0 * GB), "Q8_0": int(8.2 * GB)},
            block_count=42,
            sliding_window=512,
            kv_bytes_per_token_sliding=35 * 2 * 256 * 2 * 2,
            kv_bytes_per_token_global=7 * 2 * 512 * 2 * 2,
        ),
        CatalogModel(
            name="gemma-4-e2b",
            repo_id="ggml-org/gemma-4-E2B-it-GGUF",
            description="Gemma 4 E2B instruction-tuned: the smallest, for quick trials",
            quant_sizes={"Q4_K_M": int(3.1 * GB), "Q8_0": int(5.0 * GB)},
            block_count=35,
            sliding_window=512,
            kv_bytes_per_token_sliding=28 * 1 * 256 * 2 * 2,
            kv_bytes_per_token_global=7 * 1 * 512 * 2 * 2,
        ),
    )
}


def catalog_model(name: str) -> CatalogModel:
    """Return the catalog entry called `name` (case-insensitive) or raise UsageError listing the names."""
    entry = CATALOG.get(name.lower())
    if entry is None:
        raise UsageError(f"Unknown model name {name!r}. Known names: {', '.join(CATALOG)}.")
    return entry


# ---------------------------------------------------------------------------------------------
# Discovery


@dataclass
class ModelFile:
    """A GGUF file found on disk, with fields from its metadata. `error` is set when the file is unreadable."""

    path: Path
    size_bytes: int
    source: str
    architecture: str = ""
    name: str = ""
    quantization: str = ""
    context_length: int = 0
    chat_template: bool = False
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "size_bytes": self.size_bytes,
            "source": self.source,
            "architecture": self.architecture,
            "name": self.name,
            "quantization": self.quantization,
            "context_length": self.context_length,
            "chat_template": self.chat_template,
            "error": self.error,
        }


def hf_cache_dir(environ: dict[str, str] | None = None) -> Path:
    """Return the Hugging Face hub cache folder, honouring HF_HUB_CACHE and HF_HOME as huggingface_hub does."""
    environ = os.environ if environ is None else environ
    if environ.get("HF_HUB_CACHE"):
        return Path(environ["HF_HUB_CACHE"]).expanduser()
    if environ.get("HF_HOME"):
        return Path(environ["HF_HOME"]).expanduser() / "hub"
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "huggingface" / "hub"


def search_dirs(model_dirs: list[str], extra: list[Path] | None = None) -> list[tuple[Path, str]]:
    """Return (folder, source) pairs to search: extra folders first, then `model_dirs`, then the HF cache."""
    folders = [(Path(folder).expanduser(), "--model-dir") for folder in extra or []]
    folders += [(Path(folder).expanduser(), "model_dirs") for folder in model_dirs]
    folders.append((hf_cache_dir(), "huggingface cache"))
    return folders


def find_model_files(model_dirs: list[str], extra: list[Path] | None = None) -> list[ModelFile]:
    """Find every GGUF file in the search folders, with its metadata; multimodal projectors are skipped."""
    found: list[ModelFile] = []
    seen: set[Path] = set()
    for folder, source in search_dirs(model_dirs, extra):
        for path in _gguf_paths(folder, source):
            real = path.resolve()
            if real in seen or path.name.startswith("mmproj"):
                continue
            seen.add(real)
            found.append(describe_model_file(path, source))
    return found


def _gguf_paths(folder: Path, source: str) -> list[Path]:
    if not folder.is_dir():
        return []
    if source == "huggingface cache":
        return sorted(folder.glob("models--*/snapshots/*/**/*.gguf"))
    return sorted(path for path in folder.rglob("*.gguf") if path.is_file())


def describe_model_file(path: Path, source: str = "") -> ModelFile:
    """Read one file's GGUF metadata without loading its weights."""
    from agent.gguf import read_gguf_info

    size = path.stat().st_size if path.exists() else 0
    try:
        info = read_gguf_info(path)
    except UsageError as error:
        return ModelFile(path, size, source, error=str(error))
    return ModelFile(
        path=path,
        size_bytes=size,
        source=source,
        architecture=info.architecture,
        name=info.name,
        quantization=info.quantization,
        context_length=info.context_length,
        chat_template=bool(info.chat_template),
    )


# ---------------------------------------------------------------------------------------------
# Resolution of --model


def resolve_model(requested: str, model_dirs: list[str]) -> Path:
    """Turn `--model` (a path, a catalog name or a file name) into an existing GGUF path.

    With nothing requested the default Gemma 4 model is used when it is in the cache; otherwise the
    UsageError contains the command that downloads it.
    """
    if not requested:
        return _default_model(model_dirs)
    path = Path(requested).expanduser()
    if path.is_file():
        return path
    if requested.lower() in CATALOG:
        return _cached_catalog_file(CATALOG[requested.lower()], None, model_dirs) or _missing_catalog(requested.lower())
    by_name = [found.path for found in find_model_files(model_dirs) if found.path.name == requested]
    if by_name:
        return by_name[0]
    if "/" in requested or requested.endswith(".gguf"):
        raise UsageError(
            f"Model file not found: {requested}. Pass --model with the path of a .gguf file, "
            "or run `gemma-agent models list` to see the files found."
        )
    raise UsageError(
        f"Unknown model {requested!r}: not a file, a catalog name ({', '.join(CATALOG)}) or a file in the model folders. "
        "Run `gemma-agent models list`."
    )


def _default_model(model_dirs: list[str]) -> Path:
    found = _cached_catalog_file(CATALOG[DEFAULT_MODEL], DEFAULT_QUANT, model_dirs)
    found = found or _cached_catalog_file(CATALOG[DEFAULT_MODEL], None, model_dirs)
    return found or _missing_catalog(DEFAULT_MODEL, default=True)


def _cached_catalog_file(entry: CatalogModel, quant: str | None, model_dirs: list[str]) -> Path | None:
    """Return a file of `entry` from the HF cache (its repository's folder) or the model folders."""
    repo_folder = hf_cache_dir() / ("models--" + entry.repo_id.replace("/", "--"))
    pattern = entry.file_pattern(quant or "").lower()
    candidates = sorted(repo_folder.glob("snapshots/*/**/*.gguf"))
    stem = entry.repo_id.split("/")[-1].removesuffix("-GGUF").lower()
    candidates += [found.path for found in find_model_files(model_dirs) if found.path.name.lower().startswith(stem)]
    for path in candidates:
        if fnmatch.fnmatch(path.name.lower(), pattern) and not path.name.startswith("mmproj"):
            return path
    return None


def _missing_catalog(name: str, default: bool = False) -> Path:
    lead = "No model given, and the default model" if default else "The model"
    size = CATALOG[name].quant_sizes[DEFAULT_QUANT]
    raise UsageError(
        f"{lead} {name} is not downloaded. Run `gemma-agent models pull {name}` "
        f"(about {size / GB:.1f} GB for {DEFAULT_QUANT}), or pass --model PATH to a .gguf file."
    )


# ---------------------------------------------------------------------------------------------
# Download


class DownloadError(EngineError):
    """The download failed: no network, the hub is unreachable, or the file did not match its checksum."""


@dataclass
class RemoteFile:
    """A file in a Hugging Face repository: its name, size in bytes and the sha256 the hub lists for it."""

    filename: str
    size_bytes: int
    sha256: str


def pull_model(name: str, quant: str = DEFAULT_QUANT, repo_id: str | None = None) -> Path:
    """Download the GGUF file of catalog model `name` at `quant` into the HF cache and verify its sha256.

    Resumes a partial download. Raises UsageError for an unknown name or quantization, DownloadError when
    the hub cannot be reached or the checksum differs.
    """
    entry = catalog_model(name)
    if repo_id is None:
        quant = catalog_quant(entry, quant)
    repo = repo_id or entry.repo_id
    remote = choose_remote_file(list_remote_files(repo), quant, repo)
    logger.info("downloading %s from %s (%d bytes)", remote.filename, repo, remote.size_bytes)
    path = Path(download_file(repo, remote.filename))
    verify_sha256(path, remote.sha256)
    return path


def catalog_quant(entry: CatalogModel, quant: str) -> str:
    """Return `quant` as the catalog spells it for `entry`, or raise UsageError listing the known ones.

    Checked before any network access; other quantizations are reachable with an explicit repository.
    """
    known = {name.lower(): name for name in entry.quant_sizes}
    if quant.lower() not in known:
        raise UsageError(
            f"Unknown quantization {quant!r} for {entry.name}. Known: {', '.join(entry.quant_sizes)}. "
            "For another one, pass --repo with a Hugging Face repository that has it."
        )
    return known[quant.lower()]


def list_remote_files(repo_id: str) -> list[RemoteFile]:
    """List the GGUF files of `repo_id` with sizes and sha256, through huggingface_hub."""
    api = _hub_api()
    try:
        entries = api.list_repo_tree(repo_id, recursive=True, expand=True)
        files = [_remote_file(entry) for entry in entries if getattr(entry, "path", "").endswith(".gguf")]
    except Exception as error:  # huggingface_hub raises many types; each becomes one line
        raise _download_error(repo_id, error) from None
    return files


def _remote_file(entry: Any) -> RemoteFile:
    lfs = getattr(entry, "lfs", None)
    sha256 = getattr(lfs, "sha256", "") if lfs is not None else ""
    return RemoteFile(entry.path, int(getattr(entry, "size", 0) or 0), sha256 or "")


def choose_remote_file(files: list[RemoteFile], quant: str, repo_id: str) -> RemoteFile:
    """Pick the model file (not a multimodal projector) whose name carries `quant`."""
    models = [remote for remote in files if not Path(remote.filename).name.lower().startswith("mmproj")]
    matches = [remote for remote in models if quant.lower() in Path(remote.filename).name.lower()]
    if not matches:
        available = sorted({_quant_in_name(remote.filename) for remote in models}) or ["none"]
        raise UsageError(f"{repo_id} has no {quant} file. Available: {', '.join(available)}. Pass --quant with one of them.")
    return min(matches, key=lambda remote: len(remote.filename))


def _quant_in_name(filename: str) -> str:
    stem = Path(filename).name.removesuffix(".gguf")
    return stem.rsplit("-", 1)[-1]


def download_file(repo_id: str, filename: str) -> str:
    """Download one file into the HF cache with a progress bar; a partial download resumes."""
    from huggingface_hub import hf_hub_download

    try:
        return hf_hub_download(repo_id=repo_id, filename=filename)
    except Exception as error:  # see list_remote_files
        raise _download_error(repo_id, error) from None


def verify_sha256(path: Path, expected: str) -> None:
    """Hash the downloaded file and compare with the hub's sha256; a mismatch deletes nothing but fails."""
    if not expected:
        logger.warning("the hub lists no sha256 for %s; the download is not verified beyond its size", path.name)
        return
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    if digest.hexdigest() != expected.lower():
        raise DownloadError(
            f"{path} does not match its sha256 ({digest.hexdigest()} instead of {expected}). "
            "Delete it and run `gemma-agent models pull` again."
        )


def _hub_api():
    try:
        from huggingface_hub import HfApi
        from huggingface_hub.utils import logging as hub_logging
    except ImportError:
        raise UsageError("huggingface_hub is not installed. Run `pip install huggingface_hub`.") from None
    # The hub logs each retry as a warning; the final failure becomes our own one-line error instead.
    hub_logging.set_verbosity_error()
    return HfApi()


def _download_error(repo_id: str, error: Exception) -> AgentError:
    kind = type(error).__name__
    if kind in ("RepositoryNotFoundError", "GatedRepoError", "EntryNotFoundError", "RevisionNotFoundError"):
        return UsageError(f"{repo_id}: {kind}. Check the name, or log in with `hf auth login` for a gated repository.")
    first_line = (str(error).strip().splitlines() or [kind])[0]
    return DownloadError(
        f"Cannot download from Hugging Face ({repo_id}): {first_line}. Check the network connection "
        "(or HF_ENDPOINT), then run the same command again; a partial download resumes."
    )

