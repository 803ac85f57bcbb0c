"""`gemma-agent doctor`: each line OK or what to do, exit 0 only when a build has what it needs."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

import agent.hardware
from agent.cli import app
from agent.doctor import llama_backend
from agent.hardware import Gpu, Hardware
from tests.test_models import write_gguf

GIB = 1024**3
runner = CliRunner()


@pytest.fixture
def machine(monkeypatch, tmp_path):
    """A fixed machine: 32 GiB RAM, one 12 GiB GPU, AVX2; an empty Hugging Face cache."""
    hardware = Hardware(32 * GIB, 30 * GIB, [Gpu("RTX 3060", 12 * GIB, "nvidia")], "Test CPU", ["avx", "avx2"], 8)
    monkeypatch.setattr(agent.hardware, "detect_hardware", lambda: hardware)
    monkeypatch.setattr("agent.doctor.detect_hardware", lambda: hardware)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.chdir(tmp_path)
    return hardware


def lines_by_name(output: str) -> dict[str, str]:
    lines = {}
    for line in output.splitlines():
        mark, _, rest = line.partition(" ")
        name = rest.strip().split(":")[0]
        lines[name] = f"{mark} {rest.strip()}"
    return lines


def test_doctor_with_model_exits_0(machine, tmp_path):
    model = write_gguf(tmp_path / "m.gguf")
    result = runner.invoke(app, ["doctor"], env={"GEMMA_AGENT_MODEL": str(model)})
    lines = lines_by_name(result.output)
    assert result.exit_code == 0, result.output
    assert lines["python"].startswith("OK")
    assert lines["llama-cpp-python"].startswith("OK")
    assert "backend" in lines["llama-cpp-python"]
    assert "RTX 3060 12.0 GiB" in lines["gpu"]
    assert "avx2" in lines["cpu"]
    assert lines["model"] == f"OK {'model'}: {model}"
    assert "--cpu-moe" in lines["recommended"]


def test_doctor_without_model_fails_with_pull_hint(machine):
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 1
    model_line = lines_by_name(result.output)["model"]
    assert model_line.startswith("FAIL")
    assert "gemma-agent models pull gemma-4-26b-a4b" in model_line


def test_doctor_missing_git_fails(machine, tmp_path, monkeypatch):
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "git" else real_which(name, *a, **k))
    model = write_gguf(tmp_path / "m.gguf")
    result = runner.invoke(app, ["doctor", "--json"], env={"GEMMA_AGENT_MODEL": str(model)})
    assert result.exit_code == 1
    checks = {check["name"]: check for check in json.loads(result.output)}
    assert checks["git"]["ok"] is False
    assert "apt-get install git" in checks["git"]["fix"]
    assert checks["model"]["ok"] is True


def test_doctor_optional_problems_do_not_fail(machine, tmp_path, monkeypatch):
    monkeypatch.setattr("agent.doctor.CHROMIUM_PATHS", ("/nonexistent/chromium",))
    model = write_gguf(tmp_path / "m.gguf")
    result = runner.invoke(app, ["doctor"], env={"GEMMA_AGENT_MODEL": str(model)})
    assert result.exit_code == 0
    browser = lines_by_name(result.output)["browser"]
    assert browser.startswith("WARN")
    assert "apt-get install chromium" in browser


def test_doctor_other_engine_needs_no_model(machine):
    result = runner.invoke(app, ["doctor", "--json"], env={"GEMMA_AGENT_ENGINE": "openai"})
    checks = {check["name"]: check for check in json.loads(result.output)}
    assert checks["model"]["ok"] is True
    assert result.exit_code == 0


def test_doctor_broken_config_exits_2(machine, tmp_path):
    (tmp_path / "gemma-agent.toml").write_text("ctx = \n")
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 2
    assert "gemma-agent.toml:1: invalid TOML" in result.output


@pytest.mark.parametrize(
    ("info", "offload", "expected"),
    [
        (b"CPU : SSE3 = 1 | AVX2 = 1 |", False, "CPU only"),
        (b"CUDA : ARCHS = 890 | CPU : AVX2 = 1", True, "CUDA"),
        (b"Metal : EMBED_LIBRARY = 1 |", True, "Metal"),
        (b"Vulkan : ... | CPU : NEON = 1", True, "Vulkan"),
    ],
)
def test_backend_from_system_info(info, offload, expected):
    fake = SimpleNamespace(llama_print_system_info=lambda: info, llama_supports_gpu_offload=lambda: offload)
    assert llama_backend(fake) == expected


def test_doctor_unusable_sandbox_fails(machine, tmp_path, monkeypatch):
    import agent.sandbox

    monkeypatch.setattr(agent.sandbox, "describe_backend", lambda settings: ("unavailable", "bwrap: not found"))
    model = write_gguf(tmp_path / "m.gguf")
    result = runner.invoke(app, ["doctor"], env={"GEMMA_AGENT_MODEL": str(model)})
    assert result.exit_code == 1
    sandbox = lines_by_name(result.output)["sandbox"]
    assert sandbox.startswith("FAIL")
    assert "--sandbox none" in sandbox
