"""Join the reports of N shards (`pytest --shard K/N`, one CI job each) into one run's reports.

    python -m runbook.merge OUT_DIR SHARD_DIR [SHARD_DIR ...]

Each SHARD_DIR is a run folder (summary.json, junit.xml). A shard whose report is not there (its
job timed out or was cancelled before writing it, its artifacts were lost) is missing, not an
error: the others are merged and every output names it, by its folder (a SHARD_DIR without a
summary.json) and by its number (each summary.json says the `--shard K/N` it ran; a K of N that
none says is missing, so a CI job that passes only the folders it got still sees it). OUT_DIR gets:
- summary.json: every shard's checks, counts and failures by severity recomputed, the run
  from the first start to the last finish, exit status the worst of the shards;
- junit.xml: one <testsuites> with each shard's <testsuite> as it was (messages unchanged,
  severity and section still first), so CI UIs show one report;
- report.html: one self-contained table, failures first by severity (plain: a shard's records
  are its summary.json, without the run's history, waivers or environment).
A check id found in two shards is refused: the split must be a partition.
Exit status: 0 when the merged run passed, 1 when a check failed, 2 when a shard is missing (the
run did not finish, as pytest's 2; the reports are written) or the input is unusable (nothing is).
"""

from __future__ import annotations

import html
import json
import os
import re
import stat
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

from runbook.readers.safe_files import replacing, write_file
from runbook.record import OUTCOMES, SEVERITIES, summary_text

FORMAT = "runbook-summary/1"
FAILED = {"failed", "error"}
SHARD = re.compile(r"^(\d+)/(\d+)$")
INCOMPLETE = 2  # pytest's "interrupted": the run did not finish


class MergeError(Exception):
    """A shard folder that cannot be merged (missing files, overlapping shards)."""


# A shard's summary of 100,000 checks is far below this; a bigger "summary" is not one.
MAX_SHARD_FILE = 512 << 20


def read_file(path: Path) -> bytes:
    """A regular file's bytes, bounded: a FIFO or a device in a shard folder never blocks."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with open(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise MergeError(f"{path}: not a regular file")
            data = handle.read(MAX_SHARD_FILE + 1)
    except OSError as exc:
        raise MergeError(f"{path}: {exc.strerror or exc}") from None
    if len(data) > MAX_SHARD_FILE:
        raise MergeError(f"{path}: larger than {MAX_SHARD_FILE >> 20} MiB")
    return data


def read_summary(folder: Path) -> dict[str, Any]:
    path = folder / "summary.json"
    try:
        document = json.loads(read_file(path))
    except (ValueError, RecursionError) as exc:
        raise MergeError(f"{path}: not JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise MergeError(f"{path}: not a {FORMAT} summary")
    problem = _shape_problem(document)
    if problem:
        raise MergeError(f"{path}: {problem}")
    return document


def _shape_problem(document: dict[str, Any]) -> str | None:
    """What a summary lacks that merging reads (a truncated or edited file), or None."""
    run, checks = document.get("run"), document.get("checks")
    if not isinstance(run, dict) or not all(isinstance(run.get(key), str) for key in ("started", "finished")):
        return "run: needs started and finished times"
    if not isinstance(run.get("duration", 0), int | float) or not isinstance(run.get("systems", []), list):
        return "run: duration is not a number or systems not a list"
    if not isinstance(checks, list):
        return "checks: not a list"
    for index, check in enumerate(checks):
        if not isinstance(check, dict) or check.get("outcome") not in OUTCOMES:
            return f"checks[{index}]: not a check with an outcome ({', '.join(OUTCOMES)})"
        if not isinstance(check.get("id") or check.get("nodeid"), str):
            return f"checks[{index}]: no id"
    return None


def missing_shards(documents: list[dict[str, Any]], absent: list[str]) -> list[str]:
    """One line per shard that is not there: folders without a report, numbers no report claims."""
    lines = [f"{folder}: no summary.json (its job timed out or its report was lost)" for folder in absent]
    claimed = [SHARD.match(str(document["run"].get("shard") or "")) for document in documents]
    numbers = {(int(match.group(1)), int(match.group(2))) for match in claimed if match}
    for total in sorted({total for _, total in numbers}):
        unseen = [index for index in range(1, total + 1) if (index, total) not in numbers]
        lines += [f"shard {index}/{total}: no report among the folders" for index in unseen]
    return lines


def merge_summaries(
    documents: list[dict[str, Any]], names: list[str], missing: list[str] | None = None
) -> dict[str, Any]:
    checks: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for document, name in zip(documents, names, strict=True):
        for check in document["checks"]:
            key = check.get("id") or check.get("nodeid")
            if key in seen:
                raise MergeError(f"{key} is in two shards ({seen[key]} and {name}): shards must not overlap")
            seen[key] = name
            checks.append(check)
    runs = [document["run"] for document in documents]
    counts = dict.fromkeys(OUTCOMES, 0)
    counts.update(Counter(check["outcome"] for check in checks))
    by_severity = dict.fromkeys(SEVERITIES, 0)
    for check in checks:
        if check["outcome"] in FAILED:
            severity = check.get("severity") or "unrated"
            by_severity[severity] = by_severity.get(severity, 0) + 1
    statuses = [run.get("exit_status") for run in runs if run.get("exit_status") is not None]
    statuses += [INCOMPLETE] if missing else []
    systems = sorted({system for run in runs for system in run.get("systems", [])})
    started = min((run["started"] for run in runs), default=None)
    finished = max((run["finished"] for run in runs), default=None)
    header = {
        "started": started,
        "finished": finished,
        "duration": max((run.get("duration", 0) for run in runs), default=0),
        "marker_expression": runs[0].get("marker_expression") if runs else None,
        "keyword_expression": runs[0].get("keyword_expression") if runs else None,
        "systems": systems,
        "exit_status": max(statuses) if statuses else None,
        "counts": counts,
        "failures_by_severity": by_severity,
        "shards": [{"folder": name, **run} for name, run in zip(names, runs, strict=True)],
        "missing_shards": list(missing or []),
    }
    return {"format": FORMAT, "run": header, "checks": checks}


def merge_junit(folders: list[Path], missing: list[str] | None = None) -> ET.Element:
    merged = ET.Element("testsuites", {"name": "runbook (merged shards)"})
    for index, folder in enumerate(folders, 1):
        path = folder / "junit.xml"
        try:
            root = ET.fromstring(read_file(path))
        except ET.ParseError as exc:
            raise MergeError(f"{path}: {exc}") from None
        suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
        for suite in suites:
            suite.set("name", f"{suite.get('name', 'pytest')} (shard {index} of {len(folders)})")
            merged.append(suite)
    if missing:  # CI test views show an error, not a green run with fewer tests
        counts = {"tests": str(len(missing)), "failures": "0", "errors": str(len(missing)), "skipped": "0"}
        suite = ET.SubElement(merged, "testsuite", {"name": "runbook.merge (missing shards)", **counts})
        for line in missing:
            name = line.split(":")[0]
            case = ET.SubElement(suite, "testcase", {"classname": "runbook.merge", "name": name})
            ET.SubElement(case, "error", {"message": f"shard missing: {line}"})
    totals = Counter[str]()
    for suite in merged:
        for key in ("tests", "failures", "errors", "skipped"):
            count = suite.get(key, "0")
            if not count.isdigit():
                raise MergeError(f"a shard's <testsuite {key}={count!r}> is not a count")
            totals[key] += int(count)
    for key, value in totals.items():
        merged.set(key, str(value))
    return merged


def render_html(document: dict[str, Any]) -> str:
    order = {severity: rank for rank, severity in enumerate(SEVERITIES)}
    checks = sorted(
        document["checks"],
        key=lambda check: (check["outcome"] not in FAILED, order.get(check.get("severity") or "", 9)),
    )
    run = document["run"]
    counts = ", ".join(f"{count} {outcome}" for outcome, count in run["counts"].items() if count)
    rows = []
    for check in checks:
        details = ""
        if check["outcome"] in FAILED:
            parts = [f"<b>{label}:</b> {html.escape(str(check.get(key) or ''))}" for label, key in DETAILS]
            details = "<br>".join(parts)
        cells = [
            check.get("system") or "",
            check.get("id") or check.get("nodeid") or "",
            check.get("severity") or "",
            check.get("section") or "",
            check["outcome"],
            check.get("message") or "",
        ]
        row = "".join(f"<td>{html.escape(str(cell))}</td>" for cell in cells)
        rows.append(f'<tr class="{check["outcome"]}">{row}<td>{details}</td></tr>')
    lines = run.get("missing_shards", [])
    missing = "".join(f'<p class="missing">Shard missing: {html.escape(line)}</p>\n' for line in lines)
    return PAGE.format(
        title=html.escape(f"runbook: {', '.join(run['systems'])}, {len(run['shards'])} shards"),
        summary=html.escape(f"{run['started']} to {run['finished']}: {counts}"),
        missing=missing,
        rows="\n".join(rows),
    )


DETAILS = (("expected", "expected"), ("found", "found"), ("remedy", "remedy"))
PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px;vertical-align:top}}
tr.failed,tr.error{{background:#fdd}} tr.skipped{{color:#777}}
p.missing{{background:#fdd;font-weight:bold}}</style></head>
<body><h1>{title}</h1><p>{summary}</p>
{missing}<table><tr><th>System</th><th>Check</th><th>Severity</th><th>Runbook section</th><th>Outcome</th>
<th>Message</th><th>Expected / found / remedy</th></tr>
{rows}
</table></body></html>
"""


def merge(out: Path, folders: list[Path]) -> dict[str, Any]:
    present = [folder for folder in folders if (folder / "summary.json").exists()]
    absent = [str(folder) for folder in folders if folder not in present]
    documents = [read_summary(folder) for folder in present]
    missing = missing_shards(documents, absent)
    document = merge_summaries(documents, [str(folder) for folder in present], missing)
    out.mkdir(parents=True, exist_ok=True)
    write_file(out / "summary.json", summary_text(document))
    with replacing(out / "junit.xml") as junit:
        ET.ElementTree(merge_junit(present, missing)).write(junit, encoding="utf-8", xml_declaration=True)
    write_file(out / "report.html", render_html(document))
    return document


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        document = merge(Path(args[0]), [Path(arg) for arg in args[1:]])
    except MergeError as exc:
        print(f"runbook.merge: {exc}", file=sys.stderr)
        return 2
    run = document["run"]
    print(f"merged {len(run['shards'])} shards into {args[0]}: {run['counts']}")
    for line in run["missing_shards"]:
        print(f"runbook.merge: shard missing: {line}", file=sys.stderr)
    if run["missing_shards"]:
        return INCOMPLETE
    return 1 if any(check["outcome"] in FAILED for check in document["checks"]) else 0


if __name__ == "__main__":
    sys.exit(main())
