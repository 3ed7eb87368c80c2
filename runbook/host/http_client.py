"""One HTTP exchange from the runner with a total deadline and a cap on what is kept.

httpx's timeouts are per socket read: a server that trickles one header byte a
second never trips them. So the request runs in a worker thread; at the total
deadline the caller stops waiting and closes the client, which ends the
worker's next read. Bodies are read as a stream and kept up to `BODY_CAP`; an
endless body is cut there and said to be cut, never held whole. `fetch_many`
is the same for load: many GETs, one client, one total deadline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from runbook.host.own_traffic import LEDGER

BODY_CAP = 4 << 20
ENVIRONMENT_RETRIES = 20  # see _client


class NoAnswer(Exception):
    """Nothing (or not all of the headers) arrived before the deadline."""


class RequestFailed(Exception):
    """The exchange failed: connection refused, DNS, TLS, protocol error."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    seconds: float
    headers: dict[str, str] = field(default_factory=dict)
    truncated: bool = False  # the body was longer than the cap (or endless) and was cut
    late: bool = False  # the headers came in time, the body was still arriving at the deadline

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="backslashreplace")

    def body_note(self) -> str:
        """'' or why the body is incomplete, for messages and evidence."""
        if self.late:
            return f" (body still arriving at the deadline; {len(self.body)} bytes read)"
        if self.truncated:
            return f" (body cut at {len(self.body)} bytes)"
        return ""


def fetch(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
    timeout: float,
    verify_tls: bool = True,
    cap: int = BODY_CAP,
    proxy: str | None = None,
) -> Answer:
    """One request; raises NoAnswer or RequestFailed; never takes longer than `timeout` (+ ~0.1 s).

    `proxy`: e.g. socks5://127.0.0.1:PORT, the end-to-end VPN probe's local client.
    """
    import httpx  # imported when an HTTP check runs, not at start-up

    client = _client(timeout=httpx.Timeout(timeout), verify=verify_tls, follow_redirects=False, proxy=proxy)
    started = time.monotonic()
    deadline = started + timeout
    box: dict[str, Any] = {"chunks": [], "size": 0}
    done = threading.Event()

    def exchange() -> None:
        try:
            with client.stream(method, url, headers=headers or {}, content=content) as response:
                box["status"] = response.status_code
                box["headers"] = {key.lower(): value for key, value in response.headers.items()}
                for chunk in response.iter_bytes():
                    box["chunks"].append(chunk)
                    box["size"] += len(chunk)
                    if box["size"] >= cap:
                        box["truncated"] = True
                        break
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc
        finally:
            done.set()

    worker = threading.Thread(target=exchange, daemon=True, name="runbook http request")
    worker.start()
    finished = done.wait(max(0.0, deadline - time.monotonic()))
    client.close()  # if the worker still reads, its next read fails: it ends within one trickled byte
    seconds = time.monotonic() - started
    LEDGER.note(url, seconds)
    if "status" not in box:
        error = box.get("error")
        if not finished or isinstance(error, httpx.TimeoutException):
            raise NoAnswer(f"no answer within {timeout:g}s")
        raise RequestFailed(reason(error)) from None
    body = b"".join(box["chunks"])[:cap]
    late = not finished
    if finished and "error" in box and not box.get("truncated"):
        error = box["error"]
        if isinstance(error, httpx.TimeoutException):
            late = True
        else:
            raise RequestFailed(f"answered {box['status']}, then the body failed: {reason(error)}")
    return Answer(
        status=box["status"],
        body=body,
        seconds=seconds,
        headers=box["headers"],
        truncated=bool(box.get("truncated")),
        late=late,
    )


def fetch_many(
    urls: list[str],
    *,
    headers: dict[str, str] | None = None,
    timeout: float,
    total: float,
    concurrency: int,
    verify_tls: bool = True,
    cap: int = 64 << 10,
    is_error: Callable[[Answer | str], bool] | None = None,
    errors_allowed: int | None = None,
) -> list[Answer | str]:
    """GET each URL once over `concurrency` kept-alive connections, all within `total` seconds.

    For load: one client, so that connection set-up is not what gets measured. Each
    result is an Answer or why none came; at `total` the client is closed, which ends
    the requests still running, and they read "unfinished at the deadline".

    With `is_error` and `errors_allowed`: once more results than allowed are errors the
    verdict can no longer change, so no more requests are sent and the ones under way are
    ended; those read STOPPED. A service that is down costs one round of timeouts, not
    requests / concurrency of them.
    """
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    client = _client(timeout=httpx.Timeout(timeout), verify=verify_tls, follow_redirects=False, limits=limits)
    deadline = time.monotonic() + total
    stopped = threading.Event()
    failures = 0
    count_lock = threading.Lock()

    def one(url: str) -> Answer | str:
        nonlocal failures
        if stopped.is_set():
            return STOPPED
        if time.monotonic() >= deadline:
            return "not sent: the deadline had passed"
        result = _get(url)
        if stopped.is_set() and not isinstance(result, Answer):
            return STOPPED  # ended by the stop, not by the server
        if is_error is not None and errors_allowed is not None and is_error(result):
            with count_lock:
                failures += 1
                if failures > errors_allowed:
                    stopped.set()
        return result

    def _get(url: str) -> Answer | str:
        started = time.monotonic()
        try:
            return _exchange(url, started)
        finally:
            LEDGER.note(url, time.monotonic() - started)

    def _exchange(url: str, started: float) -> Answer | str:
        try:
            with client.stream("GET", url, headers=headers or {}) as response:
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) >= cap:
                        break
                return Answer(
                    status=response.status_code,
                    body=bytes(body[:cap]),
                    seconds=time.monotonic() - started,
                    truncated=len(body) >= cap,
                )
        except httpx.TimeoutException:
            return f"no answer within {timeout:g}s"
        except Exception as exc:  # every failure is a result of its own, counted by the caller
            return reason(exc)

    pool = ThreadPoolExecutor(concurrency, thread_name_prefix="runbook load")
    futures = [pool.submit(one, url) for url in urls]
    while not stopped.is_set() and time.monotonic() < deadline:
        _, pending = wait(futures, timeout=min(0.05, max(0.0, deadline - time.monotonic())))
        if not pending:
            break
    client.close()
    pool.shutdown(wait=False, cancel_futures=True)
    if stopped.is_set():
        wait(futures, timeout=1.0)  # the requests under way end at the closed client
    return [_result_of(future, stopped.is_set()) for future in futures]


STOPPED = "not sent: the errors already exceeded what the limit allows"


def _result_of(future: Future[Answer | str], stopped: bool) -> Answer | str:
    if future.done() and not future.cancelled():
        return future.result()
    return STOPPED if stopped else "unfinished at the deadline"


def reason(exc: BaseException | None) -> str:
    """The innermost cause's words: 'ConnectError: [Errno 111] Connection refused'."""
    if exc is None:
        return "unknown error"
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__ or exc.__context__
    while cause is not None and str(cause):
        text = str(cause)
        cause = cause.__cause__ or cause.__context__
    return f"{type(exc).__name__}: {text}"[:300]


def _client(**options: Any) -> Any:
    """An httpx.Client, which reads the proxy variables (HTTPS_PROXY, NO_PROXY, ...) as it is made.

    urllib lists os.environ's keys, then reads each value: when pytest deletes
    PYTEST_CURRENT_TEST in the main thread in between, a check run ahead in another thread
    raised KeyError. Such a read is simply made again; the proxy variables do not change.
    """
    import httpx

    for _ in range(ENVIRONMENT_RETRIES):
        try:
            return httpx.Client(**options)
        except KeyError:
            continue
    return httpx.Client(**options)
