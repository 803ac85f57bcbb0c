"""The failures that stop a run, each with the exit code the CLI returns for it.

The model's own mistakes are not here: tools turn them into observations (see `agent.tool.ToolError`).
"""

EXIT_FINISHED = 0
EXIT_NOT_FINISHED = 1
EXIT_USAGE = 2
EXIT_ENGINE = 3
EXIT_INTERRUPTED = 130


class AgentError(Exception):
    """A failure that ends the run with a one-line message and `exit_code`."""

    exit_code = EXIT_NOT_FINISHED


class UsageError(AgentError):
    """Bad usage or configuration: an invalid option, a broken config file, a missing model file."""

    exit_code = EXIT_USAGE


class EngineError(AgentError):
    """The engine failed: the model did not load, the server is down or answered with an error."""

    exit_code = EXIT_ENGINE


class ScriptExhausted(AgentError):
    """The scripted engine has no replies left; the run stops without finishing."""

    exit_code = EXIT_NOT_FINISHED
