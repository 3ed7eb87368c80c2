"""Data the package reads at run time ships with it, and the report's templates escape what hosts print.

report.html's markup (runbook/report/templates/*.html.j2) and the project `python -m runbook init` writes
(runbook/cli/templates/) are files beside the code: a wheel without them imports
nothing. Every such file must be matched by pyproject.toml's package-data. The templates render
with autoescaping, so a title or a found value holding markup stays text, on one line, masked.
"""

from __future__ import annotations

import tomllib
from pathlib import Path, PurePosixPath

from runbook.report import html
from runbook.secrets import SECRETS

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = "<script>alert(\"x\")</script> & 'q'\nsecond line"
ESCAPED = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#39;q&#39; second line"


def test_every_data_file_of_runbook_is_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["runbook"]
    package = ROOT / "runbook"
    data = [
        path.relative_to(package).as_posix()
        for path in package.rglob("*")
        if path.is_file() and path.suffix not in {".py", ".pyc"} and "__pycache__" not in path.parts
    ]
    assert "report/templates/table.html.j2" in data
    assert "cli/templates/description.yml.tmpl" in data
    assert "cli/templates/project/tests_health/test_health.py.tmpl" in data
    for name in data:
        assert any(PurePosixPath(name).match(pattern) for pattern in patterns), name


def test_templates_escape_mask_and_keep_cells_on_one_line() -> None:
    assert html._templates.autoescape is True
    SECRETS.add("Lantern-Secret-4411", "TOKEN")
    value = f"{HOSTILE} Lantern-Secret-4411"
    cells = [
        str(html.TABLE.system(value)),
        str(html.TABLE.check(value, value, " (setup)")),
        str(html.TABLE.severity(value)),
        str(html.TABLE.runbook(value, "a%20b.md", value, value)),
        str(html.TABLE.custom_check(value, "", value)),
        str(html.TABLE.note(value, skip=True)),
    ]
    for cell in cells:
        assert "\n" not in cell, cell
        assert "<script>" not in cell and "Lantern-Secret-4411" not in cell, cell
        assert f"{ESCAPED} ***" in cell, cell
    detail = html.DETAIL.render(
        expected=value, found=value, remedy=value, runbook=value, href=None, source=value, host=value,
        evidence=[("stdout", value, 2, None)], waiver=value,
    )  # fmt: skip
    assert "<script>" not in detail and "&lt;script&gt;" in detail
