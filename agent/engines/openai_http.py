"""HTTP to an OpenAI-compatible server: JSON requests, SSE streams with silence limits, retries, errors.

Every failure becomes an `EngineError` (or its subclass `ServerError` for HTTP error statuses) whose
one-line message names the URL and what to do next.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

from agent.config import Settings
from agent.errors import EngineError

logger = logging.getLogger(__name__)

# Probes and token counts are small requests: a server that takes longer is treated as absent.
PROBE_TIMEOUT = 10.0
# A server's Retry-After is honoured up to this many seconds.
MAX_RETRY_AFTER = 60.0
# Statuses that mean "busy or restarting, try again": rate limit, bad gateway, unavailable, gateway timeout.
TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
# A server error message is cut to this length so the one-line error stays one line.
MAX_SERVER_MESSAGE = 300
START_HINT = "start one, for example `llama-server -m MODEL.gguf --jinja --port 8080`, or pass the right --base-url"


class ServerError(EngineError):
    """An HTTP error status from the server, with `status` and the server's own `server_message`."""

    def __init__(self, message: str, status: int, server_message: str):
        super().__init__(message)
        self.status = status
        self.server_message = server_message


def root_url(base_url: str) -> str:
    """Return the server root: the base URL without its trailing `/v1`, where native endpoints live."""
    base = base_url.rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


class ServerClient:
    """One thread-safe httpx client for one server, with its timeouts and retry policy."""

    def __init__(self, settings: Settings, api_key: str = ""):
        import httpx

        self.base_url = settings.base_url.rstrip("/")
        self.root_url = root_url(self.base_url)
        self.first_chunk_timeout = settings.server_first_chunk_timeout
        self.read_timeout = settings.server_read_timeout
        self.retries = max(0, settings.server_retries)
        self.retry_delay = settings.server_retry_delay
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # The reader thread's own read limit only stops a thread that was abandoned: the caller enforces
        # the silence limits itself and gives up first.
        worker_read = max(self.first_chunk_timeout, self.read_timeout) + 5.0
        timeout = httpx.Timeout(connect=settings.server_connect_timeout, read=worker_read, write=60.0, pool=None)
        self._client = httpx.Client(timeout=timeout, headers=headers)

    def close(self) -> None:
        self._client.close()

    def get_json(self, url: str) -> Any:
        """GET a small JSON document. Return None where the server has no such endpoint or sends no JSON."""
        return self._small_request("GET", url, None)

    def post_json(self, url: str, body: dict[str, Any]) -> Any:
        """POST a small JSON request. Return None where the server has no such endpoint or sends no JSON."""
        return self._small_request("POST", url, body)

    def _small_request(self, method: str, url: str, body: dict[str, Any] | None) -> Any:
        import httpx

        try:
            response = self._client.request(method, url, json=body, timeout=PROBE_TIMEOUT)
        except httpx.ConnectError as error:
            raise EngineError(_connect_message(url, error)) from None
        except httpx.TimeoutException:
            logger.warning("%s %s timed out after %.0f s; treating the endpoint as absent", method, url, PROBE_TIMEOUT)
            return None
        except httpx.HTTPError as error:
            logger.warning("%s %s failed: %s", method, url, error)
            return None
        if response.status_code != 200:
            logger.debug("%s %s returned HTTP %d", method, url, response.status_code)
            return None
        try:
            return response.json()
        except ValueError:
            return None

    def stream_events(self, url: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """POST a streaming request and yield each SSE data object until `[DONE]` or the end of the body.

        A transient failure before the body starts is retried. A failure after that raises at once,
        because the caller has already shown part of the reply.
        """
        reader = self._open(url, body)
        try:
            yield from _sse_events(reader, url, self.first_chunk_timeout, self.read_timeout)
        finally:
            reader.cancel()

    def _open(self, url: str, body: dict[str, Any]) -> _StreamReader:
        for attempt in range(self.retries + 1):
            reader = _StreamReader(self._client, url, body)
            try:
                reader.wait_for_status(self.first_chunk_timeout)
                return reader
            except _TransientFailure as failure:
                reader.cancel()
                if attempt == self.retries:
                    raise failure.final_error from None
                delay = failure.retry_after or self.retry_delay * 2**attempt
                logger.warning("%s; retry %d of %d in %.1f s", failure.reason, attempt + 1, self.retries, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")


class _TransientFailure(Exception):
    def __init__(self, reason: str, final_error: EngineError, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.final_error = final_error
        self.retry_after = retry_after


class _StreamReader:
    """Reads one streaming response on a daemon thread and hands its lines over through a queue.

    The thread lets the caller wait with a different silence limit before and after the first chunk,
    which one httpx read timeout cannot express.
    """

    def __init__(self, client: Any, url: str, body: dict[str, Any]):
        self.url = url
        self._items: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._cancelled = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(client, body), daemon=True, name="openai-stream")
        self._thread.start()

    def cancel(self) -> None:
        """Ask the thread to drop the connection at its next chunk, so the server stops generating."""
        self._cancelled.set()

    def _run(self, client: Any, body: dict[str, Any]) -> None:
        import httpx

        try:
            with client.stream("POST", self.url, json=body) as response:
                if response.status_code != 200:
                    response.read()
                    self._items.put(("status", (response.status_code, response.headers, response.text)))
                    return
                self._items.put(("status", (200, response.headers, "")))
                for line in response.iter_lines():
                    if self._cancelled.is_set():
                        return
                    self._items.put(("line", line))
            self._items.put(("end", None))
        except httpx.HTTPError as error:
            self._items.put(("error", error))

    def next_item(self, timeout: float) -> tuple[str, Any]:
        try:
            return self._items.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError from None

    def wait_for_status(self, timeout: float) -> None:
        """Wait for the response status. Raise `_TransientFailure` for a retryable failure, else EngineError."""
        try:
            kind, value = self.next_item(timeout)
        except TimeoutError:
            raise EngineError(_first_chunk_timeout_message(self.url, timeout)) from None
        if kind == "error":
            _raise_request_error(self.url, value)
        status, headers, text = value
        if status == 200:
            return
        error = http_status_error(self.url, status, text)
        if status in TRANSIENT_STATUSES:
            reason = f"{self.url} returned HTTP {status}"
            raise _TransientFailure(reason, error, _retry_after(headers))
        raise error


def _sse_events(reader: _StreamReader, url: str, first_timeout: float, read_timeout: float) -> Iterator[dict]:
    """Decode SSE lines into data objects, applying the silence limit that fits the phase of the reply."""
    data_lines: list[str] = []
    seen_data = False
    while True:
        timeout = read_timeout if seen_data else first_timeout
        try:
            kind, value = reader.next_item(timeout)
        except TimeoutError:
            message = _silence_message(url, timeout) if seen_data else _first_chunk_timeout_message(url, timeout)
            raise EngineError(message) from None
        if kind == "error":
            _raise_stream_error(url, value, seen_data)
        if kind == "end":
            if data_lines:
                yield _decode_event(url, "\n".join(data_lines))
            return
        line: str = value
        if line.startswith("error:"):
            raise EngineError(f"{url} reported an error during the reply: {_server_message(line[len('error:'):])}")
        if line.startswith("data:"):
            data_lines.append(line[len("data:"):].strip())
        elif line.strip() or not data_lines:
            continue  # comments (": ping"), event names and blank keep-alive lines
        # Most servers put one JSON object on each data line. The SSE rule (join lines until a blank
        # one) is the fallback for a payload split across lines.
        payload = "\n".join(data_lines)
        if payload != "[DONE]" and not _is_json(payload) and line.strip():
            continue
        data_lines = []
        if payload == "[DONE]":
            return
        seen_data = True
        yield _decode_event(url, payload)


def _is_json(payload: str) -> bool:
    try:
        json.loads(payload)
    except json.JSONDecodeError:
        return False
    return True


def _decode_event(url: str, payload: str) -> dict[str, Any]:
    if payload == "[DONE]":
        return {}
    try:
        event = json.loads(payload)
    except json.JSONDecodeError:
        raise EngineError(f"{url} sent a stream chunk that is not JSON: {payload[:80]!r}") from None
    if isinstance(event, dict) and "error" in event:
        raise EngineError(f"{url} reported an error during the reply: {_server_message(json.dumps(event))}")
    return event if isinstance(event, dict) else {}


def http_status_error(url: str, status: int, text: str) -> ServerError:
    """Build the error for an HTTP error status, keeping the server's own message."""
    server_message = _server_message(text)
    if status == 404 and "model" not in server_message.lower():
        message = (
            f"{url} returned 404 Not Found: check --base-url, which must be the API root that serves "
            f"/chat/completions (usually ending in /v1, such as http://127.0.0.1:8080/v1)."
        )
    elif status in (401, 403):
        message = f"{url} rejected the request (HTTP {status}: {server_message}). Set --api-key-env to the variable holding the key."
    else:
        message = f"{url} returned HTTP {status}: {server_message}"
    return ServerError(message, status, server_message)


def _server_message(text: str) -> str:
    """Pull the message out of the error shapes servers use, or return the body itself, shortened."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return " ".join(str(text).split())[:MAX_SERVER_MESSAGE] or "(empty body)"
    candidates = [data.get("error"), data.get("detail"), data.get("message")] if isinstance(data, dict) else []
    for candidate in candidates:
        if isinstance(candidate, dict):
            candidate = candidate.get("message") or json.dumps(candidate)
        if candidate:
            return " ".join(str(candidate).split())[:MAX_SERVER_MESSAGE]
    return " ".join(text.split())[:MAX_SERVER_MESSAGE]


def _retry_after(headers: Any) -> float | None:
    try:
        return min(float(headers.get("retry-after", "")), MAX_RETRY_AFTER)
    except ValueError:
        return None


def _raise_request_error(url: str, error: Exception) -> None:
    """Translate a failure before the response status into a retryable failure or an EngineError."""
    import httpx

    if isinstance(error, httpx.ConnectTimeout):
        raise EngineError(f"Connecting to {url} timed out: is the server running and reachable? Raise server_connect_timeout for a slow network.")
    if isinstance(error, httpx.ConnectError):
        raise EngineError(_connect_message(url, error))
    if isinstance(error, (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)):
        final = EngineError(f"{url} dropped the connection before answering ({error}). Check the server's log.")
        raise _TransientFailure(f"{url} dropped the connection ({error})", final)
    raise EngineError(f"The request to {url} failed: {error}")


def _raise_stream_error(url: str, error: Exception, seen_data: bool) -> None:
    import httpx

    if isinstance(error, httpx.TimeoutException):
        raise EngineError(_silence_message(url, 0.0))
    where = "in the middle of the reply" if seen_data else "before the reply started"
    raise EngineError(
        f"{url} closed the connection {where} ({error or type(error).__name__}). "
        f"The server may have crashed or run out of memory: check its log, then run again."
    )


def _connect_message(url: str, error: Exception) -> str:
    reason = "connection refused" if "refused" in str(error).lower() else str(error)
    return f"Cannot reach the server at {url} ({reason}): {START_HINT}."


def _first_chunk_timeout_message(url: str, timeout: float) -> str:
    return (
        f"{url} sent no reply within {timeout:g} s. A long prompt on a slow machine can take this long: "
        f"raise server_first_chunk_timeout, or check that the server is not stuck."
    )


def _silence_message(url: str, timeout: float) -> str:
    seconds = f" for {timeout:g} s" if timeout else ""
    return (
        f"{url} stopped sending in the middle of the reply (nothing{seconds}). "
        f"Check the server's log; raise server_read_timeout if it is only slow."
    )
