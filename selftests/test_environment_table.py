"""The HTML report's environment table (runbook.report.environment): no credentials in it."""

from __future__ import annotations

from typing import Any

from runbook.report.environment import clean_metadata
from runbook.secrets import SECRETS
from runbook.secrets.scrub import scrub

GIT_TOKEN = "glpat-Otter-Maple-4410"
JOB_TOKEN = "cjt-Heron-Basalt-7782"


def test_url_passwords_and_token_users_are_scrubbed() -> None:
    assert (
        scrub(f"https://ci-bot:{GIT_TOKEN}@git.example.com/x.git")
        == "https://ci-bot:***@git.example.com/x.git"
    )
    assert scrub(f"https://{GIT_TOKEN}@github.com/org/x.git") == "https://***@github.com/org/x.git"
    assert scrub("git@github.com:org/x.git") == "git@github.com:org/x.git"
    assert scrub("ssh://deploy@api.example.com") == "ssh://deploy@api.example.com"
    assert scrub("https://ci.example.com/job/7/") == "https://ci.example.com/job/7/"


def test_ci_variables_lose_their_credentials() -> None:
    SECRETS.add_from_environment({"CI_JOB_TOKEN": JOB_TOKEN})
    metadata: dict[str, Any] = {
        "GIT_URL": f"https://ci-bot:{GIT_TOKEN}@git.example.com/x.git",
        "CI_JOB_TOKEN": JOB_TOKEN,
        "CI_PROJECT_URL": f"https://gitlab.example.com/x?job={JOB_TOKEN}",
        "BUILD_URL": "https://ci.example.com/job/7/",
        "Plugins": {"html": "4.2.0", "SECRET_PLUGIN_KEY": "x"},
        "Note": "<b>deployed</b>",
    }
    clean_metadata(metadata)
    assert metadata == {
        "GIT_URL": "https://ci-bot:***@git.example.com/x.git",
        "CI_PROJECT_URL": "https://gitlab.example.com/x?job=***",
        "BUILD_URL": "https://ci.example.com/job/7/",
        "Plugins": {"html": "4.2.0"},
        "Note": "<b>deployed</b>",  # text: report.html escapes it
    }
