"""Reading descriptions (runbook.describe.loader): the real files, overlays, ${ENV}, error messages."""

from __future__ import annotations

import copy
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from runbook.describe.loader import DescriptionError, load_file, load_systems, merge, resolve_chain
from runbook.secrets import SECRETS

REPO = Path(__file__).resolve().parent.parent
PRODUCTION = REPO / "systems" / "ai-calendar-assistant.yml"
# Every production description, each with its lab overlay of the same name.
PRODUCTION_FILES = sorted((REPO / "systems").glob("*.yml"))
LAB = REPO / "systems" / "lab" / "ai-calendar-assistant.yml"
PASSPHRASE_VAR = "CALENDAR_BACKUP_PASSPHRASE"

COMMON: dict[str, Any] = {"title": "a check", "severity": "P2", "section": "4.", "remedy": "fix it"}


def base_description() -> dict[str, Any]:
    """A small valid description with the shapes the error paths need."""
    backup = {**COMMON, "directory": "/root/backups"}
    return {
        "system": "demo",
        "runbook": "runbook.md",
        "hosts": {"server": "local://"},
        "checks": {
            "backups": [
                {**backup, "id": "backup-fresh", "max_age_hours": 25},
                {**backup, "id": "backup-size", "min_bytes": 1000},
            ],
            "logs": [{**COMMON, "id": "errors", "container": "bot", "pattern": "error", "max_matches": 10}],
            "http": [
                {
                    **COMMON,
                    "id": "health",
                    "url": "http://localhost:8000/health",
                    "expect_json": {"status": "healthy", "db": "ok"},
                }
            ],
        },
    }


def write(path: Path, data: dict[str, Any] | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def flatten(node: Any, where: str = "") -> dict[str, Any]:
    """{'checks.http[0].url': ..., ...}: every leaf of a dumped model by its field path."""
    if isinstance(node, dict):
        leaves: dict[str, Any] = {}
        for key, value in node.items():
            leaves.update(flatten(value, f"{where}.{key}" if where else key))
        return leaves if node else {where: {}}
    if isinstance(node, list) and node and all(isinstance(item, dict) for item in node):
        leaves = {}
        for index, value in enumerate(node):
            leaves.update(flatten(value, f"{where}[{index}]"))
        return leaves
    return {where: node}


# -- the real descriptions ----------------------------------------------------------------


# What the calendar's production file leaves to the site (its lab overlay gives the same).
SITE = {
    "max_errors_24h": "10",
    "monitoring": "true",
    "symptom_window": "24h",
    "crash_window": "24h",
}


def test_production_description_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSPHRASE_VAR, raising=False)
    loaded = load_file(PRODUCTION, SITE)
    model = loaded.model
    assert loaded.name == "ai-calendar-assistant"
    assert loaded.chain == (PRODUCTION.resolve(),)
    assert model.hosts == {"server": "ssh://root@calendar.example.com"}
    assert loaded.runbook_path == (REPO.parent / "shared" / "runbooks" / "ai-calendar-assistant.md").resolve()
    # Backups may be encrypted or not ("если зашифрован"): the passphrase is read only for a .gpg.
    assert loaded.missing_env == {}
    ids = [check.id for check in model.checks.all()]
    assert len(ids) == len(set(ids))
    for kind in ("containers", "instances", "http", "resources", "logs", "commands", "tcp"):
        assert getattr(model.checks, kind), f"no {kind} checks"
    for kind in ("backups", "cron", "files", "env_files"):
        assert getattr(model.checks, kind), f"no {kind} checks"


def test_production_needs_the_sites_limit_windows_and_monitoring() -> None:
    """What the runbook leaves to the site has no default: the error limit, whether the monitoring
    stack is deployed ("если развернут"), the symptoms' log window and the crash window."""
    for name in SITE:
        with pytest.raises(DescriptionError, match=rf"uses \{{{name}\}}.*which ha(s|ve) no value"):
            load_file(PRODUCTION, {key: value for key, value in SITE.items() if key != name})
    model = load_file(PRODUCTION, {**SITE, "max_errors_24h": "5", "monitoring": "false"}).model
    assert model.features == {"monitoring": False}
    assert next(check for check in model.checks.logs if check.id == "bot-errors").max_matches == 5
    logs = {check.id: check for check in model.checks.logs}
    assert logs["bot-db-locked"].since == "start"
    assert {
        logs[name].since for name in ("bot-redis-errors", "bot-radicale-refused", "bot-yandexgpt-errors")
    } == {86400.0}


def test_production_anchors_fill_the_checks_that_reuse_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSPHRASE_VAR, raising=False)
    checks = {check.id: check for check in load_file(PRODUCTION, SITE).model.checks.all()}
    # `<<: *usage` copies severity/section/remedy, overrides id, title and container.
    assert checks["radicale-memory-usage"].severity == "P3"
    assert checks["radicale-memory-usage"].container == "radicale-calendar"  # type: ignore[attr-defined]
    assert checks["radicale-memory-usage"].section == checks["bot-memory-usage"].section
    # `x-restart` is an anchor-only key: its fields reach the checks, the key itself is dropped.
    assert checks["redis-no-crash"].section == "3.7 Контейнер перезапускается в цикле"
    # backup-size nulls the inherited max_age_hours so it asserts one fact.
    assert checks["backup-size"].aspect == "min_bytes"
    assert checks["backup-integrity"].aspect == "integrity"


def test_passphrase_is_named_not_interpolated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_VAR, "lab-passphrase-7f3e")
    loaded = load_file(PRODUCTION, SITE)
    assert loaded.missing_env == {}
    integrity = next(check for check in loaded.model.checks.backups if check.id == "backup-integrity")
    assert (integrity.gpg_passphrase, integrity.gpg_passphrase_env) == (None, PASSPHRASE_VAR)


def test_lab_overlay_loads_on_top_of_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSPHRASE_VAR, raising=False)
    lab = load_file(LAB)
    assert lab.chain == (LAB.resolve(), PRODUCTION.resolve())
    assert lab.model.hosts["server"].startswith("ssh+persist://root@198.18.0.2")
    assert lab.model.features == {"monitoring": True}
    # The runbook path is resolved against the file that named it, not the overlay.
    assert lab.runbook_path == load_file(PRODUCTION, SITE).runbook_path
    assert lab.missing_env == {}


def test_lab_overlay_changes_only_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the site's parameters given, production and lab are the same file but for the host."""
    monkeypatch.delenv(PASSPHRASE_VAR, raising=False)
    production = flatten(load_file(PRODUCTION, SITE).model.model_dump())
    lab = flatten(load_file(LAB).model.model_dump())
    assert set(production) == set(lab), "the overlay added or removed fields or checks"
    changed = {path for path in production if production[path] != lab[path]}
    assert changed == {"hosts.server"}


def test_systems_folder_reads_only_its_own_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSPHRASE_VAR, raising=False)
    # Production files leave the site's facts to required params: read their chains unfilled.
    production = [resolve_chain(path)[1] for path in sorted((REPO / "systems").glob("*.yml"))]
    assert production == [(path.resolve(),) for path in PRODUCTION_FILES]
    lab = load_systems(REPO / "systems" / "lab")
    assert [loaded.path for loaded in lab] == [
        REPO / "systems" / "lab" / path.name for path in PRODUCTION_FILES
    ]
    assert all(loaded.chain[-1] == production[i][0] for i, loaded in enumerate(lab))


# -- merge by id ------------------------------------------------------------------------


def test_merge_patches_a_check_by_id_in_place() -> None:
    base = base_description()
    before = copy.deepcopy(base)
    overlay = {"checks": {"backups": [{"id": "backup-size", "min_bytes": 5000}]}}
    merged = merge(base, overlay)
    backups = merged["checks"]["backups"]
    assert [item["id"] for item in backups] == ["backup-fresh", "backup-size"]
    assert backups[1] == {**before["checks"]["backups"][1], "min_bytes": 5000}
    assert backups[0] == before["checks"]["backups"][0]
    assert merged["checks"]["logs"] == before["checks"]["logs"]  # kinds the overlay omits stay
    assert base == before, "merge must not modify its inputs"


def test_merge_appends_new_ids_at_the_end() -> None:
    overlay = {
        "checks": {"backups": [{**COMMON, "id": "backup-retention", "directory": "/b", "retention_days": 30}]}
    }
    merged = merge(base_description(), overlay)
    assert [item["id"] for item in merged["checks"]["backups"]] == [
        "backup-fresh",
        "backup-size",
        "backup-retention",
    ]


def test_merge_nested_mappings_key_by_key() -> None:
    overlay = {
        "hosts": {"db": "ssh://root@db"},
        "checks": {"http": [{"id": "health", "expect_json": {"db": "connected"}}]},
    }
    merged = merge(base_description(), overlay)
    assert merged["hosts"] == {"server": "local://", "db": "ssh://root@db"}
    assert merged["checks"]["http"][0]["expect_json"] == {"status": "healthy", "db": "connected"}
    assert merged["checks"]["http"][0]["url"] == "http://localhost:8000/health"


def test_merge_replaces_scalars_lists_without_ids_and_nulls() -> None:
    base = {"a": 1, "tags": ["x", "y"], "codes": [200], "keep": {"k": 1}}
    merged = merge(base, {"a": 2, "tags": ["z"], "codes": [200, 301], "keep": None})
    assert merged == {"a": 2, "tags": ["z"], "codes": [200, 301], "keep": None}


def test_overlay_file_patches_one_field(tmp_path: Path) -> None:
    write(tmp_path / "prod.yml", base_description())
    overlay = write(
        tmp_path / "staging" / "demo.yml",
        {
            "extends": "../prod.yml",
            "hosts": {"server": "ssh://root@staging"},
            "checks": {"backups": [{"id": "backup-fresh", "directory": "/srv/backups"}]},
        },
    )
    loaded = load_file(overlay)
    fresh, size = loaded.model.checks.backups
    assert loaded.model.hosts == {"server": "ssh://root@staging"}
    assert (fresh.directory, fresh.max_age_hours, fresh.title) == ("/srv/backups", 25, "a check")
    assert size.directory == "/root/backups"
    assert loaded.chain == (overlay.resolve(), (tmp_path / "prod.yml").resolve())
    assert loaded.runbook_path == tmp_path / "runbook.md"


# -- extends: cycles and bad references ------------------------------------------------------


def test_extends_cycle_is_a_clear_error(tmp_path: Path) -> None:
    first = write(tmp_path / "a.yml", {"extends": "b.yml", "system": "demo"})
    second = write(tmp_path / "b.yml", {"extends": "a.yml", "system": "demo"})
    with pytest.raises(DescriptionError) as info:
        load_file(first)
    message = str(info.value)
    assert "extends itself" in message
    assert f"{first.resolve()} -> {second.resolve()} -> {first.resolve()}" in message


def test_extends_itself(tmp_path: Path) -> None:
    path = write(tmp_path / "a.yml", {"extends": "a.yml", "system": "demo"})
    with pytest.raises(DescriptionError, match="extends itself"):
        load_file(path)


def test_extends_missing_file(tmp_path: Path) -> None:
    path = write(tmp_path / "a.yml", {"extends": "nowhere.yml", "system": "demo"})
    with pytest.raises(DescriptionError, match=r"nowhere\.yml: cannot read: No such file"):
        load_file(path)


def test_extends_must_be_a_path(tmp_path: Path) -> None:
    path = write(tmp_path / "a.yml", {"extends": ["b.yml"], "system": "demo"})
    with pytest.raises(DescriptionError, match=r"a\.yml: extends: must be a file path"):
        load_file(path)


# -- x- anchor keys ------------------------------------------------------------------------


def test_x_keys_are_anchors_not_fields(tmp_path: Path) -> None:
    path = write(
        tmp_path / "demo.yml",
        textwrap.dedent(
            """\
            system: demo
            runbook: runbook.md
            hosts: {server: "local://"}
            x-common: &common
              severity: P3
              section: "4.1"
              remedy: run the backup
            x-unused: [1, 2, 3]
            checks:
              backups:
                - <<: *common
                  id: backup-fresh
                  title: fresh backup
                  directory: /b
                  max_age_hours: 25
            """
        ),
    )
    check = load_file(path).model.checks.backups[0]
    assert (check.severity, check.section, check.remedy) == ("P3", "4.1", "run the backup")


def test_other_unknown_top_level_keys_are_still_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "demo.yml", {**base_description(), "y-common": {"a": 1}})
    with pytest.raises(DescriptionError, match=r"y-common: Extra inputs are not permitted"):
        load_file(path)


# -- broken files: the message names the file and the field path ---------------------------------


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    node[int(last) if last.isdigit() else last] = value


@pytest.mark.parametrize(
    ("change", "value", "expected"),
    [
        pytest.param(
            "checks.backups.1.severity",
            "P5",
            "checks.backups[1] (id backup-size).severity: Input should be 'P1', 'P2', 'P3' or 'P4'",
            id="bad-severity",
        ),
        pytest.param(
            "checks.backups.1.min_bytes",
            "lots",
            "checks.backups[1] (id backup-size).min_bytes: Input should be a valid integer",
            id="bad-value",
        ),
        pytest.param(
            "checks.backups.1.min_byts",
            1000,
            "checks.backups[1] (id backup-size).min_byts: Extra inputs are not permitted",
            id="unknown-field",
        ),
        pytest.param(
            "checks.backups.0.min_bytes",
            1000,
            "checks.backups[0] (id backup-fresh): set exactly one of: max_age_hours, min_bytes, "
            "integrity, retention_days, copy_on (found: max_age_hours, min_bytes)",
            id="two-aspects",
        ),
        pytest.param(
            "checks.logs.0.id",
            "backup-size",
            "checks.logs[0] (id backup-size): check id 'backup-size' is used twice "
            "(first: checks.backups[1] (id backup-size))",
            id="duplicate-id",
        ),
        pytest.param(
            "checks.logs.0.host",
            "db",
            "checks.logs[0] (id errors).host: host 'db' is not one of ['server']",
            id="unknown-host",
        ),
        pytest.param(
            "checks.logs.0.pattern",
            "(error|exception",
            "checks.logs[0] (id errors).pattern: not a regular expression: '(error|exception'",
            id="bad-regex",
        ),
        pytest.param(
            "hosts.server",
            "calendar.example.com",
            "hosts: host 'server': 'calendar.example.com' is not a host spec",
            id="bad-host-spec",
        ),
        pytest.param(
            "checks.http.0.expect_status",
            "200",
            "checks.http[0] (id health).expect_status: a list of statuses such as [200], or 'any' "
            "(every HTTP answer); not '200'",
            id="bad-list",
        ),
    ],
)
def test_broken_description_names_file_and_field(
    tmp_path: Path, change: str, value: Any, expected: str
) -> None:
    data = base_description()
    _set(data, change, value)
    path = write(tmp_path / "demo.yml", data)
    with pytest.raises(DescriptionError) as info:
        load_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: invalid system description\n")
    assert f"  {expected}" in message
    assert "(top level)" not in message


def test_missing_required_field(tmp_path: Path) -> None:
    data = base_description()
    del data["checks"]["backups"][0]["directory"]
    path = write(tmp_path / "demo.yml", data)
    with pytest.raises(
        DescriptionError, match=r"checks\.backups\[0\] \(id backup-fresh\)\.directory: Field required"
    ):
        load_file(path)


def test_error_in_an_overlay_names_the_overlay_and_merged_path(tmp_path: Path) -> None:
    write(tmp_path / "prod.yml", base_description())
    overlay = write(
        tmp_path / "lab.yml",
        {"extends": "prod.yml", "checks": {"backups": [{"id": "backup-size", "severity": "urgent"}]}},
    )
    with pytest.raises(DescriptionError) as info:
        load_file(overlay)
    assert str(info.value).startswith(f"{overlay}: invalid system description")
    assert "checks.backups[1] (id backup-size).severity" in str(info.value)


def test_invalid_yaml_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path / "demo.yml", "system: demo\nrunbook: a: b\n")
    with pytest.raises(DescriptionError) as info:
        load_file(path)
    assert str(info.value) == f"{path}:2:11: invalid YAML: mapping values are not allowed in this context"


def test_bad_indentation_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path / "demo.yml", "system: demo\nhosts:\n  server: local://\n checks: {}\n")
    with pytest.raises(DescriptionError, match=rf"^{path}:4:2: invalid YAML: did not find expected key"):
        load_file(path)


def test_unclosed_flow_list_names_where_it_ended(tmp_path: Path) -> None:
    path = write(tmp_path / "demo.yml", "system: demo\nhosts: [local://\n")
    with pytest.raises(DescriptionError, match=rf"^{path}:3:1: invalid YAML: "):
        load_file(path)


@pytest.mark.parametrize(("text", "kind"), [("- a\n- b\n", "list"), ("", "NoneType"), ("just text\n", "str")])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str, kind: str) -> None:
    path = write(tmp_path / "demo.yml", text)
    with pytest.raises(DescriptionError, match=f"^{path}: top level must be a mapping, got {kind}$"):
        load_file(path)


# -- ${ENV} interpolation ---------------------------------------------------------------------


def test_env_values_fill_fields_and_become_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RB_SELFTEST_PASS", "pass-phrase-91c2")
    monkeypatch.setenv("RB_SELFTEST_HOST", "backup.internal")
    data = base_description()
    data["checks"]["backups"].append(
        {
            **COMMON,
            "id": "backup-ok",
            "directory": "/b",
            "integrity": True,
            "gpg_passphrase": "${RB_SELFTEST_PASS}",
        }
    )
    data["hosts"]["server"] = "ssh://root@${RB_SELFTEST_HOST}:22"
    data["checks"]["backups"][0]["max_age_hours"] = 25  # not a string: left alone
    path = write(tmp_path / "demo.yml", data)
    loaded = load_file(path)
    assert loaded.missing_env == {}
    assert loaded.model.checks.backups[2].gpg_passphrase == "pass-phrase-91c2"
    assert loaded.model.hosts["server"] == "ssh://root@backup.internal:22"
    assert SECRETS.mask("pass-phrase-91c2 at backup.internal") == "*** at ***"
    assert list(SECRETS.names()) == ["RB_SELFTEST_HOST", "RB_SELFTEST_PASS"]


def test_missing_env_is_recorded_with_its_field_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RB_SELFTEST_UNSET", raising=False)
    data = base_description()
    data["checks"]["http"][0]["headers"] = {"Authorization": "Bearer ${RB_SELFTEST_UNSET}"}
    data["checks"]["backups"][1]["gpg_passphrase"] = "${RB_SELFTEST_UNSET}"
    path = write(tmp_path / "demo.yml", data)
    loaded = load_file(path)  # not an error: only the checks that need it will say so
    assert loaded.missing_env == {
        "RB_SELFTEST_UNSET": (
            "checks.backups[1].gpg_passphrase",
            "checks.http[0].headers.Authorization",
        )
    }
    assert loaded.model.checks.backups[1].gpg_passphrase == "${RB_SELFTEST_UNSET}"
    assert list(SECRETS.names()) == []


def test_env_in_an_overlay_is_recorded_at_the_merged_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RB_SELFTEST_UNSET", raising=False)
    write(tmp_path / "prod.yml", base_description())
    overlay = write(
        tmp_path / "lab.yml",
        {
            "extends": "prod.yml",
            "checks": {"backups": [{"id": "backup-size", "gpg_passphrase": "${RB_SELFTEST_UNSET}"}]},
        },
    )
    assert load_file(overlay).missing_env == {"RB_SELFTEST_UNSET": ("checks.backups[1].gpg_passphrase",)}


# -- load_systems ----------------------------------------------------------------------------


def test_load_systems_folder_and_selection(tmp_path: Path) -> None:
    write(tmp_path / "a.yml", {**base_description(), "system": "alpha"})
    write(tmp_path / "b.yaml", {**base_description(), "system": "beta"})
    write(tmp_path / "notes.txt", "not a description")
    write(tmp_path / "sub" / "c.yml", "broken: [")  # subfolders are not read
    assert [loaded.name for loaded in load_systems(tmp_path)] == ["alpha", "beta"]
    assert [loaded.name for loaded in load_systems(tmp_path, ["beta"])] == ["beta"]
    with pytest.raises(DescriptionError, match=r"--system gamma: not described in .* \(known: alpha, beta\)"):
        load_systems(tmp_path, ["gamma"])


def test_load_systems_same_name_twice(tmp_path: Path) -> None:
    write(tmp_path / "a.yml", base_description())
    write(tmp_path / "b.yml", base_description())
    with pytest.raises(DescriptionError, match="system named twice: demo"):
        load_systems(tmp_path)


def test_load_systems_empty_or_missing(tmp_path: Path) -> None:
    with pytest.raises(DescriptionError, match=r"no \*\.yml system descriptions"):
        load_systems(tmp_path)
    with pytest.raises(DescriptionError, match="no such file or folder"):
        load_systems(tmp_path / "nowhere")
