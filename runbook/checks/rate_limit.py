"""A rate limit holds (runbook: "`/login`: RATE_LIMIT_LOGIN_PER_MINUTE, 10/min per IP").

`limit` attempts are allowed within `window`; attempt limit+1 must be refused
(429). The attempts are failed logins, which the server records, so the check
writes and runs only with --allow-writes (or `allow_writes: true` for the
environment). The description names a probe user that no real person has, so
nobody is locked out; the probing address itself stays limited for the window.

Because of that, a run started within the window of this runner's last probe would be
refused early by its predecessor's attempts: it repeats the last verdict instead, saying
"measured at T; next measurement after T+window" (kept in runbook.host.samples' state file).
A 5xx is not remembered: the endpoint failed, and the next run looks again.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal
from urllib.parse import urlencode

from pydantic import Field, model_validator

from runbook.describe.model import CheckBase, Duration, format_duration
from runbook.errors import CheckError, CheckFailed, CheckPassed
from runbook.host import endpoint
from runbook.host.docker_host import Container
from runbook.host.endpoint import Endpoint
from runbook.host.samples import STORE, Probe
from runbook.host.target import Target


class RateLimitCheck(CheckBase, Endpoint):
    """Attempt limit+1 within the window is refused with 429."""

    kind: ClassVar[str] = "rate_limit"
    default_markers: ClassVar[tuple[str, ...]] = ("daily", "smoke")
    writes: ClassVar[str] = "failed login attempts of a probe user, counted against the runner's address"
    timed: ClassVar[bool] = True

    method: Literal["GET", "HEAD", "POST"] = "POST"
    form: dict[str, str] | None = Field(default=None, description="form fields of each attempt")
    json_body: dict[str, Any] | None = Field(default=None, description="or a JSON body")
    limit: int = Field(ge=1, le=200, description="attempts allowed within the window")
    window: Duration = 60.0
    slack: int = Field(
        default=0,
        ge=0,
        le=50,
        description="a refusal this many attempts early still passes: other checks of the run "
        "(a page of the same endpoint) already count in the window",
    )
    limited_status: list[int] = [429]

    @model_validator(mode="after")
    def _one_body(self) -> RateLimitCheck:
        if self.form is not None and self.json_body is not None:
            raise ValueError("set form or json_body, not both")
        return self

    def body(self) -> tuple[bytes | None, dict[str, str]]:
        if self.form is not None:
            return urlencode(self.form).encode(), {"Content-Type": "application/x-www-form-urlencoded"}
        if self.json_body is not None:
            return json.dumps(self.json_body).encode(), {"Content-Type": "application/json"}
        return None, {}


def verify(check: RateLimitCheck, target: Target) -> None:
    """Probe the limit, unless this runner's last probe still counts in the window: repeat that."""
    origin = endpoint.origins(check, target)[0]  # one address: the limit is per address
    where = endpoint.describe(check, origin)
    source = f"rate_limit {check.id} {where}"
    if STORE.folder is not None:
        _repeat_a_recent_probe(STORE.last_probe(source), check.window)
    try:
        _probe(check, target, origin, where)
    except EndpointFails:
        raise  # counted nothing worth remembering: the next run looks again
    except CheckFailed as failed:
        _remember(source, passed=False, found=failed.found, expected=failed.expected)
        raise
    _remember(source, passed=True, found=f"the limit held ({where})", expected="")


def _repeat_a_recent_probe(last: Probe | None, window_seconds: float) -> None:
    """The last probe's attempts still count within the window: a new probe would be refused early
    because of them, not because the limit is lower. Say the last verdict and when to look again."""
    now = time.time()
    if last is None or not 0 <= now - last.time < window_seconds:
        return
    when = f"measured at {_clock(last.time)}; next measurement after {_clock(last.time + window_seconds)}"
    if last.passed:
        raise CheckPassed(f"{last.found}: {when} (its attempts still count in the window)")
    raise CheckFailed(last.expected, f"{last.found} ({when})")


def _remember(source: str, *, passed: bool, found: str, expected: str) -> None:
    if STORE.folder is not None:
        STORE.record_probe(source, Probe(time.time(), passed, found, expected))


def _clock(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%H:%M:%S UTC")


class EndpointFails(CheckFailed):
    """A 5xx: the endpoint fails, so its limit cannot be judged."""


def _probe(check: RateLimitCheck, target: Target, origin: Container | None, where: str) -> None:
    content, headers = check.body()
    attempts = check.limit + 1
    window = format_duration(check.window)
    limited = "/".join(map(str, check.limited_status))
    statuses: list[int] = []
    started = time.monotonic()
    for attempt in range(1, attempts + 1):
        answer = endpoint.send(check, target, origin, headers=headers, content=content)
        statuses.append(answer.status)
        if answer.status >= 500:
            # A failing endpoint (502/504 from a proxy, a crashing app) counts nothing: say so now
            # rather than after limit+1 slow attempts.
            raise EndpointFails(
                f"attempt {attempts} within {window} answers {limited}",
                f"attempt {attempt} answered {answer.status} ({where}): the endpoint fails, "
                f"its limit cannot be judged ({_tally(statuses)})",
            )
        if answer.status in check.limited_status and attempt < attempts - check.slack:
            raise CheckFailed(
                f"{check.limit} attempts within {window} allowed, attempt {attempts} answers {limited}",
                f"attempt {attempt} answered {answer.status} already ({where}; allowed: {check.limit} per "
                f"{window}): the limit is lower, or attempts of the last {window} from this address "
                f"still count ({_tally(statuses)})",
            )
        if answer.status in check.limited_status:
            break  # refused within the slack: the limit holds
    took = time.monotonic() - started
    if took > check.window:
        raise CheckError(
            f"{attempts} attempts took {took:.1f}s > the {window} window: the limit cannot be judged "
            f"({_tally(statuses)})"
        )
    if statuses[-1] not in check.limited_status:
        raise CheckFailed(
            f"attempt {attempts} within {window} answers {limited}",
            f"attempt {attempts} within {took:.1f}s answered {statuses[-1]} != {limited} ({where}): "
            f"no limit at {check.limit} per {window} ({_tally(statuses)})",
        )


def _tally(statuses: list[int]) -> str:
    """'statuses: 401 x10, 429 x1'."""
    counts = Counter(statuses)
    return "statuses: " + ", ".join(f"{status} x{count}" for status, count in sorted(counts.items()))
