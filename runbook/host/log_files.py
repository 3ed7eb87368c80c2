"""Log files on the host (`grep -c ERROR /var/log/app.log*`), read where they lie.

`files` lists what a path names: a glob's matches, or a plain path with its rotated
siblings (`app.log.1`, `app.log.2.gz`, `app.log-20261206`), each with its mtime, leaving
out the files last written before the window (none of their lines can be in it).
`scan` reads them oldest first on the host (`.gz` ones through `gzip -dc`), grep keeps
the lines matching the pattern, and one awk after it reads each matching line's own
timestamp and keeps the count in the window and the last few lines: only those travel.

Timestamps read (in the line's first 100 characters): ISO 8601 (`2026-12-07 00:51:03`,
`2026-12-07T00:51:03.5Z`, `...+01:00`, Python logging's `,123`), nginx's
`[07/Dec/2026:00:51:03 +0000]` and syslog's `Dec  7 00:51:03` at the line's start. One
without a zone is the host's local time (its offset now; a DST change inside the window
shifts those lines by an hour), syslog's year is the host's current one (last year's
when that would put the line more than a day ahead). A matching line without a
timestamp the scan can read is counted as in the window, and said apart.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from runbook.errors import CheckError
from runbook.host.target import Target

WILDCARDS = frozenset("*?[")
MAX_FILES = 100
LINE_CHARS = 1000

# find's -printf format: readable or not, mtime, size, path; NUL-separated.
FIND_FORMAT = r"%T@ %s %p\0"
LIST = (
    'dir=%s; name=%s; fmt=%s; date +%%s; find -L "$dir" -maxdepth 1 -type f \\( {names} \\) '
    '\\( -readable -printf "r $fmt" -o -printf "u $fmt" \\)'
)

STAMP_PROGRAM = r"""
function days(y, m, d,   era, yoe, doy) {
  y -= (m <= 2); era = int((y >= 0 ? y : y - 399) / 400); yoe = y - era * 400
  doy = int((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5) + d - 1
  return era * 146097 + yoe * 365 + int(yoe / 4) - int(yoe / 100) + doy - 719468
}
function two(s, i) { return substr(s, i, 2) + 0 }
function zoned(s, i) {
  return (two(s, i + 1) * 3600 + substr(s, length(s) - 1, 2) * 60) * (substr(s, i, 1) == "-" ? -1 : 1)
}
function stamp(line,   head, p, y, m, d, t, rest, off) {
  head = substr(line, 1, 100)
  if (match(head, /[0-9][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9][T ][0-2][0-9]:[0-5][0-9]:[0-6][0-9]/)) {
    p = RSTART; y = substr(head, p, 4) + 0; m = two(head, p + 5); d = two(head, p + 8)
    t = two(head, p + 11) * 3600 + two(head, p + 14) * 60 + two(head, p + 17)
    rest = substr(head, p + 19); off = localoff
    if (match(rest, /^[.,][0-9]+/)) rest = substr(rest, RLENGTH + 1)
    if (substr(rest, 1, 1) == "Z") off = 0
    else if (match(rest, /^ ?[+-][0-2][0-9]:?[0-5][0-9]/)) {
      rest = substr(rest, RSTART, RLENGTH); sub(/^ /, "", rest); off = zoned(rest, 1)
    }
    return days(y, m, d) * 86400 + t - off
  }
  if (match(head, nginx)) {
    p = RSTART; m = month[substr(head, p + 3, 3)]
    if (m) {
      t = two(head, p + 12) * 3600 + two(head, p + 15) * 60 + two(head, p + 18)
      return days(substr(head, p + 7, 4) + 0, m, two(head, p)) * 86400 + t - zoned(substr(head, p + 21, 5), 1)
    }
  }
  if (match(head, /^[A-Z][a-z][a-z] [ 0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-6][0-9]/)) {
    m = month[substr(head, 1, 3)]
    if (m) {
      d = substr(head, 5, 2) + 0; t = two(head, 8) * 3600 + two(head, 11) * 60 + two(head, 14) - localoff
      p = days(year, m, d) * 86400 + t
      if (p > now + 86400) p = days(year - 1, m, d) * 86400 + t
      return p
    }
  }
  return -1
}
BEGIN {
  split("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec", names, " ")
  for (i = 1; i <= 12; i++) month[names[i]] = i
  localoff = zoned(zone, 1)
  nginx = "[0-3][0-9]/[A-Z][a-z][a-z]/[0-9][0-9][0-9][0-9]:"
  nginx = nginx "[0-2][0-9]:[0-5][0-9]:[0-6][0-9] [+-][0-9][0-9][0-9][0-9]"
}
{
  if (window > 0) {
    t = stamp($0)
    if (t < 0) untimed++
    else if (t < now - window) next
  }
  c++
  if (n > 0) last[c % n] = substr($0, 1, width)
}
END {
  print c + 0, untimed + 0
  s = c - n + 1; if (s < 1) s = 1
  for (i = s; i <= c; i++) print last[i % n]
}
"""

READ_AND_SCAN = (
    "now=$(date +%%s); zone=$(date +%%z); year=$(date +%%Y); pattern=%s; "
    'for f in {files}; do case "$f" in *.gz) gzip -dc -- "$f" ;; *) cat -- "$f" ;; esac; done '
    '| grep -a -i -E -e "$pattern" '
    '| awk -v n=%s -v window=%s -v width=%s -v now="$now" -v zone="$zone" -v year="$year" %s'
)


@dataclass(frozen=True)
class LogFile:
    path: str
    mtime: float
    size: int


@dataclass(frozen=True)
class Listing:
    files: list[LogFile]  # to read, oldest first
    older: int  # files left out: last written before the window
    unreadable: list[str]


@dataclass(frozen=True)
class Scan:
    count: int  # matching lines in the window (untimed ones included)
    untimed: int  # of them, lines without a timestamp the scan reads
    last: str  # the last matching lines, newest last


def has_wildcards(path: str) -> bool:
    return any(char in WILDCARDS for char in path)


def files(target: Target, path: str, since_seconds: float | None) -> Listing:
    """The files `path` names on the host (a glob, or a file and its rotated siblings)."""
    directory, name = posixpath.split(path)
    names = '-name "$name"'
    if not has_wildcards(name):
        # app.log, app.log.1, app.log.2.gz, app.log-20261206(.gz): logrotate's names.
        names += ' -o -name "$name.[0-9]*" -o -name "$name-[0-9]*"'
    result = target.run(LIST.format(names=names), directory or "/", name, FIND_FORMAT)
    now_text, _, listed = result.stdout.partition("\n")
    if not now_text.strip().isdigit():
        raise CheckError(f"listing {path}: {result.stderr.strip()[:300] or f'exit {result.rc}'}")
    now = int(now_text)
    found: list[LogFile] = []
    unreadable: list[str] = []
    older = 0
    for entry in listed.split("\0"):
        parts = entry.split(" ", 3)
        if len(parts) != 4:
            continue
        state, mtime, size, file_path = parts
        if state == "u":
            unreadable.append(file_path)
        elif since_seconds and float(mtime) < now - since_seconds:
            older += 1
        else:
            found.append(LogFile(file_path, float(mtime), int(size)))
    found.sort(key=lambda log: (log.mtime, log.path))
    if len(found) > MAX_FILES:
        older += len(found) - MAX_FILES
        found = found[-MAX_FILES:]
    return Listing(found, older, sorted(unreadable))


def scan(target: Target, logs: list[LogFile], pattern: str, since_seconds: float | None, keep: int) -> Scan:
    """Matching lines of `logs` (oldest first) in the window by their own timestamps."""
    template = READ_AND_SCAN.format(files=" ".join(["%s"] * len(logs)))
    window = str(int(since_seconds)) if since_seconds else "0"
    result = target.run(
        template,
        pattern,
        *(log.path for log in logs),
        str(keep),
        window,
        str(LINE_CHARS),
        STAMP_PROGRAM,
    )
    first, _, rest = result.stdout.partition("\n")
    counts = first.split()
    if result.rc != 0 or len(counts) != 2 or not all(part.isdigit() for part in counts):
        raise CheckError(f"reading {', '.join(log.path for log in logs)}: {result.stderr.strip()[:300]}")
    if result.stderr.strip():
        # cat or gzip could not read one (a file rotated away meanwhile, a corrupt .gz).
        raise CheckError(f"reading log files: {result.stderr.strip()[:300]}")
    return Scan(int(counts[0]), int(counts[1]), rest.rstrip("\n"))


def last_lines(target: Target, path: str, pattern: str, *, tail: int, keep: int) -> str:
    """The last `keep` lines matching `pattern` among the file's last `tail` lines ('' if none)."""
    result = target.run(
        "tail -n %s -- %s | grep -a -i -E -e %s | tail -n %s | cut -c 1-%s",
        str(tail),
        path,
        pattern,
        str(keep),
        str(LINE_CHARS),
    )
    if result.stderr.strip():
        raise CheckError(f"reading {path}: {result.stderr.strip()[:300]}")
    return result.stdout.rstrip("\n")
