"""systems/hexenvpn-xray.yml: its hosts as groups (inline, or either inventory form), its ids per
host, `--param user=...`, and every check's severity, runbook section and remedy. Loads only."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from runbook.describe.loader import load_file
from runbook.run.case import Case, cases_of
from runbook.run.gate import READ_ONLY, blocked

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION = ROOT / "systems" / "hexenvpn-xray.yml"
LAB = ROOT / "systems" / "lab" / "hexenvpn-xray.yml"
REPLICAS = ["vpn-replica-1", "vpn-replica-2", "vpn-replica-3"]
EVERY = ["vpn-master", *REPLICAS]
# What the runbook leaves to the site: required params, given as a site would.
SITE = {
    "window": "1h",
    "max_crash_restarts": "1",
    "xray_port": "443",
    "probe_url": "https://www.example.com/generate_204",
    "probe_status": "204",
    "replicas_like_master": "true",
}
# The master's layout (runbook l.5-9, 35, 41-48, 65-71): what a replica is read with only where
# the site declares replicas_like_master.
MASTER_CONTAINER = "hexenvpn-xray"
MASTER_CONFIG = "/usr/local/etc/xray/config.json"


def ids(path: Path, params: dict[str, str] | None = None) -> list[str]:
    given = {**SITE, **(params or {})} if path.parent.name != "lab" else params
    return [case.id for case in cases_of(load_file(path, given))]


def test_each_check_runs_on_its_group() -> None:
    found = ids(PRODUCTION)
    system = "hexenvpn-xray"
    assert [f"{system}:replica-in-sync@{host}" for host in REPLICAS] == [i for i in found if "in-sync" in i]
    assert [f"{system}:user-present@vpn-master"] == [i for i in found if ":user-present" in i]
    assert [f"{system}:replica-user-present@{host}" for host in REPLICAS] == [
        i for i in found if "replica-user-present" in i
    ]
    twins = ("xray-running", "xray-restarts", "xray-log-rotation", "xray-restart-policy", "docker-enabled")
    for check in twins:
        assert [i for i in found if f":{check}@" in i] == [f"{system}:{check}@vpn-master"]
        assert [i for i in found if f":replica-{check}@" in i] == [
            f"{system}:replica-{check}@{host}" for host in REPLICAS
        ]
    assert [f"{system}:vless-probe@{host}" for host in REPLICAS] == [i for i in found if "vless-probe" in i]
    assert f"{system}:xray-config-test@vpn-master" in found
    assert f"{system}:bot-running@vpn-master" in found
    assert f"{system}:reachable-vpn-replica-2" in found


def test_production_is_placeholders_only() -> None:
    model = load_file(PRODUCTION, SITE).model
    assert all(
        re.fullmatch(r"ssh://root@vpn-[a-z0-9-]+\.example\.com", spec) for spec in model.hosts.values()
    )


def test_every_check_has_severity_section_and_remedy() -> None:
    runbook = (ROOT / "systems" / load_file(PRODUCTION, SITE).model.runbook).resolve().read_text()
    headings = re.findall(r"^## (\d+\))", runbook, re.MULTILINE)
    for case in cases_of(load_file(PRODUCTION, SITE)):
        check = case.check
        if not check.describable:
            continue
        assert check.severity in {"P1", "P2", "P3", "P4"}, case.id
        assert check.remedy and check.section, case.id
        assert set(re.findall(r"\d+\)", check.section)) <= set(headings), (case.id, check.section)


def test_param_user_reaches_every_per_user_check() -> None:
    cases = cases_of(load_file(PRODUCTION, {**SITE, "user": "alice"}))
    assert {case.check.has_user for case in cases if case.check.id == "user-present"} == {"alice"}
    assert {case.check.user for case in cases if case.check.id == "vless-probe"} == {"alice"}


@pytest.mark.parametrize("form", ["ini", "yml"])
def test_the_inventory_forms_give_the_same_tests(tmp_path: Path, form: str) -> None:
    data = yaml.safe_load(PRODUCTION.read_text())
    del data["hosts"], data["groups"]
    data["inventory"] = {"file": f"inventory/hexenvpn-xray.{form}", "spec": "ssh://{user}@{address}"}
    data["runbook"] = str((PRODUCTION.parent / data["runbook"]).resolve())
    shutil.copytree(ROOT / "systems" / "inventory", tmp_path / "inventory")
    path = tmp_path / "hexenvpn-xray.yml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    assert ids(path) == ids(PRODUCTION)
    assert load_file(path, SITE).model.hosts == load_file(PRODUCTION, SITE).model.hosts


def test_the_lab_overlay_changes_only_hosts_and_params() -> None:
    production = load_file(PRODUCTION, SITE)
    lab = load_file(LAB)
    assert ids(LAB) == ids(PRODUCTION)
    assert set(lab.model.hosts) == set(production.model.hosts)
    for case in cases_of(lab):
        if case.check.id == "xray-config-test":
            assert (case.check.test_command, case.check.file, case.check.container) == (
                ["xray", "run", "-test", "-config"],
                "/usr/local/etc/xray/config.json",
                "hexenvpn-xray",
            )


def test_what_the_runbook_leaves_to_the_site_is_required() -> None:
    with pytest.raises(Exception, match=r"uses \{window\}.*which have no value"):
        load_file(PRODUCTION)
    with pytest.raises(Exception, match=r"max_crash_restarts"):
        load_file(PRODUCTION, {name: value for name, value in SITE.items() if name != "max_crash_restarts"})
    checks = {case.check.id: case.check for case in cases_of(load_file(PRODUCTION, SITE))}
    assert checks["xray-restarts"].max_restarts == 1
    assert checks["xray-user-exists-error"].since == "start"  # the repair's restart clears it
    assert checks["xray-config-test"].after == ["xray-running"]


def _uses_master_layout(case: Case) -> bool:
    """The case reads its host as the master is laid out: xray's container, its config, docker."""
    check = case.check
    return (
        getattr(check, "container", None) == MASTER_CONTAINER
        or getattr(check, "file", None) == MASTER_CONFIG
        or "docker" in str(getattr(check, "run", ""))
    )


def _replica_cases(replicas_like_master: str) -> list[Case]:
    system = load_file(PRODUCTION, {**SITE, "replicas_like_master": replicas_like_master})
    return [case for case in cases_of(system) if case.host_name in REPLICAS]


def test_whether_replicas_run_like_the_master_is_the_sites_choice() -> None:
    # The runbook describes the master only (l.5): the site must say it, the run stops naming it.
    without = {name: value for name, value in SITE.items() if name != "replicas_like_master"}
    with pytest.raises(Exception, match=r"replicas_like_master"):
        load_file(PRODUCTION, without)


def test_replicas_not_like_the_master_are_not_read_with_its_layout() -> None:
    cases = _replica_cases("false")
    running = [case for case in cases if blocked(case, READ_ONLY) is None]
    assert not [case.id for case in running if _uses_master_layout(case)]
    # Of a replica only what assumes no layout: SSH reachability and the xray port.
    assert {case.check.id for case in running} == {
        *(f"reachable-{host}" for host in REPLICAS),
        "xray-port",
    }
    for case in cases:
        if _uses_master_layout(case):
            reason = blocked(case, READ_ONLY)
            assert reason is not None and "replicas_like_master" in reason.reason, case.id


def test_replicas_like_the_master_are_read_with_its_layout() -> None:
    cases = _replica_cases("true")
    assert all(blocked(case, READ_ONLY) is None for case in cases)
    layout = {case.check.id for case in cases if _uses_master_layout(case)}
    assert layout == {
        "replica-xray-running",
        "replica-xray-restarts",
        "replica-xray-log-rotation",
        "replica-xray-restart-policy",
        "replica-xray-user-exists-error",
        "replica-docker-enabled",
        "replica-in-sync",
        "replica-user-present",
        "vless-probe",
    }
    for case in cases:
        if case.check.id in {"replica-in-sync", "replica-user-present", "vless-probe"}:
            assert (case.check.container, case.check.file) == (MASTER_CONTAINER, MASTER_CONFIG), case.id
