"""A dotenv file defines the keys the service needs, with real values.

The file is parsed on the host by awk, which prints only each key's state
(set / empty / placeholder): the values, which are the system's secrets, never
travel to the runner, so they cannot end up in a report.
"""

from __future__ import annotations

from runbook.hosts import Target
from runbook.outcome import CheckError, CheckFailed
from runbook.schema import EnvFileCheck

from .containers import require_running

# Later lines win, as in docker compose's env_file; `export KEY=` and quotes allowed.
AWK_PROGRAM = r"""
BEGIN { n = split(keys, k, " "); for (i = 1; i <= n; i++) want[k[i]] = 1 }
{
  line = $0
  sub(/^[ \t]*export[ \t]+/, "", line)
  if (line ~ /^[ \t]*#/ || index(line, "=") == 0) next
  key = substr(line, 1, index(line, "=") - 1)
  gsub(/[ \t]/, "", key)
  if (!(key in want)) next
  val = substr(line, index(line, "=") + 1)
  gsub(/^[ \t]+|[ \t\r]+$/, "", val)
  q = substr(val, 1, 1)
  if (length(val) >= 2 && (q == "\"" || q == "'") && substr(val, length(val), 1) == q)
    val = substr(val, 2, length(val) - 2)
  if (val == "") state = "empty"
  else if (tolower(val) ~ ph) state = "placeholder"
  else state = "set"
  print key, state
}
"""


def verify(check: EnvFileCheck, target: Target) -> None:
    keys = " ".join(check.required)
    awk = "awk -v keys=%s -v ph=%s %s %s"
    # awk expands escapes in -v values, so the regex's backslashes are doubled.
    args = (keys, check.placeholder_pattern.replace("\\", "\\\\"), AWK_PROGRAM, check.path)
    if check.container:
        require_running(target, check.container)
        result = target.run("docker exec %s " + awk, check.container, *args)
    else:
        result = target.run(awk, *args)
    if result.rc != 0:
        said = result.stderr.strip()[:300]
        if "No such file" in said or "can't open" in said or "cannot open" in said:
            raise CheckFailed(f"{check.path} exists", f"{check.path} does not exist")
        raise CheckError(f"cannot read {check.path}: {said or f'exit {result.rc}'}")
    states: dict[str, str] = {}
    for line in result.stdout.splitlines():
        key, _, state = line.partition(" ")
        states[key] = state.strip()
    problems = []
    for key in check.required:
        state = states.get(key, "missing")
        if state != "set":
            problems.append(f"{key} {'is ' if state != 'missing' else ''}{state}")
    if problems:
        raise CheckFailed(
            f"{check.path} defines {', '.join(check.required)} with real values",
            f"{check.path}: " + "; ".join(problems) + " (values not shown)",
        )
