"""Project-level pytest configuration for the runbook checks.

The runbook plugin itself (options, markers, parametrization from systems/*.yml,
reports) is the `runbook` package, registered through the `pytest11` entry point
in pyproject.toml, so `pip install -e .` is all it needs. This file is the place
for site-specific fixtures of custom checks: plain pytest tests that use the
plugin's fixtures `runbook_targets(system, host)` and `runbook_systems`, e.g.

    def test_release_tag(runbook_targets):
        server = runbook_targets("ai-calendar-assistant")
        result = server.run("cat /root/ai-calendar-assistant/ai-calendar-assistant/VERSION")
        require(result.ok, "a VERSION file", result.stderr)
"""
