"""A read-only command and what it must print (runbook: `redis-cli ping` -> PONG)."""

from __future__ import annotations

import shlex
import time
from typing import ClassVar

from pydantic import Field

from runbook.describe.model import CheckBase, EnvNameOrPrefix, HttpUrl
from runbook.errors import CheckFailed
from runbook.host import own_traffic
from runbook.host.processes import environment_now
from runbook.host.target import Target
from runbook.secrets import SECRETS, is_a_limit


class CommandCheck(CheckBase):
    """A read-only command on the host and what it must print (e.g. redis-cli ping).

    The command is the description's own shell text, run as written: it is the
    one field that is code by design (review it like code).
    """

    kind: ClassVar[str] = "commands"

    run: str = Field(min_length=1)
    timeout: float = Field(default=10.0, gt=0, le=600)
    expect_exit: int | None = Field(default=0, ge=0, le=255)
    expect_stdout: str | None = Field(default=None, description="exact stdout, stripped")
    stdout_contains: str | None = None
    times_answers: bool = Field(
        default=False,
        description="the command judges response times itself (a smoke script with thresholds): "
        "it runs alone in its turn, its failure is looked at once more before it is red, and is "
        "put down to the runner when the runner was starved",
    )

    pass_env: list[EnvNameOrPrefix] = Field(
        default=[],
        description="the runner's environment variables the command gets when they are set (NAME, "
        "or PREFIX_* for every name so starting): what a runbook lets a site add to a script "
        "('SMOKE_CUSTOMER_ID или SMOKE_PHONE', 'SMOKE_MAX_MS_*'); unset ones are left out, values "
        "are quoted (data, never code) and masked in reports",
    )

    requests_to: HttpUrl | None = Field(
        default=None,
        description="the service the command sends HTTP requests to, one at a time (a smoke "
        "script): its time is noted as this suite's own traffic, so a rate of that service's "
        "slow requests (`rates` with own_requests) does not blame the service for them",
    )

    @property
    def measures_time(self) -> bool:
        return self.times_answers


def passed_env(names: list[str]) -> dict[str, str]:
    """The runner's variables `pass_env` names that are set now, by name."""
    environment = environment_now()
    found: dict[str, str] = {}
    for name in names:
        if name.endswith("*"):
            found |= {key: value for key, value in sorted(environment.items()) if key.startswith(name[:-1])}
        elif name in environment:
            found[name] = environment[name]
    return found


def with_env(run: str, env: dict[str, str]) -> str:
    """`run` with `env` exported before it: every command of its text sees them."""
    if not env:
        return run
    for name, value in env.items():
        if not is_a_limit(name, value):
            SECRETS.add(value, name)
    return "export " + " ".join(f"{name}={shlex.quote(value)}" for name, value in env.items()) + "; " + run


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def verify(check: CommandCheck, target: Target) -> None:
    started = time.monotonic()
    try:
        result = target.run(with_env(check.run, passed_env(check.pass_env)), timeout=check.timeout)
    finally:
        if check.requests_to is not None:
            own_traffic.LEDGER.note(check.requests_to, time.monotonic() - started, sequential=True)
    evidence = {"command": check.run, "stdout": result.stdout[-4000:], "stderr": result.stderr[-4000:]}
    stdout = result.stdout.strip()
    if check.expect_exit is not None and result.rc != check.expect_exit:
        said = _short(result.stderr or result.stdout) or "no output"
        raise CheckFailed(
            f"`{check.run}` exits {check.expect_exit}",
            f"`{check.run}` exit {result.rc} != {check.expect_exit}: {said}",
            evidence,
            slow=check.times_answers,
        )
    if check.expect_stdout is not None and stdout != check.expect_stdout:
        raise CheckFailed(
            f"`{check.run}` prints {check.expect_stdout!r}",
            f"stdout {_short(stdout)!r} != {check.expect_stdout!r}",
            evidence,
            slow=check.times_answers,
        )
    if check.stdout_contains is not None and check.stdout_contains not in stdout:
        raise CheckFailed(
            f"`{check.run}` output contains {check.stdout_contains!r}",
            f"{check.stdout_contains!r} not in stdout {_short(stdout)!r}",
            evidence,
            slow=check.times_answers,
        )
