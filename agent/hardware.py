"""Detect the memory and processor features that decide which model fits: RAM, GPU memory, CPU flags.

Every probe is optional: a missing tool (nvidia-smi, rocm-smi) or file means "not found", never an error.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

PROBE_TIMEOUT_SECONDS = 5.0
# CPU flags that decide llama.cpp's speed on the CPU, as /proc/cpuinfo spells them.
INTERESTING_CPU_FLAGS = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "neon", "asimd", "sve")
MIB = 1024 * 1024


@dataclass
class Gpu:
    """One GPU and its total memory in bytes. `vendor` is nvidia, amd or unknown."""

    name: str
    memory_bytes: int
    vendor: str


@dataclass
class Hardware:
    """Resources of this machine for a model: system RAM and GPU memory in bytes, CPU model and feature flags."""

    ram_bytes: int
    available_ram_bytes: int
    gpus: list[Gpu] = field(default_factory=list)
    cpu_model: str = ""
    cpu_flags: list[str] = field(default_factory=list)
    cpu_count: int = 0

    @property
    def gpu_memory_bytes(self) -> int:
        """Memory of the largest GPU: llama.cpp splits layers across GPUs, but one card is the safe estimate."""
        return max((gpu.memory_bytes for gpu in self.gpus), default=0)

    def to_dict(self) -> dict:
        return asdict(self)


def detect_hardware() -> Hardware:
    """Probe this machine. Takes well under a second unless a GPU tool hangs (capped at a few seconds)."""
    total, available = read_meminfo()
    model, flags = read_cpuinfo()
    return Hardware(
        ram_bytes=total,
        available_ram_bytes=available,
        gpus=detect_gpus(),
        cpu_model=model,
        cpu_flags=flags,
        cpu_count=os.cpu_count() or 0,
    )


def read_meminfo(path: Path = Path("/proc/meminfo")) -> tuple[int, int]:
    """Return (total, available) RAM in bytes from /proc/meminfo, or (0, 0) where it does not exist."""
    values: dict[str, int] = {}
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return 0, 0
    for line in lines:
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[name] = int(parts[0]) * 1024
    total = values.get("MemTotal", 0)
    return total, values.get("MemAvailable", total)


def read_cpuinfo(path: Path = Path("/proc/cpuinfo")) -> tuple[str, list[str]]:
    """Return the CPU model name and the flags of INTERESTING_CPU_FLAGS it has."""
    try:
        text = path.read_text()
    except OSError:
        return "", []
    model = ""
    flags: set[str] = set()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name in ("model name", "hardware", "cpu model") and not model:
            model = value.strip()
        elif name in ("flags", "features"):
            flags.update(value.split())
    return model, [flag for flag in INTERESTING_CPU_FLAGS if flag in flags]


def detect_gpus() -> list[Gpu]:
    """Find GPUs through nvidia-smi, then rocm-smi, then the AMD sysfs memory files."""
    return _nvidia_gpus() or _rocm_gpus() or _sysfs_amd_gpus()


def _run_tool(argv: list[str]) -> str:
    if shutil.which(argv[0]) is None:
        return ""
    try:
        completed = subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        logger.info("%s failed: %s", argv[0], error)
        return ""
    return completed.stdout if completed.returncode == 0 else ""


def _nvidia_gpus() -> list[Gpu]:
    output = _run_tool(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"])
    return parse_nvidia_smi(output)


def parse_nvidia_smi(output: str) -> list[Gpu]:
    """Parse `nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits` (memory in MiB)."""
    gpus = []
    for line in output.splitlines():
        name, _, memory = line.rpartition(",")
        if memory.strip().isdigit():
            gpus.append(Gpu(name.strip(), int(memory.strip()) * MIB, "nvidia"))
    return gpus


def _rocm_gpus() -> list[Gpu]:
    output = _run_tool(["rocm-smi", "--showmeminfo", "vram", "--csv"])
    gpus = []
    for line in output.splitlines()[1:]:
        fields = [part.strip() for part in line.split(",")]
        # Columns: device, VRAM Total Memory (B), VRAM Total Used Memory (B).
        if len(fields) >= 2 and fields[1].isdigit():
            gpus.append(Gpu(fields[0], int(fields[1]), "amd"))
    return gpus


def _sysfs_amd_gpus(root: Path = Path("/sys/class/drm")) -> list[Gpu]:
    gpus = []
    for memory_file in sorted(root.glob("card[0-9]*/device/mem_info_vram_total")):
        try:
            size = int(memory_file.read_text().strip())
        except (OSError, ValueError):
            continue
        if size > 0:
            gpus.append(Gpu(memory_file.parent.parent.name, size, "amd"))
    return gpus
