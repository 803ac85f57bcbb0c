"""Choose the model, quantization and GPU offload settings that fit this machine, showing the arithmetic.

Memory needed = weights + KV cache + overhead. The KV cache is sized for llama.cpp's sliding-window
cache (`swa_full=False`): sliding-window layers keep `sliding_window + batch_size` cells, global layers
keep one cell per context token.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from agent.errors import UsageError
from agent.hardware import Hardware
from agent.models import CATALOG, CatalogModel

GIB = 1024**3
# Estimates: llama.cpp's compute buffers plus the GPU runtime's own allocation (CUDA context and the
# like), and the RAM left for the OS, the agent and the commands it runs.
GPU_OVERHEAD_BYTES = int(1.0 * GIB)
CPU_OVERHEAD_BYTES = int(0.5 * GIB)
RAM_HEADROOM_BYTES = int(2.0 * GIB)
# Bytes per KV cell relative to f16, from the block sizes of q8_0 (34 bytes per 32 values) and q4_0 (18 per 32).
KV_TYPE_FACTORS = {"f16": 1.0, "q8_0": 34 / 64, "q4_0": 18 / 64}
DEFAULT_BATCH_SIZE = 512

# Tried in order; the first that fits wins. Q8_0 is chosen only where it fits on the GPU whole,
# because on the CPU its extra quality costs about half the decode speed.
CANDIDATES = (
    ("gemma-4-26b-a4b", "Q8_0", True),
    ("gemma-4-26b-a4b", "Q4_K_M", False),
    ("gemma-4-e4b", "Q8_0", True),
    ("gemma-4-e4b", "Q4_K_M", False),
    ("gemma-4-e2b", "Q4_K_M", False),
)


@dataclass
class Plan:
    """A way to run a model here: the placement of the weights, the matching flags, and the arithmetic."""

    model: str
    quant: str
    fits: bool
    placement: str
    gpu_layers: int
    cpu_moe: int
    weights_bytes: int
    kv_cache_bytes: int
    overhead_bytes: int
    gpu_bytes_needed: int
    ram_bytes_needed: int
    steps: list[str] = field(default_factory=list)

    def flags(self) -> str:
        parts = [f"--model {self.model}", f"--gpu-layers {self.gpu_layers}"]
        if self.cpu_moe:
            parts.append(f"--cpu-moe {self.cpu_moe}")
        return " ".join(parts)

    def to_dict(self) -> dict:
        return {**asdict(self), "flags": self.flags()}


def kv_cache_bytes(model: CatalogModel, ctx: int, kv_type: str = "f16", batch_size: int = DEFAULT_BATCH_SIZE) -> int:
    """Return the KV cache size of `model` at `ctx` tokens with the sliding-window cache."""
    if ctx < 1:
        raise UsageError(f"The context size must be 1 token or more, got {ctx}.")
    if kv_type not in KV_TYPE_FACTORS:
        raise UsageError(f"Unknown KV cache type {kv_type!r}; allowed: {', '.join(KV_TYPE_FACTORS)}.")
    factor = KV_TYPE_FACTORS[kv_type]
    sliding_cells = min(ctx, model.sliding_window + batch_size)
    raw = model.kv_bytes_per_token_sliding * sliding_cells + model.kv_bytes_per_token_global * ctx
    return int(raw * factor)


def recommend(hardware: Hardware, ctx: int, kv_type: str = "f16") -> Plan:
    """Return the first candidate that fits, or the default model's CPU plan marked as not fitting."""
    for name, quant, gpu_only in CANDIDATES:
        plan = plan_for(CATALOG[name], quant, hardware, ctx, kv_type)
        if plan.fits and (not gpu_only or plan.placement == "all on the GPU"):
            return plan
    return plan_for(CATALOG["gemma-4-26b-a4b"], "Q4_K_M", hardware, ctx, kv_type)


def plan_for(model: CatalogModel, quant: str, hardware: Hardware, ctx: int, kv_type: str = "f16") -> Plan:
    """Work out how `model` at `quant` runs on `hardware`: all on the GPU, experts in RAM, split, or CPU only."""
    weights = model.quant_sizes[quant]
    kv = kv_cache_bytes(model, ctx, kv_type)
    gpu = hardware.gpu_memory_bytes
    base = Plan(model.name, quant, False, "", 0, 0, weights, kv, 0, 0, 0)
    base.steps = [
        f"weights ({quant}): {_gib(weights)}",
        f"KV cache at {ctx} tokens ({kv_type}, sliding window {model.sliding_window}): {_gib(kv)}",
    ]
    if gpu:
        for planner in (_all_on_gpu, _experts_in_ram, _split_layers):
            plan = planner(base, model, hardware)
            if plan is not None:
                return plan
    return _cpu_only(base, hardware)


def _all_on_gpu(plan: Plan, model: CatalogModel, hardware: Hardware) -> Plan | None:
    needed = plan.weights_bytes + plan.kv_cache_bytes + GPU_OVERHEAD_BYTES
    if needed > hardware.gpu_memory_bytes:
        plan.steps.append(
            f"all on the GPU: {_gib(plan.weights_bytes)} + {_gib(plan.kv_cache_bytes)} + {_gib(GPU_OVERHEAD_BYTES)} overhead"
            f" = {_gib(needed)} > {_gib(hardware.gpu_memory_bytes)} GPU memory: does not fit"
        )
        return None
    return _finish(plan, "all on the GPU", -1, 0, GPU_OVERHEAD_BYTES, needed, RAM_HEADROOM_BYTES, hardware)


def _experts_in_ram(plan: Plan, model: CatalogModel, hardware: Hardware) -> Plan | None:
    """Keep the MoE expert tensors of the first N layers in RAM (--cpu-moe N), everything else on the GPU."""
    if not model.expert_fraction:
        return None
    per_layer = plan.weights_bytes * model.expert_fraction / model.block_count
    excess = plan.weights_bytes + plan.kv_cache_bytes + GPU_OVERHEAD_BYTES - hardware.gpu_memory_bytes
    layers = math.ceil(excess / per_layer)
    if layers > model.block_count:
        plan.steps.append(f"experts in RAM: even all {model.block_count} layers' experts leave too much on the GPU")
        return None
    in_ram = int(layers * per_layer)
    gpu_needed = plan.weights_bytes - in_ram + plan.kv_cache_bytes + GPU_OVERHEAD_BYTES
    plan.steps.append(
        f"experts per layer: {_gib(plan.weights_bytes)} x {model.expert_fraction:.0%} / {model.block_count} layers = {_gib(per_layer)};"
        f" {_gib(excess)} over the GPU -> {layers} layers' experts in RAM ({_gib(in_ram)})"
    )
    return _finish(plan, f"experts of {layers} layers in RAM", -1, layers, GPU_OVERHEAD_BYTES, gpu_needed, in_ram + RAM_HEADROOM_BYTES, hardware)


def _split_layers(plan: Plan, model: CatalogModel, hardware: Hardware) -> Plan | None:
    """Put as many whole layers on the GPU as fit after the KV cache and overhead; the rest run on the CPU."""
    per_layer = plan.weights_bytes / model.block_count
    room = hardware.gpu_memory_bytes - plan.kv_cache_bytes - GPU_OVERHEAD_BYTES
    layers = max(0, min(model.block_count, int(room // per_layer)))
    if layers == 0:
        plan.steps.append("split layers: not one layer fits beside the KV cache and overhead")
        return None
    in_ram = int((model.block_count - layers) * per_layer)
    plan.steps.append(f"layer size: {_gib(per_layer)}; {_gib(room)} of GPU memory left -> {layers} of {model.block_count} layers on the GPU")
    gpu_needed = int(layers * per_layer) + plan.kv_cache_bytes + GPU_OVERHEAD_BYTES
    return _finish(plan, f"{layers} layers on the GPU", layers, 0, GPU_OVERHEAD_BYTES, gpu_needed, in_ram + RAM_HEADROOM_BYTES, hardware)


def _cpu_only(plan: Plan, hardware: Hardware) -> Plan:
    needed = plan.weights_bytes + plan.kv_cache_bytes + CPU_OVERHEAD_BYTES + RAM_HEADROOM_BYTES
    return _finish(plan, "CPU only", 0, 0, CPU_OVERHEAD_BYTES, 0, needed, hardware)


def _finish(plan: Plan, placement: str, gpu_layers: int, cpu_moe: int, overhead: int, gpu_needed: int, ram_needed: int, hardware: Hardware) -> Plan:
    plan.placement = placement
    plan.gpu_layers = gpu_layers
    plan.cpu_moe = cpu_moe
    plan.overhead_bytes = overhead
    plan.gpu_bytes_needed = gpu_needed
    plan.ram_bytes_needed = ram_needed
    plan.fits = ram_needed <= hardware.ram_bytes and gpu_needed <= max(hardware.gpu_memory_bytes, 0)
    verdict = "fits" if plan.fits else "does not fit"
    if gpu_needed:
        plan.steps.append(f"GPU: {_gib(gpu_needed)} needed of {_gib(hardware.gpu_memory_bytes)} (overhead {_gib(overhead)} included)")
    plan.steps.append(
        f"RAM: {_gib(ram_needed)} needed of {_gib(hardware.ram_bytes)} ({_gib(RAM_HEADROOM_BYTES)} kept for the system): {verdict}"
    )
    return plan


def _gib(value: float) -> str:
    return f"{value / GIB:.1f} GiB"
