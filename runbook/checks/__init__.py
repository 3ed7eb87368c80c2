"""One module per check kind: its model (a `CheckBase` subclass) and `verify(check, target)`.

Defining the model registers the kind (`runbook.describe.kinds`), so a new kind is a new
file here and its selftests: descriptions accept it under `checks:` and the
test of its group (tests_health/, tests_backup/, tests_config/) runs it.
`verify` reads the host through the Target seam and raises CheckFailed with
resolved values (what was expected, what was found). Severity, section and
remedy are added by the plugin (runbook.run.verdict), so these modules only state facts.
"""
