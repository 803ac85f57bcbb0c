"""Model discovery, `--model` resolution, `models pull` with the hub faked at its boundary, and `models recommend`."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.errors import UsageError
from agent.hardware import Gpu, Hardware, parse_nvidia_smi, read_cpuinfo, read_meminfo
from agent.models import CATALOG, find_model_files, hf_cache_dir, resolve_model
from agent.recommend import kv_cache_bytes, recommend

GIB = 1024**3
runner = CliRunner()


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def write_gguf(path: Path, arch: str = "gemma4", *, file_type: int = 15, context: int = 8192, template: str = "", padding: int = 0) -> Path:
    """Write a GGUF v3 header with a few key/value pairs and no tensors."""
    pairs = [
        (_string("general.architecture"), 8, _string(arch)),
        (_string("general.name"), 8, _string(f"test {arch}")),
        (_string("general.file_type"), 4, struct.pack("<I", file_type)),
        (_string(f"{arch}.context_length"), 4, struct.pack("<I", context)),
    ]
    if template:
        pairs.append((_string("tokenizer.chat_template"), 8, _string(template)))
    body = b"".join(key + struct.pack("<I", kind) + value for key, kind, value in pairs)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, len(pairs)) + body + b"\0" * padding)
    return path


@pytest.fixture
def hf_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "hf" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.delenv("HF_HOME", raising=False)
    return cache


def cached_file(cache: Path, repo_id: str, filename: str, **kwargs) -> Path:
    folder = cache / ("models--" + repo_id.replace("/", "--")) / "snapshots" / "abc123"
    return write_gguf(folder / filename, **kwargs)


DEFAULT_REPO = CATALOG["gemma-4-26b-a4b"].repo_id


# -- discovery --------------------------------------------------------------------------------


def test_list_reads_metadata_from_every_place(tmp_path, hf_cache):
    configured = write_gguf(tmp_path / "models" / "configured.gguf", file_type=7, template="{{ messages }}")
    cached = cached_file(hf_cache, DEFAULT_REPO, "gemma-4-26B-A4B-it-Q4_K_M.gguf", context=262144)
    extra = write_gguf(tmp_path / "extra" / "sub" / "extra.gguf", arch="gemma3")
    cached_file(hf_cache, DEFAULT_REPO, "mmproj-gemma-4-f16.gguf")

    found = {item.path: item for item in find_model_files([str(tmp_path / "models")], [tmp_path / "extra"])}

    assert set(found) == {configured, cached, extra}
    assert found[configured].quantization == "Q8_0"
    assert found[configured].chat_template is True
    assert found[configured].source == "model_dirs"
    assert found[cached].context_length == 262144
    assert found[cached].source == "huggingface cache"
    assert found[cached].chat_template is False
    assert found[extra].architecture == "gemma3"
    assert found[extra].source == "--model-dir"


def test_list_reports_broken_file_without_failing(tmp_path, hf_cache):
    (tmp_path / "bad.gguf").write_bytes(b"not a gguf file")
    (found,) = find_model_files([str(tmp_path)])
    assert "not a valid GGUF" in found.error


def test_hf_home_and_hub_cache_variables():
    assert hf_cache_dir({"HF_HOME": "/data/hf"}) == Path("/data/hf/hub")
    assert hf_cache_dir({"HF_HOME": "/data/hf", "HF_HUB_CACHE": "/fast/hub"}) == Path("/fast/hub")
    assert hf_cache_dir({"XDG_CACHE_HOME": "/c"}) == Path("/c/huggingface/hub")


def test_models_list_json_with_tiny_model(tiny_model, hf_cache):
    result = runner.invoke(app, ["models", "list", "--model-dir", str(tiny_model.parent), "--json"])
    assert result.exit_code == 0, result.output
    entries = json.loads(result.output)
    (entry,) = [item for item in entries if item["path"] == str(tiny_model)]
    assert entry["architecture"] == "gemma3"
    assert entry["quantization"] == "Q4_K_M"
    assert entry["context_length"] == 32768
    assert entry["chat_template"] is False
    assert entry["size_bytes"] == tiny_model.stat().st_size


def test_models_list_empty_says_how_to_get_one(hf_cache):
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code == 0
    assert "No GGUF files found" in result.output
    assert "models pull gemma-4-26b-a4b" in result.output


def test_model_dirs_setting_from_project_file(tmp_path, hf_cache, monkeypatch):
    write_gguf(tmp_path / "weights" / "mine.gguf")
    (tmp_path / "gemma-agent.toml").write_text(f'model_dirs = ["{tmp_path / "weights"}"]\n')
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["models", "list", "--json"])
    assert [Path(item["path"]).name for item in json.loads(result.output)] == ["mine.gguf"]


# -- resolution of --model --------------------------------------------------------------------


def test_resolve_path_catalog_name_and_file_name(tmp_path, hf_cache):
    path = write_gguf(tmp_path / "dir" / "own.gguf")
    cached = cached_file(hf_cache, DEFAULT_REPO, "gemma-4-26B-A4B-it-Q4_K_M.gguf")

    assert resolve_model(str(path), []) == path
    assert resolve_model("gemma-4-26b-a4b", []) == cached
    assert resolve_model("own.gguf", [str(tmp_path / "dir")]) == path


def test_resolve_nothing_uses_cached_default(hf_cache):
    cached_file(hf_cache, DEFAULT_REPO, "gemma-4-26B-A4B-it-Q8_0.gguf")
    default = cached_file(hf_cache, DEFAULT_REPO, "gemma-4-26B-A4B-it-Q4_K_M.gguf")
    assert resolve_model("", []) == default


def test_resolve_nothing_without_cache_says_how(hf_cache):
    with pytest.raises(UsageError) as raised:
        resolve_model("", [])
    assert "gemma-agent models pull gemma-4-26b-a4b" in str(raised.value)
    assert "--model PATH" in str(raised.value)


def test_resolve_unknown_names(tmp_path, hf_cache):
    with pytest.raises(UsageError, match="Model file not found"):
        resolve_model(str(tmp_path / "missing.gguf"), [])
    with pytest.raises(UsageError, match="Unknown model 'llama-9'"):
        resolve_model("llama-9", [])
    with pytest.raises(UsageError, match="models pull gemma-4-31b"):
        resolve_model("gemma-4-31b", [])


def test_build_without_model_exits_2_with_pull_hint(tmp_path, hf_cache):
    result = runner.invoke(app, ["build", "make a file", "--workspace", str(tmp_path / "ws")])
    assert result.exit_code == 2
    assert "models pull gemma-4-26b-a4b" in result.output


# -- pull -------------------------------------------------------------------------------------


class FakeHub:
    """Stands in for the network: the repository listing and hf_hub_download, writing into the HF cache."""

    def __init__(self, cache: Path, content: bytes, listed_sha: str | None = None):
        self.cache = cache
        self.content = content
        self.sha = hashlib.sha256(content).hexdigest() if listed_sha is None else listed_sha
        self.downloads: list[tuple[str, str]] = []

    def list_repo_tree(self, repo_id, recursive=False, expand=False):
        lfs = SimpleNamespace(sha256=self.sha)
        names = ["gemma-4-26B-A4B-it-Q4_K_M.gguf", "gemma-4-26B-A4B-it-Q8_0.gguf", "mmproj-gemma-4-26B-A4B-it-Q4_K_M.gguf"]
        return [SimpleNamespace(path=name, size=len(self.content), lfs=lfs) for name in names] + [SimpleNamespace(path="README.md", size=10, lfs=None)]

    def hf_hub_download(self, repo_id, filename, **kwargs):
        self.downloads.append((repo_id, filename))
        target = self.cache / ("models--" + repo_id.replace("/", "--")) / "snapshots" / "abc123" / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(self.content)
        return str(target)


@pytest.fixture
def fake_hub(hf_cache, monkeypatch):
    import huggingface_hub

    content = (write_gguf(hf_cache.parent / "source.gguf", padding=64)).read_bytes()
    hub = FakeHub(hf_cache, content)
    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_tree", lambda self, *a, **k: hub.list_repo_tree(*a, **k))
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hub.hf_hub_download)
    return hub


def test_pull_downloads_verifies_and_resolves(fake_hub, hf_cache):
    result = runner.invoke(app, ["models", "pull", "gemma-4-26b-a4b"])
    assert result.exit_code == 0, result.output
    assert fake_hub.downloads == [(DEFAULT_REPO, "gemma-4-26B-A4B-it-Q4_K_M.gguf")]
    assert "Downloaded and verified" in result.output
    assert resolve_model("", []).name == "gemma-4-26B-A4B-it-Q4_K_M.gguf"


def test_pull_other_quant_skips_projector(fake_hub):
    result = runner.invoke(app, ["models", "pull", "gemma-4-26b-a4b", "--quant", "q8_0"])
    assert result.exit_code == 0, result.output
    assert fake_hub.downloads[0][1] == "gemma-4-26B-A4B-it-Q8_0.gguf"


def test_pull_checksum_mismatch_exits_3(fake_hub):
    fake_hub.sha = "0" * 64
    result = runner.invoke(app, ["models", "pull", "gemma-4-26b-a4b"])
    assert result.exit_code == 3
    assert "does not match its sha256" in result.output


def test_pull_quant_missing_from_given_repo_lists_available(fake_hub):
    # With --repo any quantization may be asked for; the repository's listing decides.
    result = runner.invoke(app, ["models", "pull", "gemma-4-26b-a4b", "--quant", "IQ2_XXS", "--repo", "someone/gemma-GGUF"])
    assert result.exit_code == 2
    assert "Available: Q4_K_M, Q8_0" in result.output


def test_pull_unknown_quant_fails_before_any_network_access(hf_cache, monkeypatch):
    import huggingface_hub

    def offline(self, *args, **kwargs):
        raise OSError("[Errno -2] Name or service not known")

    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_tree", offline)
    result = runner.invoke(app, ["models", "pull", "gemma-4-e2b", "--quant", "Q2_X"])

    assert result.exit_code == 2, result.output
    assert "Unknown quantization 'Q2_X' for gemma-4-e2b. Known: Q4_K_M, Q8_0." in result.output
    assert "--repo" in result.output


def test_missing_catalog_model_names_its_own_size(hf_cache):
    with pytest.raises(UsageError) as raised:
        resolve_model("gemma-4-e2b", [])
    assert "about 3.1 GB for Q4_K_M" in str(raised.value)
    with pytest.raises(UsageError) as raised:
        resolve_model("gemma-4-31b", [])
    assert "about 18.7 GB for Q4_K_M" in str(raised.value)


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        (["--kv-type", "bogus"], "command line: setting 'kv_type' cannot be 'bogus'; allowed: one of f16, q8_0, q4_0."),
        (["--ctx", "-5"], "command line: setting 'ctx' cannot be -5; allowed: an integer >= 512."),
        (["--ctx", "0"], "command line: setting 'ctx' cannot be 0"),
    ],
)
def test_recommend_rejects_bad_sizing_options(option, expected):
    result = runner.invoke(app, ["models", "recommend", *option])
    assert result.exit_code == 2
    assert expected in result.output


def test_kv_cache_bytes_rejects_unknown_type():
    with pytest.raises(UsageError, match="Unknown KV cache type 'q5'"):
        kv_cache_bytes(CATALOG["gemma-4-e2b"], 4096, "q5")


def test_pull_unknown_name_exits_2(fake_hub):
    result = runner.invoke(app, ["models", "pull", "gemma-9"])
    assert result.exit_code == 2
    assert "Known names: gemma-4-26b-a4b" in result.output


def test_pull_without_network_is_one_line_exit_3(hf_cache, monkeypatch):
    import huggingface_hub

    def offline(self, *args, **kwargs):
        raise OSError("[Errno -2] Name or service not known")

    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_tree", offline)
    result = runner.invoke(app, ["models", "pull", "gemma-4-26b-a4b"])
    assert result.exit_code == 3
    error_lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(error_lines) == 1
    assert error_lines[0].startswith("Error: Cannot download from Hugging Face")
    assert "network" in error_lines[0]


# -- hardware and recommend -------------------------------------------------------------------


def test_parse_hardware_sources(tmp_path):
    gpus = parse_nvidia_smi("NVIDIA GeForce RTX 3060, 12288\nNVIDIA H100 80GB HBM3, 81559\n")
    assert [gpu.memory_bytes // 2**20 for gpu in gpus] == [12288, 81559]
    assert gpus[0].name == "NVIDIA GeForce RTX 3060"

    (tmp_path / "meminfo").write_text("MemTotal:       32768000 kB\nMemFree: 1 kB\nMemAvailable:   30000000 kB\n")
    assert read_meminfo(tmp_path / "meminfo") == (32768000 * 1024, 30000000 * 1024)

    (tmp_path / "cpuinfo").write_text("model name\t: Test CPU\nflags\t\t: fpu sse avx avx2 fma avx512f\n")
    assert read_cpuinfo(tmp_path / "cpuinfo") == ("Test CPU", ["avx", "avx2", "fma", "avx512f"])


def test_kv_cache_uses_sliding_window():
    model = CATALOG["gemma-4-26b-a4b"]
    small = kv_cache_bytes(model, 32768)
    # Doubling the context grows only the global layers' share, not the sliding-window layers'.
    assert kv_cache_bytes(model, 65536) - small == model.kv_bytes_per_token_global * 32768
    assert 0.5 * GIB < small < 1.5 * GIB
    assert kv_cache_bytes(model, 32768, "q8_0") < small


def test_recommend_12gb_gpu_moves_experts_to_ram():
    plan = recommend(Hardware(32 * GIB, 32 * GIB, [Gpu("RTX 3060", 12 * GIB, "nvidia")]), 32768)
    assert (plan.model, plan.quant) == ("gemma-4-26b-a4b", "Q4_K_M")
    assert plan.fits
    assert plan.gpu_layers == -1
    assert 1 <= plan.cpu_moe < 30
    assert plan.gpu_bytes_needed <= 12 * GIB
    assert "--cpu-moe" in plan.flags()
    assert any("does not fit" in step for step in plan.steps)


def test_recommend_cpu_only_24gb():
    plan = recommend(Hardware(24 * GIB, 24 * GIB, []), 32768)
    assert (plan.model, plan.quant, plan.placement) == ("gemma-4-26b-a4b", "Q4_K_M", "CPU only")
    assert plan.gpu_layers == 0
    assert plan.fits
    assert plan.steps[0].startswith("weights (Q4_K_M): 15.6 GiB")


def test_recommend_80gb_gpu_takes_q8_whole():
    plan = recommend(Hardware(128 * GIB, 128 * GIB, [Gpu("H100", 80 * GIB, "nvidia")]), 32768)
    assert (plan.model, plan.quant, plan.placement) == ("gemma-4-26b-a4b", "Q8_0", "all on the GPU")
    assert plan.cpu_moe == 0


def test_recommend_small_machine_falls_back_to_smaller_model():
    plan = recommend(Hardware(8 * GIB, 8 * GIB, []), 32768)
    assert plan.model in ("gemma-4-e4b", "gemma-4-e2b")
    assert plan.fits


def test_recommend_command_shows_arithmetic(monkeypatch):
    import agent.hardware

    monkeypatch.setattr(agent.hardware, "detect_hardware", lambda: Hardware(32 * GIB, 32 * GIB, [Gpu("RTX 3060", 12 * GIB, "nvidia")]))
    result = runner.invoke(app, ["models", "recommend", "--ctx", "16384"])
    assert result.exit_code == 0, result.output
    assert "KV cache at 16384 tokens" in result.output
    assert "gemma-agent models pull gemma-4-26b-a4b --quant Q4_K_M" in result.output
    assert "--cpu-moe" in result.output
