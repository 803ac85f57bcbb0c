"""gemma-agent: a coding agent that runs a local model through llama.cpp."""

__version__ = "0.1.0"
