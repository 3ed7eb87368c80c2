"""One module per check kind; each exposes `verify(check, target)`.

`verify` reads the host through the Target seam and raises CheckFailed with
resolved values (what was expected, what was found). Severity, section and
remedy are added by the plugin (runbook.verdict), so these modules only state facts.
"""
