"""The numbers the eval reports for one run, read from the run summary the agent returns."""

from __future__ import annotations

import dataclasses
import resource
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

# Summary keys read for each metric, first match wins. The first name is the one a summary should use;
# the others are accepted spellings. Keys are looked up at the top level, then in "usage" and "totals".
SUMMARY_KEYS: dict[str, tuple[str, ...]] = {
    "status": ("status",),
    "steps": ("steps",),
    "tool_calls": ("tool_calls",),
    "refused_calls": ("refused_calls", "unparsed_calls"),
    "failed_calls": ("failed_calls",),
    "edit_failures": ("edit_failures",),
    "wall_seconds": ("wall_seconds", "seconds"),
    "prompt_tokens_evaluated": ("prompt_tokens_evaluated",),
    "prompt_tokens_cached": ("prompt_tokens_cached", "prompt_tokens_reused"),
    "decode_tokens": ("decode_tokens", "completion_tokens"),
    "decode_seconds": ("decode_seconds",),
    "peak_memory_bytes": ("peak_memory_bytes",),
}
NESTED_SUMMARY_KEYS = ("usage", "totals")


@dataclass
class RunMetrics:
    """Counts, tokens and timings of one agent run. `peak_memory_bytes` is 0 when unknown.

    `refused_calls` are calls the parser could not accept (unparsed or invalid); `failed_calls` ran and
    returned an error to the model.
    """

    status: str = ""
    steps: int = 0
    tool_calls: int = 0
    refused_calls: int = 0
    failed_calls: int = 0
    edit_failures: int = 0
    wall_seconds: float = 0.0
    prompt_tokens_evaluated: int = 0
    prompt_tokens_cached: int = 0
    decode_tokens: int = 0
    decode_seconds: float = 0.0
    peak_memory_bytes: int = 0

    @property
    def decode_tokens_per_second(self) -> float:
        return self.decode_tokens / self.decode_seconds if self.decode_seconds > 0 else 0.0

    @classmethod
    def from_summary(cls, summary: Any) -> RunMetrics:
        """Read the metrics from a run summary: a mapping, a dataclass or an object with to_dict()."""
        data = summary_dict(summary)
        values = {}
        for field in fields(cls):
            value = _lookup(data, SUMMARY_KEYS[field.name])
            if value is not None:
                values[field.name] = str(value) if field.type == "str" else _number(value, field.type)
        metrics = cls(**values)
        _fill_derived(metrics, data)
        return metrics

    def add(self, other: RunMetrics) -> RunMetrics:
        """Return the totals of two runs; the peak memory is the larger of the two."""
        total = RunMetrics(status="")
        for field in fields(self):
            if field.name == "status":
                continue
            combine = max if field.name == "peak_memory_bytes" else (lambda a, b: a + b)
            setattr(total, field.name, combine(getattr(self, field.name), getattr(other, field.name)))
        return total

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["decode_tokens_per_second"] = round(self.decode_tokens_per_second, 2)
        return data


def summary_dict(summary: Any) -> dict[str, Any]:
    """Return a run summary as a plain dict, whatever form the agent returned it in."""
    if summary is None:
        return {}
    if isinstance(summary, Mapping):
        return dict(summary)
    if callable(getattr(summary, "to_dict", None)):
        return dict(summary.to_dict())
    if dataclasses.is_dataclass(summary) and not isinstance(summary, type):
        return dataclasses.asdict(summary)
    return dict(vars(summary))


def process_peak_memory_bytes() -> int:
    """Return this process's peak resident memory so far, which includes an in-process model."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return peak if sys.platform == "darwin" else peak * 1024


def _fill_derived(metrics: RunMetrics, data: dict[str, Any]) -> None:
    """Fill decode seconds and peak memory from the forms agent.session.RunSummary reports them in."""
    rate = _lookup(data, ("decode_tokens_per_second",))
    if not metrics.decode_seconds and metrics.decode_tokens and rate:
        metrics.decode_seconds = metrics.decode_tokens / float(rate)
    megabytes = _lookup(data, ("peak_memory_mb",))
    if not metrics.peak_memory_bytes and megabytes:
        metrics.peak_memory_bytes = int(float(megabytes) * 1024 * 1024)


def _lookup(data: dict[str, Any], keys: tuple[str, ...]) -> Any:
    places = [data] + [data[name] for name in NESTED_SUMMARY_KEYS if isinstance(data.get(name), Mapping)]
    for place in places:
        for key in keys:
            if place.get(key) is not None:
                return place[key]
    return None


def _number(value: Any, kind: str) -> int | float:
    try:
        return int(value) if kind == "int" else float(value)
    except (TypeError, ValueError):
        return 0
