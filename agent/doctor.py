"""`gemma-agent doctor`: check everything a build needs and print the fix for each problem."""

from __future__ import annotations

import importlib.util
import logging
import platform
import shutil
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from agent.config import Settings
from agent.errors import AgentError
from agent.hardware import Hardware, detect_hardware

logger = logging.getLogger(__name__)

MIN_PYTHON = (3, 11)
CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
GIB = 1024**3


@dataclass
class Check:
    """One line of the report. Only `required` checks decide the exit code, and `fix` is the next step when not ok."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


def run_checks(settings: Settings, hardware: Hardware | None = None) -> list[Check]:
    """Run every check. A check that raises is reported as failed with its error, never aborts the report."""
    hardware = hardware or detect_hardware()
    probes: list[Callable[[], Check]] = [
        check_python,
        check_llama_cpp,
        lambda: check_cpu(hardware),
        lambda: check_gpu(hardware),
        lambda: check_sandbox(settings),
        check_git,
        check_browser,
        lambda: check_model(settings),
        lambda: check_fit(settings, hardware),
    ]
    checks = []
    for probe in probes:
        try:
            checks.append(probe())
        except Exception as error:  # a broken probe must not hide the other lines
            logger.debug("doctor probe failed", exc_info=True)
            checks.append(Check(getattr(probe, "__name__", "check"), False, f"the check itself failed: {error}"))
    return checks


def all_required_ok(checks: list[Check]) -> bool:
    return all(check.ok for check in checks if check.required)


def check_python() -> Check:
    version = platform.python_version()
    ok = sys.version_info[:2] >= MIN_PYTHON
    return Check("python", ok, f"Python {version} at {sys.executable}", "Install Python 3.11 or newer.")


def check_llama_cpp() -> Check:
    try:
        import llama_cpp
    except ImportError as error:
        return Check("llama-cpp-python", False, f"not importable: {error}", 'Run `pip install "llama-cpp-python~=0.3.36"`.')
    return Check("llama-cpp-python", True, f"{llama_cpp.__version__}, backend {llama_backend(llama_cpp)}")


def llama_backend(llama_cpp) -> str:
    """Name the compiled backend from llama.cpp's system info (CUDA, Metal, Vulkan, ROCm) or CPU."""
    info = llama_cpp.llama_print_system_info()
    text = info.decode(errors="replace") if isinstance(info, bytes) else str(info)
    offload = bool(llama_cpp.llama_supports_gpu_offload())
    for marker, name in (("CUDA", "CUDA"), ("METAL", "Metal"), ("VULKAN", "Vulkan"), ("HIP", "ROCm"), ("SYCL", "SYCL")):
        if marker in text.upper():
            return name
    return "GPU" if offload else "CPU only"


def check_cpu(hardware: Hardware) -> Check:
    flags = ", ".join(hardware.cpu_flags) or "none of AVX2, AVX512, NEON found"
    x86 = platform.machine() in ("x86_64", "AMD64")
    ok = not x86 or "avx2" in hardware.cpu_flags
    return Check(
        "cpu",
        ok,
        f"{hardware.cpu_model or platform.machine()}, {hardware.cpu_count} threads; {flags}",
        "Without AVX2, llama.cpp runs several times slower on the CPU: prefer a GPU or a smaller model.",
        required=False,
    )


def check_gpu(hardware: Hardware) -> Check:
    if not hardware.gpus:
        return Check("gpu", True, "none found (nvidia-smi, rocm-smi, sysfs): the model runs on the CPU", required=False)
    listed = "; ".join(f"{gpu.name} {gpu.memory_bytes / GIB:.1f} GiB" for gpu in hardware.gpus)
    return Check("gpu", True, listed, required=False)


def check_sandbox(settings: Settings) -> Check:
    """Check the sandbox backend. It is required because a build stops when its sandbox cannot run."""
    try:
        from agent.sandbox import describe_backend
    except ImportError:
        describe_backend = None
    fix = "Install bubblewrap (`apt-get install bubblewrap`), or pass --sandbox none to run commands without isolation."
    if describe_backend is not None:
        name, reason = describe_backend(settings)
        return Check("sandbox", name != "unavailable", f"{name}: {reason}", fix)
    path = shutil.which("bwrap")
    return Check("sandbox", path is not None, f"bubblewrap at {path}" if path else "bubblewrap not found", fix)


def check_git() -> Check:
    path = shutil.which("git")
    if path is None:
        return Check("git", False, "git not found; every step is committed with it", "Install git: `apt-get install git`.")
    return Check("git", True, path)


def check_browser() -> Check:
    chromium = next((path for path in CHROMIUM_PATHS if Path(path).exists()), "")
    playwright = importlib.util.find_spec("playwright") is not None
    detail = f"chromium: {chromium or 'not found'}; playwright: {'importable' if playwright else 'not installed'}"
    fix = "For page checks: `apt-get install chromium` and `pip install playwright`."
    return Check("browser", bool(chromium and playwright), detail, fix, required=False)


def check_model(settings: Settings) -> Check:
    from agent.models import resolve_model

    if settings.engine != "llamacpp":
        return Check("model", True, f"engine {settings.engine}: no local model file needed", required=False)
    try:
        path = resolve_model(settings.model, settings.model_dirs)
    except AgentError as error:
        # The resolution error already contains the command that gets the model, so no separate fix text.
        return Check("model", False, str(error).rstrip("."))
    return Check("model", True, str(path))


def check_fit(settings: Settings, hardware: Hardware) -> Check:
    from agent.recommend import recommend

    plan = recommend(hardware, settings.ctx, settings.kv_type)
    detail = f"{plan.model} {plan.quant}, {plan.placement}: {plan.flags()}"
    fix = "Run `gemma-agent models recommend` for the arithmetic; a smaller --ctx or --kv-type q8_0 needs less memory."
    return Check("recommended", plan.fits, detail, fix, required=False)
