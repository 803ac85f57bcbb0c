"""Render the prompt templates shipped in the `prompts` package, strictly: a missing variable is an error."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

TEMPLATE_SUFFIX = ".jinja"


@lru_cache(maxsize=1)
def _environment():
    import jinja2

    loader = jinja2.FunctionLoader(_load_source)
    return jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)


def _load_source(name: str) -> str:
    return resources.files("prompts").joinpath(name + TEMPLATE_SUFFIX).read_text(encoding="utf-8")


def render_prompt(name: str, /, **variables: Any) -> str:
    """Render `prompts/<name>.jinja` with `variables`; a variable the template needs but did not get raises."""
    return _environment().get_template(name).render(**variables).strip()


def template_names() -> list[str]:
    """Return the names of every shipped template, without the suffix."""
    files = resources.files("prompts").iterdir()
    return sorted(f.name[: -len(TEMPLATE_SUFFIX)] for f in files if f.name.endswith(TEMPLATE_SUFFIX))
