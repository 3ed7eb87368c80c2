"""Size and write time of a run's reports for 1,000 to 5,000 checks; opening and filtering report.html.

Issue 21 goal 5: report.html of 5,000 checks under 5 MB and opening and filtering in Chromium in
under 2 s; summary.json and junit.xml written in linear time. Each row is the real run (`pytest`
with the plugin, a synthetic description of N `commands` checks on local://, every 10th failing
with its expected, found and remedy), one process per N. This module is also the run's plugin
(`-p bench_report_size`): it times each writer where it writes, report.html, junitxml's
file and the suite's summary.json, and hands the times back in a JSON file.

Then headless Chromium (the one selftests/test_reports.py uses) opens a copy of each report.html
with a probe script added: milliseconds from navigation to the load event with the table drawn and
laid out, and for one click on the "Passed" filter until the table is redrawn and laid out.

Last, summary.json's writer alone (`RunRecorder.write` of N synthetic records, median of 5, in a
child process of the suite): a single run's write times move with the machine's load.

    .venv/bin/python bench/bench_report_size.py [--counts 1000,2000,5000] [--keep] [--suite CHECKOUT]
    .venv/bin/python bench/bench_report_size.py --summary-only [--suite CHECKOUT]

--suite runs another checkout's runbook package and settings (a copy of main, to compare).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TIMES_ENV = "BENCH_REPORT_TIMES"
FAIL_EVERY = 10
HEADER = (
    "| checks | run wall s | report.html MB | write s | summary.json MB | write s | junit.xml MB | write s |"
)
PROBE = """<script>
window.addEventListener('load', () => {
  const all = () => document.querySelectorAll('#results-table > tbody.results-table-row');
  const shown = () => [...all()].filter((row) => row.offsetParent !== null).length;
  document.body.offsetHeight;
  const out = {loaded_ms: performance.now(), rows: all().length};
  const box = document.querySelector('input.filter[data-test-result="passed"]');
  let started = performance.now();
  box.click();  // hide the passed rows (show them, when the page opened with them folded)
  document.body.offsetHeight;
  out.filter_ms = performance.now() - started;
  out.rows_after_filter = shown();
  started = performance.now();
  box.click();  // and back
  document.body.offsetHeight;
  out.unfilter_ms = performance.now() - started;
  const pre = document.createElement('pre');
  pre.id = 'bench-result';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
"""


# -- the plugin side: runs inside the measured pytest ---------------------------------------


def _timed(owner: Any, name: str, label: str, times: dict[str, float]) -> None:
    original: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(original)  # keeps pluggy's hookimpl options of a hook method
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            times[label] = times.get(label, 0.0) + time.perf_counter() - started

    setattr(owner, name, wrapper)


if os.environ.get(TIMES_ENV) and __name__ != "__main__":
    from _pytest.junitxml import LogXML

    from runbook.report import html as runbook_html
    from runbook.report.summary import RunRecorder

    TIMES: dict[str, float] = {}
    if hasattr(runbook_html, "shrink_data"):  # an older checkout: pytest-html's page, then its rewrite
        from pytest_html.basereport import BaseReport

        _timed(BaseReport, "_generate_report", "report.html", TIMES)
        _timed(runbook_html, "shrink_data", "report.html", TIMES)
    else:  # the suite's own page, written from the records
        _timed(runbook_html.HtmlReport, "write", "report.html", TIMES)
    _timed(LogXML, "pytest_sessionfinish", "junit.xml", TIMES)
    _timed(RunRecorder, "write", "summary.json", TIMES)

    def pytest_unconfigure() -> None:
        Path(os.environ[TIMES_ENV]).write_text(json.dumps(TIMES), encoding="utf-8")


# -- the bench side -------------------------------------------------------------------------


PER_SYSTEM = 1000  # a description may be at most 1 MiB: 1,000 of these checks is about 330 KB


def description(system: str, first: int, count: int) -> str:
    lines = [f"system: {system}", "runbook: runbook.md", "hosts:", '  local: "local://"', "checks:"]
    lines.append("  commands:")
    for index in range(first, first + count):
        failing = index % FAIL_EVERY == FAIL_EVERY - 1
        lines += [
            f"    - id: check-{index:05d}",
            f"      title: service {index} answers PING with PONG",
            f"      run: echo {'PANG' if failing else 'PONG'}",
            "      expect_stdout: PONG",
            f"      severity: P{index % 4 + 1}",
            f'      section: "{index % 12 + 1}. Section of the runbook"',
            f"      remedy: docker exec service-{index} redis-cli ping, then restart service-{index}",
            "      markers: [daily]",
        ]
    return "\n".join(lines) + "\n"


def write_systems(
    folder: Path,
    count: int,
    describe: Callable[[str, int, int], str] = description,
    per_system: int = PER_SYSTEM,
    prefix: str = "bench-reports",
) -> Path:
    """N checks as descriptions of at most `per_system` checks each (PREFIX-1, -2, ...).

    `describe(system, first, count)` writes one description (bench_scaling gives its own: checks on
    real hosts instead of local://).
    """
    systems = folder / "systems"
    systems.mkdir()
    (systems / "runbook.md").write_text("# Bench runbook\n", encoding="utf-8")
    for number, first in enumerate(range(0, count, per_system), 1):
        text = describe(f"{prefix}-{number}", first, min(per_system, count - first))
        (systems / f"{prefix}-{number}.yml").write_text(text, encoding="utf-8")
    return systems


def run(count: int, base: Path, suite: Path) -> dict[str, Any]:
    folder = base / f"n{count}"
    folder.mkdir()
    systems = write_systems(folder, count)
    reports, times = folder / "reports", folder / "times.json"
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    env[TIMES_ENV] = str(times)
    env["PYTHONPATH"] = os.pathsep.join([str(suite), str(ROOT / "bench"), env.get("PYTHONPATH", "")])
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-m",
        "daily",
        "-q",
        "-p",
        "bench_report_size",
        f"--systems={systems}",
        f"--reports-dir={reports}",
    ]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=suite, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1) or not times.exists():
        said = done.stdout[-3000:] + done.stderr[-3000:]
        raise SystemExit(f"N={count}: pytest exit {done.returncode}\n{said}")
    run_folder = (reports / "latest").resolve()
    row: dict[str, Any] = {"checks": count, "wall": wall, "folder": run_folder}
    written = json.loads(times.read_text(encoding="utf-8"))
    for name in ("report.html", "summary.json", "junit.xml"):
        row[name] = ((run_folder / name).stat().st_size, written.get(name, float("nan")))
    return row


def open_in_chromium(report: Path, work: Path) -> dict[str, Any]:
    """The probe's numbers for a copy of the report, and the whole browser process's wall time."""
    page = work / f"probe-{report.parent.name}.html"
    text = report.read_text(encoding="utf-8")
    page.write_text(text.replace("</body>", PROBE + "</body>", 1), encoding="utf-8")
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={work / 'chromium-profile'}",
        "--dump-dom",
        page.as_uri(),
    ]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    wall = time.perf_counter() - started
    marker = '<pre id="bench-result">'
    if marker not in done.stdout:
        return {"error": (done.stderr or "no probe result")[-500:], "process_wall": wall}
    found = json.loads(done.stdout.split(marker, 1)[1].split("</pre>", 1)[0].replace("&quot;", '"'))
    return {**found, "process_wall": wall}


# Run in a child with the suite on its path: N records written by the suite's RunRecorder.
SUMMARY_CHILD = """
import json, statistics, sys, time, types
from pathlib import Path
from runbook.record import CheckRecord
from runbook.report.summary import RunRecorder, utc_now
result = {}
for count in json.loads(sys.argv[1]):
    recorder = RunRecorder.__new__(RunRecorder)
    recorder.config = types.SimpleNamespace(rootpath=Path("/tmp"), stash={}, getoption=lambda *a, **k: None)
    recorder.system_names, recorder.marker_expression, recorder.keyword_expression = ["bench"], "daily", None
    recorder.started, recorder.records = utc_now(), {}
    for index in range(count):
        failing = index % 10 == 9
        record = CheckRecord(
            system="bench", check_id=f"check-{index:05d}", kind="commands", title=f"service {index} answers",
            nodeid=f"tests_health/test_health.py::test_health[bench:check-{index:05d}]", host="local",
            severity="P2", section="3. Section", runbook="runbook.md § 3", runbook_path="/tmp/runbook.md",
            remedy="restart it", markers=["daily"], outcome="failed" if failing else "passed",
            message="m" * 80,
        )
        recorder.records[record.nodeid] = record
    times = []
    for _ in range(5):
        started = time.perf_counter()
        recorder.write(Path(sys.argv[2]), 1)
        times.append(time.perf_counter() - started)
    result[count] = statistics.median(times)
print(json.dumps(result))
"""


def summary_only(counts: list[int], suite: Path, base: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(suite)}
    command = [sys.executable, "-c", SUMMARY_CHILD, json.dumps(counts), str(base / "summary.json")]
    done = subprocess.run(command, cwd=suite, env=env, capture_output=True, text=True, check=True)
    found = json.loads(done.stdout)
    print("| checks | summary.json write ms (median of 5) | µs a check |")
    print("|---:|---:|---:|")
    for count in counts:
        seconds = found[str(count)]
        print(f"| {count:,} | {seconds * 1000:.0f} | {seconds / count * 1e6:.0f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="1000,2000,5000", help="numbers of checks, comma-separated")
    parser.add_argument("--keep", action="store_true", help="keep the reports (the folder is printed)")
    parser.add_argument(
        "--suite",
        type=Path,
        default=ROOT,
        help="the checkout whose runbook package and settings run (default: this one)",
    )
    parser.add_argument("--summary-only", action="store_true", help="only summary.json's writer, in process")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-reports-"))
    counts = [int(text) for text in args.counts.split(",")]
    if args.summary_only:
        summary_only(counts, args.suite.resolve(), base)
        shutil.rmtree(base, ignore_errors=True)
        return 0
    browser = Path(CHROMIUM).exists()
    print(f"suite {args.suite}; reports in {base}; chromium: {CHROMIUM if browser else 'not installed'}")
    print()
    print(HEADER)
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    for count in counts:
        row = run(count, base, args.suite.resolve())
        rows.append(row)
        cells = [f"{row['checks']:,}", f"{row['wall']:.1f}"]
        for name in ("report.html", "summary.json", "junit.xml"):
            size, seconds = row[name]
            cells += [f"{size / 1e6:.2f}", f"{seconds:.3f}"]
        print("| " + " | ".join(cells) + " |", flush=True)
    if browser:
        print()
        print(
            "| checks | rows | load event ms | Passed box, 1st click ms | rows shown after | 2nd click ms"
            " | chromium process s |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for row in rows:
            found = open_in_chromium(row["folder"] / "report.html", base)
            if "error" in found:
                print(f"| {row['checks']:,} | error: {found['error']} |")
                continue
            cells = [f"{row['checks']:,}", f"{found['rows']:,}", f"{found['loaded_ms']:.0f}"]
            cells += [f"{found['filter_ms']:.0f}", f"{found['rows_after_filter']:,}"]
            cells.append(f"{found['unfilter_ms']:.0f}" if "unfilter_ms" in found else "-")
            cells.append(f"{found['process_wall']:.2f}")
            print("| " + " | ".join(cells) + " |", flush=True)
    print()
    summary_only(counts, args.suite.resolve(), base)
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
