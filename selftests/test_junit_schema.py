"""junit.xml validates against the JUnit XSD that Jenkins and GitLab read (selftests/data/junit-10.xsd).

One run with every kind of testcase the suite writes: passed, failed (severity in the
message), skipped (a missing feature), waived (an xfail with the waiver as its message),
with captured output and logs in system-out/system-err, and the testsuite properties.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import xmlschema

from selftests.readers_kit import ReadersApp, serve_health

SCHEMA = Path(__file__).parent / "data" / "junit-10.xsd"


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(SCHEMA)


@pytest.fixture(scope="module")
def junit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    server = serve_health()
    app = ReadersApp(tmp_path_factory.mktemp("junit"), server.server_address[1]).write()
    app.break_("worker")
    app.break_("cache")
    expires = (datetime.now(UTC) + timedelta(days=3)).date()
    waivers = app.base / "waivers.yml"
    waivers.write_text(
        f"waivers:\n  - {{check: cache-warm, justification: migration, expires: {expires}}}\n",
        encoding="utf-8",
    )
    run = app.run(f"--waivers={waivers}", "-o", "junit_logging=all", "--log-level=DEBUG")
    server.shutdown()
    server.server_close()
    assert run.returncode == 1, run.output[-3000:]
    yield run.folder / "junit.xml"


@pytest.mark.slow
def test_junit_is_valid_for_jenkins_and_gitlab(schema: xmlschema.XMLSchema, junit: Path) -> None:
    schema.validate(junit)
    text = junit.read_text(encoding="utf-8")
    for element in (
        "<failure ",
        '<skipped type="pytest.xfail"',
        '<skipped type="pytest.skip"',
        "<system-err>",
    ):
        assert element in text, element
    assert '<property name="runbook.waivers" value="applied=1 expired=0 stale=0"' in text


def test_the_schema_bites(schema: xmlschema.XMLSchema, tmp_path: Path) -> None:
    """It is no rubber stamp: a testcase without a name, or an unknown element, is refused."""
    nameless = '<testsuites><testsuite name="s" tests="1"><testcase classname="c"/></testsuite></testsuites>'
    unknown = '<testsuite name="s" tests="1"><testcase name="t"><oops/></testcase></testsuite>'
    for document in (nameless, unknown):
        assert not schema.is_valid(document)
