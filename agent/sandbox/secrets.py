"""Masking of secret values in text the model, the trajectory or the screen will show."""

from __future__ import annotations

import os
import re

MASK = "[masked secret]"

# Values shorter than this are too common ("1", "true") to mask without garbling ordinary output.
MIN_SECRET_LENGTH = 6

SECRET_NAME_PATTERN = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)

# Well-known credential formats, masked even when no environment variable contains them.
SECRET_VALUE_PATTERNS = [
    re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"),  # OpenAI and Anthropic style API keys
    re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}"),  # GitHub tokens
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"),
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key ids
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),  # Slack tokens
    re.compile(r"\bAIza[0-9A-Za-z_-]{35}"),  # Google API keys
    re.compile(r"\bhf_[A-Za-z0-9]{30,}"),  # Hugging Face tokens
    re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}"),  # GitLab tokens
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.DOTALL),
]


def secret_values(environ: dict[str, str] | None = None) -> list[str]:
    """Return the values of environment variables whose names look secret, longest first."""
    source = os.environ if environ is None else environ
    values = {
        value
        for name, value in source.items()
        if SECRET_NAME_PATTERN.search(name) and len(value) >= MIN_SECRET_LENGTH
    }
    return sorted(values, key=len, reverse=True)


def mask_secrets(text: str, environ: dict[str, str] | None = None) -> str:
    """Replace secret-looking values in `text` with a marker.

    The environment is read at each call, so a key exported after start-up is masked too.
    """
    if not text:
        return text
    for value in secret_values(environ):
        text = text.replace(value, MASK)
    for pattern in SECRET_VALUE_PATTERNS:
        text = pattern.sub(MASK, text)
    return text
