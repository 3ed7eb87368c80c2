"""systems/hexenvpn-xray.yml: its hosts as groups (inline, or either inventory form), its ids per
host, `--param user=...`, and every check's severity, runbook section and remedy. Loads only."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from runbook.describe.loader import load_file
from runbook.run.case import cases_of

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
}


def ids(path: Path, params: dict[str, str] | None = None) -> list[str]:
    given = {**SITE, **(params or {})} if path.parent.name != "lab" else params
    return [case.id for case in cases_of(load_file(path, given))]


def test_each_check_runs_on_its_group() -> None:
    found = ids(PRODUCTION)
    system = "hexenvpn-xray"
    assert [f"{system}:replica-in-sync@{host}" for host in REPLICAS] == [i for i in found if "in-sync" in i]
    assert [f"{system}:user-present@{host}" for host in EVERY] == [i for i in found if "user-present" in i]
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
