"""The project's pytest settings, found as pytest finds them, for commands run outside pytest.

Why: `python -m runbook history` and `incident` must read the same reports folder the runs
wrote to. pytest takes it from the first settings file up from where it starts (pytest.ini,
.pytest.ini, pyproject.toml's [tool.pytest.ini_options], tox.ini's [pytest], setup.cfg's
[tool:pytest]); a relative value is relative to that file's folder (the rootdir).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import iniconfig

# (file name, section): pytest's order within one folder
SETTINGS_FILES = (
    ("pytest.ini", "pytest"),
    (".pytest.ini", "pytest"),
    ("pyproject.toml", "tool.pytest.ini_options"),
    ("tox.ini", "pytest"),
    ("setup.cfg", "tool:pytest"),
)


@dataclass(frozen=True)
class Settings:
    """One settings file's pytest section: its values and the folder they are relative to."""

    rootdir: Path
    values: dict[str, str]

    def path(self, name: str, default: str) -> Path:
        """A folder setting: its value (or `default`) relative to the rootdir."""
        return self.rootdir / Path(self.values.get(name) or default).expanduser()


def find_settings(start: Path) -> Settings | None:
    """The first folder from `start` up that holds pytest settings, read as pytest reads them."""
    for folder in (start.resolve(), *start.resolve().parents):
        for name, section in SETTINGS_FILES:
            found = _read(folder / name, section)
            if found is not None:
                return Settings(folder, found)
    return None


def _read(path: Path, section: str) -> dict[str, str] | None:
    if not path.is_file():
        return None
    try:
        if path.suffix == ".toml":
            table = tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {}).get("pytest", {})
            options = table.get("ini_options") if isinstance(table, dict) else None
            return {k: str(v) for k, v in options.items()} if isinstance(options, dict) else None
        parsed = iniconfig.IniConfig(str(path))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, iniconfig.ParseError):
        return None
    if section not in parsed:
        return {} if path.name in {"pytest.ini", ".pytest.ini"} else None  # pytest.ini counts even empty
    return dict(parsed[section].items())


def reports_folder(option: str | None, start: Path) -> Path:
    """--reports-dir as given (relative to here), else the settings' runbook_reports_dir, else ./reports."""
    if option:
        return Path(option).expanduser()
    settings = find_settings(start)
    return settings.path("runbook_reports_dir", "reports") if settings else Path("reports")
