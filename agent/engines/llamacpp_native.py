"""A thin layer over llama.cpp's C API (through llama-cpp-python's ctypes bindings): load, tokenize, decode.

The high-level `llama_cpp.Llama` class builds its own model parameters, so it cannot set tensor
buffer-type overrides (used to keep expert weights in system RAM). This module loads the model
itself, routes llama.cpp's log to a Python logger and exposes the few calls the engine needs.
"""

from __future__ import annotations

import collections
import ctypes
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from agent.errors import EngineError, UsageError

logger = logging.getLogger(__name__)
native_logger = logging.getLogger("agent.engines.llamacpp.native")

# ggml_type ids (ggml.h) of the KV cache types a user may choose.
KV_TYPES = {"f16": 1, "q8_0": 8, "q4_0": 2}
# llama-cpp-python maps "all layers" to INT32_MAX the same way.
ALL_LAYERS = 0x7FFFFFFF
# llama.cpp log lines kept to explain a failed load.
LOG_TAIL_LINES = 20
PIECE_BUFFER_BYTES = 64
STATE_FLAGS_SWA_ONLY = 1  # LLAMA_STATE_SEQ_FLAGS_SWA_ONLY
SEQUENCE = 0

_log_tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
_log_callback = None  # keeps the ctypes callback alive for as long as llama.cpp may call it
_backend_ready = False


@dataclass
class LoadOptions:
    """How to load a model and size its context."""

    ctx: int = 4096
    gpu_layers: int = -1
    threads: int = 0
    batch_size: int = 512
    flash_attn: bool = True
    kv_type: str = "f16"
    swa_full: bool = False
    # Regular expressions of tensor names whose weights stay in system RAM.
    cpu_tensor_patterns: list[str] = field(default_factory=list)


def expert_tensor_pattern(layers: int) -> str:
    """Return the tensor-name pattern of the expert weights of the first `layers` layers (llama.cpp `--n-cpu-moe`)."""
    numbers = "|".join(str(layer) for layer in range(layers))
    return rf"blk\.({numbers})\.ffn_(up|down|gate|gate_up)_exps"


def default_threads() -> int:
    """Return the number of physical cores this process may run on (decode gains nothing from SMT siblings)."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return max(1, os.cpu_count() or 1)
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add(((topology / "physical_package_id").read_text().strip(), (topology / "core_id").read_text().strip()))
        except OSError:
            cores.add(("cpu", str(cpu)))
    return max(1, len(cores))


def route_native_log() -> None:
    """Send llama.cpp's log to the `agent.engines.llamacpp.native` logger instead of stderr."""
    import llama_cpp

    global _log_callback, _backend_ready
    if _log_callback is None:

        def forward(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
            line = text.decode("utf-8", errors="replace").rstrip("\n")
            if line.strip():
                _log_tail.append(line)
            if native_logger.isEnabledFor(logging.DEBUG) and line:
                # llama.cpp is chatty even at INFO, so all of it goes to DEBUG (shown with -v).
                native_logger.debug("%s", line)

        _log_callback = llama_cpp.llama_log_callback(forward)
        llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))
    if not _backend_ready:
        llama_cpp.llama_backend_init()
        _backend_ready = True


class _TensorOverride(ctypes.Structure):
    """`struct llama_model_tensor_buft_override` (llama.h): a name pattern and a buffer type."""

    _fields_ = [("pattern", ctypes.c_char_p), ("buft", ctypes.c_void_p)]


def _cpu_buffer_type() -> int:
    import llama_cpp

    library = ctypes.CDLL(str(Path(llama_cpp.__file__).parent / "lib" / "libggml-base.so"))
    function = library.ggml_backend_cpu_buffer_type
    function.restype = ctypes.c_void_p
    function.argtypes = []
    return function()


def _override_array(patterns: list[str]) -> ctypes.Array | None:
    """Build the NULL-terminated override list that maps each pattern to the CPU buffer type."""
    if not patterns:
        return None
    cpu = _cpu_buffer_type()
    array = (_TensorOverride * (len(patterns) + 1))()
    for index, pattern in enumerate(patterns):
        array[index].pattern = pattern.encode("utf-8")
        array[index].buft = cpu
    return array


class NativeModel:
    """One loaded model with one context and one sequence: the engine's handle on llama.cpp."""

    def __init__(self, path: Path, options: LoadOptions):
        import llama_cpp

        if options.kv_type not in KV_TYPES:
            raise UsageError(f"Invalid kv_type {options.kv_type!r}: use one of {', '.join(KV_TYPES)}.")
        route_native_log()
        self._llama = llama_cpp
        self.options = options
        self.threads = options.threads or default_threads()
        self._overrides = _override_array(options.cpu_tensor_patterns)
        self.model = self._load_model(path)
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)
        self.ctx = self._create_context()
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
        self.n_ctx = llama_cpp.llama_n_ctx(self.ctx)
        self.n_batch = llama_cpp.llama_n_batch(self.ctx)
        self.n_swa = llama_cpp.llama_model_n_swa(self.model)
        self.bos = llama_cpp.llama_vocab_bos(self.vocab)
        self.add_bos = llama_cpp.llama_vocab_get_add_bos(self.vocab)
        self._pieces: dict[int, bytes] = {}
        self._piece_buffer = ctypes.create_string_buffer(PIECE_BUFFER_BYTES)

    def _load_model(self, path: Path):
        params = self._llama.llama_model_default_params()
        params.n_gpu_layers = ALL_LAYERS if self.options.gpu_layers < 0 else self.options.gpu_layers
        if self._overrides is not None:
            params.tensor_buft_overrides = ctypes.cast(self._overrides, ctypes.c_void_p)
        _log_tail.clear()
        model = self._llama.llama_model_load_from_file(str(path).encode("utf-8"), params)
        if not model:
            raise EngineError(f"llama.cpp failed to load {path}: {_last_error()}")
        return model

    def _create_context(self):
        llama_cpp = self._llama
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = self.options.ctx
        params.n_batch = self.options.batch_size
        params.n_ubatch = self.options.batch_size
        params.n_threads = self.threads
        params.n_threads_batch = self.threads
        # AUTO lets llama.cpp use flash attention where the backend supports it.
        params.flash_attn_type = (
            llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO if self.options.flash_attn else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        )
        params.type_k = KV_TYPES[self.options.kv_type]
        params.type_v = KV_TYPES[self.options.kv_type]
        params.swa_full = self.options.swa_full
        ctx = llama_cpp.llama_init_from_model(self.model, params)
        if not ctx:
            llama_cpp.llama_model_free(self.model)
            self.model = None
            raise EngineError(f"llama.cpp failed to create a context of {self.options.ctx} tokens: {_last_error()}")
        return ctx

    # Tokens

    def tokenize(self, text: str, special: bool = True) -> list[int]:
        """Tokenize `text` with no BOS added. With `special`, special-token markup becomes those tokens."""
        data = text.encode("utf-8")
        capacity = len(data) + 8
        tokens = (self._llama.llama_token * capacity)()
        count = self._llama.llama_tokenize(self.vocab, data, len(data), tokens, capacity, False, special)
        if count < 0:
            raise EngineError(f"tokenizing a prompt of {len(data)} bytes failed")
        return list(tokens[:count])

    def piece(self, token: int) -> bytes:
        """Return the bytes of `token`, with special tokens written as their text."""
        cached = self._pieces.get(token)
        if cached is not None:
            return cached
        count = self._llama.llama_token_to_piece(self.vocab, token, self._piece_buffer, PIECE_BUFFER_BYTES, 0, True)
        if count < 0:
            buffer = ctypes.create_string_buffer(-count)
            count = self._llama.llama_token_to_piece(self.vocab, token, buffer, -count, 0, True)
            data = buffer.raw[:count]
        else:
            data = self._piece_buffer.raw[:count]
        self._pieces[token] = data
        return data

    def is_end_of_generation(self, token: int) -> bool:
        return bool(self._llama.llama_vocab_is_eog(self.vocab, token))

    # Evaluation

    def evaluate(self, tokens: list[int]) -> None:
        """Append `tokens` to the sequence in batches; the logits of the last one become available."""
        for start in range(0, len(tokens), self.n_batch):
            chunk = tokens[start:start + self.n_batch]
            array = (self._llama.llama_token * len(chunk))(*chunk)
            status = self._llama.llama_decode(self.ctx, self._llama.llama_batch_get_one(array, len(chunk)))
            if status != 0:
                raise EngineError(f"llama_decode failed with status {status} ({_last_error()})")

    def evaluate_one(self, token: int) -> None:
        """Append one token: the decode step of generation."""
        array = (self._llama.llama_token * 1)(token)
        status = self._llama.llama_decode(self.ctx, self._llama.llama_batch_get_one(array, 1))
        if status != 0:
            raise EngineError(f"llama_decode failed with status {status} ({_last_error()})")

    def logits(self) -> np.ndarray:
        """Return the last token's logits as a writable view into llama.cpp's buffer (valid until the next decode)."""
        pointer = self._llama.llama_get_logits_ith(self.ctx, -1)
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))

    # KV cache

    def remove_from(self, position: int) -> None:
        """Drop every cached position from `position` on."""
        self._llama.llama_memory_seq_rm(self.memory, SEQUENCE, position, -1)

    def clear(self) -> None:
        self._llama.llama_memory_clear(self.memory, True)

    def position_min(self) -> int:
        """Return the smallest position still cached (above 0 once a sliding-window cache has dropped cells)."""
        return self._llama.llama_memory_seq_pos_min(self.memory, SEQUENCE)

    def save_window(self) -> bytes:
        """Return a copy of the sliding-window part of the cache."""
        size = self._llama.llama_state_seq_get_size_ext(self.ctx, SEQUENCE, STATE_FLAGS_SWA_ONLY)
        buffer = (ctypes.c_uint8 * size)()
        written = self._llama.llama_state_seq_get_data_ext(self.ctx, buffer, size, SEQUENCE, STATE_FLAGS_SWA_ONLY)
        return bytes(buffer[:written])

    def restore_window(self, state: bytes) -> bool:
        """Put back a sliding-window cache saved by `save_window`; return False when llama.cpp rejects it."""
        buffer = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
        read = self._llama.llama_state_seq_set_data_ext(self.ctx, buffer, len(state), SEQUENCE, STATE_FLAGS_SWA_ONLY)
        return read == len(state)

    def close(self) -> None:
        if getattr(self, "ctx", None):
            self._llama.llama_free(self.ctx)
            self.ctx = None
        if getattr(self, "model", None):
            self._llama.llama_model_free(self.model)
            self.model = None


def _last_error() -> str:
    for line in reversed(_log_tail):
        if "error" in line.lower() or "failed" in line.lower():
            return line.strip()
    return _log_tail[-1].strip() if _log_tail else "no message from llama.cpp (run with -v for its log)"
