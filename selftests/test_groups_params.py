"""Hosts as groups (inline or from an Ansible inventory, INI and YAML) and `--param` placeholders.

A check naming a group is one test per host, id `system:check-id@host`; an unreachable member
is one failure for it while the others' checks all run. Runs on local:// and a loopback sshd.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from runbook.describe import inventory, params
from runbook.describe.loader import DescriptionError, load_file, load_systems
from runbook.run.case import cases_of
from selftests.sshd import LoopbackSshd

ROOT = Path(__file__).resolve().parents[1]

INI = """\
# the fleet's inventory
[master]
vpn-master ansible_host=10.0.0.2 ansible_user=deploy

[replicas]
vpn-replica-1 ansible_host=10.0.0.6 ansible_port=2222
vpn-replica-2 ansible_host=10.0.0.10 other_var="ignored value"

[vpn:children]
master
replicas

[replicas:vars]
ansible_user=ignored_for_groups
"""

YAML = """\
all:
  children:
    master:
      hosts:
        vpn-master: {ansible_host: 10.0.0.2, ansible_user: deploy}
    replicas:
      hosts:
        vpn-replica-1: {ansible_host: 10.0.0.6, ansible_port: 2222}
        vpn-replica-2:
          ansible_host: 10.0.0.10
"""


@pytest.mark.parametrize("name,text", [("hosts.ini", INI), ("hosts.yml", YAML)])
def test_inventory_hosts_groups_and_children(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    found = inventory.read(path)
    assert found.groups["master"] == ["vpn-master"]
    assert found.groups["replicas"] == ["vpn-replica-1", "vpn-replica-2"]
    assert found.groups["all"] == ["vpn-master", "vpn-replica-1", "vpn-replica-2"]
    if name.endswith(".ini"):
        assert found.groups["vpn"] == ["vpn-master", "vpn-replica-1", "vpn-replica-2"]
    spec = inventory.DEFAULT_SPEC
    assert found.spec("vpn-master", spec) == "ssh://deploy@10.0.0.2:22"
    assert found.spec("vpn-replica-1", spec) == "ssh://root@10.0.0.6:2222"
    assert found.spec("vpn-replica-2", spec) == "ssh://root@10.0.0.10:22"


@pytest.mark.parametrize(
    "name,text,says",
    [
        ("bad.ini", "[m]\nhost1 ansible_host=-oProxyCommand=x\n", "ansible_host='-oProxyCommand=x'"),
        ("bad.ini", "[m]\nhost1 ansible_user=a@b\n", "ansible_user='a@b'"),
        ("bad.ini", "[a:children]\nb\n[b:children]\na\n", "is its own child"),
        ("bad.ini", "[m\nhost1\n", "must end with ']'"),
        ("bad.yml", "- not a mapping\n", "a mapping of groups"),
        ("bad.yml", "all:\n  hosts:\n    h: {ansible_port: 'x y'}\n", "ansible_port='x y'"),
    ],
)
def test_inventory_refuses_what_it_cannot_trust(tmp_path: Path, name: str, text: str, says: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(inventory.InventoryError) as caught:
        inventory.read(path)
    assert says in str(caught.value) and str(path) in str(caught.value)


def describe(folder: Path, **fields: Any) -> Path:
    (folder / "runbook.md").write_text("# fleet\n")
    check = {
        "id": "kernel",
        "title": "kernel is Linux",
        "host": "replicas",
        "run": "uname -s",
        "expect_stdout": "Linux",
        "severity": "P2",
        "section": "1 Health",
        "remedy": "look",
    }
    description = {
        "system": "fleet",
        "runbook": "runbook.md",
        "hosts": {"master": "local://", "replica-1": "local://", "replica-2": "local://"},
        "groups": {"replicas": ["replica-1", "replica-2"]},
        "checks": {"commands": [check]},
        **fields,
    }
    path = folder / "fleet.yml"
    path.write_text(yaml.safe_dump(description, sort_keys=False))
    return path


def test_a_check_on_a_group_is_one_case_per_host(tmp_path: Path) -> None:
    system = load_file(describe(tmp_path))
    ids = [case.id for case in cases_of(system)]
    assert ids[-2:] == ["fleet:kernel@replica-1", "fleet:kernel@replica-2"]
    assert [case.host_name for case in cases_of(system)][-2:] == ["replica-1", "replica-2"]


def test_a_check_on_one_host_keeps_its_id(tmp_path: Path) -> None:
    path = describe(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["checks"]["commands"][0]["host"] = "master"
    path.write_text(yaml.safe_dump(data))
    assert [case.id for case in cases_of(load_file(path))][-1] == "fleet:kernel"


def test_unknown_group_and_bad_members_are_named(tmp_path: Path) -> None:
    path = describe(tmp_path, groups={"replicas": ["replica-1", "replica-9"]})
    with pytest.raises(DescriptionError, match="replica-9 not among hosts"):
        load_file(path)
    path = describe(tmp_path, groups={"others": ["replica-1"]})
    with pytest.raises(DescriptionError, match="'replicas' is not one of"):
        load_file(path)


def test_hosts_and_groups_from_an_inventory(tmp_path: Path) -> None:
    (tmp_path / "inventory").mkdir()
    (tmp_path / "inventory" / "hosts.ini").write_text(INI)
    path = describe(tmp_path, inventory={"file": "inventory/hosts.ini"})
    data = yaml.safe_load(path.read_text())
    del data["groups"], data["hosts"]
    data["checks"]["commands"][0]["host"] = "replicas"
    path.write_text(yaml.safe_dump(data))
    system = load_file(path)
    assert system.model.hosts["vpn-replica-1"] == "ssh://root@10.0.0.6:2222"
    assert [case.id for case in cases_of(system)][-2:] == [
        "fleet:kernel@vpn-replica-1",
        "fleet:kernel@vpn-replica-2",
    ]


# ---- parameters -----------------------------------------------------------------------------
def with_user_check(folder: Path, declared: dict[str, Any] | None = None) -> Path:
    path = describe(folder, **({"params": declared} if declared is not None else {}))
    data = yaml.safe_load(path.read_text())
    data["checks"]["commands"][0].update(
        id="user-echo", host="master", run="echo {user}", expect_stdout="{user}", remedy="re-add {user}"
    )
    path.write_text(yaml.safe_dump(data))
    return path


def test_param_fills_every_field(tmp_path: Path) -> None:
    path = with_user_check(tmp_path)
    (system,) = load_systems(path, params={"user": "test1"})
    check = system.model.checks.commands[0]
    assert (check.run, check.expect_stdout, check.remedy) == ("echo test1", "test1", "re-add test1")


def test_param_default_and_override(tmp_path: Path) -> None:
    path = with_user_check(tmp_path, {"user": "alice"})
    assert load_file(path).model.checks.commands[0].expect_stdout == "alice"
    assert load_file(path, {"user": "bob"}).model.checks.commands[0].expect_stdout == "bob"


def test_placeholder_without_value_names_the_check(tmp_path: Path) -> None:
    path = with_user_check(tmp_path)
    says = r"check .user-echo. \(checks.commands\[0\]\.\w+\) uses \{user\}"
    with pytest.raises(DescriptionError, match=says):
        load_file(path)
    path = with_user_check(tmp_path, {"user": None})
    with pytest.raises(DescriptionError, match="--param user=VALUE"):
        load_file(path)


def test_params_fill_the_compose_project_and_features(tmp_path: Path) -> None:
    """What the runbook leaves to the site beside the checks: the compose project, a feature."""
    path = with_user_check(tmp_path, {"user": "alice", "project": None, "https": None})
    data = yaml.safe_load(path.read_text())
    data.update(compose_project="{project}", features={"https": "{https}"})
    path.write_text(yaml.safe_dump(data))
    system = load_file(path, {"project": "map-v12", "https": "true"})
    assert (system.model.compose_project, system.model.features) == ("map-v12", {"https": True})
    with pytest.raises(DescriptionError, match=r"features.https uses \{https\}, which has no value"):
        load_file(path, {"project": "map-v12"})
    (system,) = load_systems(path, params={"project": "p", "https": "false"})
    assert system.model.features == {"https": False}


def test_every_missing_param_is_named_in_one_error(tmp_path: Path) -> None:
    """A new site learns in one run every value it has to give, not one value per run."""
    path = with_user_check(tmp_path, {"user": None, "project": None, "https": None})
    data = yaml.safe_load(path.read_text())
    data.update(compose_project="{project}", features={"https": "{https}"})
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(DescriptionError) as info:
        load_file(path)
    said = str(info.value)
    assert all(f"uses {{{name}}}" in said for name in ("user", "project", "https")), said
    assert "--param project=VALUE --param https=VALUE --param user=VALUE" in said, said
    assert "which have no value" in said


def test_docker_templates_are_not_placeholders(tmp_path: Path) -> None:
    path = describe(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["checks"]["commands"][0]["run"] = "docker inspect -f '{{json .State}}' x; echo ${HOME:-x}"
    path.write_text(yaml.safe_dump(data))
    assert "{{json .State}}" in load_file(path).model.checks.commands[0].run


def test_a_feature_the_site_decides_is_a_param(tmp_path: Path) -> None:
    """`features: {monitoring: "{monitoring}"}`: an optional part ("если развернут") is off unless
    the site says it runs it, and then its checks run."""
    path = with_user_check(tmp_path, {"user": "alice", "monitoring": False})
    data = yaml.safe_load(path.read_text())
    data["features"] = {"monitoring": "{monitoring}"}
    path.write_text(yaml.safe_dump(data))
    assert load_file(path).model.features == {"monitoring": False}
    assert load_file(path, {"monitoring": "true"}).model.features == {"monitoring": True}
    data["params"]["monitoring"] = None
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(DescriptionError, match=r"features.monitoring uses \{monitoring\}"):
        load_file(path)


def test_a_check_may_need_several_features(tmp_path: Path) -> None:
    """Map's chat rate limit needs two site decisions (rate limiting on, the chat open without a
    login): it runs only when both are true."""
    from runbook.run import gate
    from runbook.run.case import cases_of

    path = with_user_check(tmp_path, {"user": "alice", "limits": None, "open": None})
    data = yaml.safe_load(path.read_text())
    data["features"] = {"limits": "{limits}", "open": "{open}"}
    data["checks"]["commands"][0]["requires_feature"] = ["limits", "open"]
    path.write_text(yaml.safe_dump(data))
    both, one = {"limits": "true", "open": "true"}, {"limits": "true", "open": "false"}
    for given, runs in [(both, True), (one, False)]:
        (system,) = load_systems(path, params=given)
        (case,) = [case for case in cases_of(system) if case.check.id == "user-echo"]
        said = gate.blocked(case, gate.READ_ONLY)
        assert (said is None) == runs, said
        if not runs:
            assert said is not None and "does not declare feature 'open'" in said.reason


@pytest.mark.parametrize("value", ["-x", "--config=/etc/x", "a b", "a;rm -rf /", "$(id)", "a'b", ""])
def test_param_value_is_one_plain_word(value: str) -> None:
    with pytest.raises(ValueError, match="never an option or code"):
        params.parse([f"user={value}"])


def test_param_forms() -> None:
    assert params.parse(["user=test1@example.com", "n=3"]) == {"user": "test1@example.com", "n": "3"}
    with pytest.raises(ValueError, match="expected NAME=VALUE"):
        params.parse(["USER=x"])


def test_a_param_no_system_uses_is_refused(tmp_path: Path) -> None:
    path = with_user_check(tmp_path, {"user": "alice"})
    with pytest.raises(DescriptionError, match=r"--param usr: no system .* \(parameters: user\)"):
        load_systems(path, params={"usr": "x"})


# ---- a run: one failure for the unreachable member, the others all run ------------------------
def run(folder: Path, reports: Path, *options: str) -> tuple[dict[str, dict[str, Any]], ET.Element, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--systems={folder}"]
    command += [f"--reports-dir={reports}", *options, "tests_health", "tests_config", "tests_backup"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    (run_folder,) = [
        path
        for path in reports.iterdir()
        if path.is_dir() and not path.is_symlink() and not path.name.startswith(".")
    ]
    checks = json.loads((run_folder / "summary.json").read_text())["checks"]
    return {check["id"]: check for check in checks}, ET.parse(run_folder / "junit.xml").getroot(), done.stdout


@pytest.mark.slow
def test_a_group_run_reports_each_host(tmp_path: Path, sshd: LoopbackSshd) -> None:
    folder = tmp_path / "systems"
    folder.mkdir()
    path = with_user_check(folder, {"user": "alice"})
    data = yaml.safe_load(path.read_text())
    data["hosts"] = {
        "master": "local://",
        "replica-1": sshd.spec("ssh"),
        "replica-2": "ssh://root@127.0.0.1:1",  # refused at once: unreachable
    }
    data["connect_timeout"] = 3
    data["checks"]["commands"][0]["host"] = "replicas"
    path.write_text(yaml.safe_dump(data))
    found, junit, _ = run(folder, tmp_path / "reports", "--param", "user=test1")
    assert found["fleet:user-echo@replica-1"]["outcome"] == "passed"
    assert found["fleet:user-echo@replica-1"]["host"] == "replica-1"
    assert found["fleet:reachable-replica-2"]["outcome"] == "failed"
    assert found["fleet:user-echo@replica-2"]["outcome"] == "skipped"
    assert "see fleet:reachable-replica-2" in found["fleet:user-echo@replica-2"]["message"]
    failed = [key for key, check in found.items() if check["outcome"] == "failed"]
    assert failed == ["fleet:reachable-replica-2"]
    names = {case.get("name", "") for case in junit.iter("testcase")}
    assert any("user-echo@replica-1" in name for name in names), names


@pytest.mark.slow
@pytest.mark.parametrize("options", [(), ("--parallel-hosts", "0")], ids=["ahead", "one-by-one"])
def test_each_host_of_a_group_has_its_own_outcome(
    tmp_path: Path, sshd: LoopbackSshd, options: tuple[str, ...]
) -> None:
    # One check object on two hosts, green over ssh and red on local://: run ahead per host,
    # each host's test must get its own outcome (not the last host's).
    folder = tmp_path / "systems"
    folder.mkdir()
    path = describe(folder)
    data = yaml.safe_load(path.read_text())
    data["hosts"] = {"master": "local://", "replica-1": sshd.spec("ssh"), "replica-2": "local://"}
    data["checks"]["commands"][0].update(id="over-ssh", run='test -n "$SSH_CONNECTION"', expect_stdout=None)
    path.write_text(yaml.safe_dump(data))
    found, _, _ = run(folder, tmp_path / "reports", *options)
    assert found["fleet:over-ssh@replica-1"]["outcome"] == "passed"
    assert found["fleet:over-ssh@replica-2"]["outcome"] == "failed"
    assert found["fleet:over-ssh@replica-2"]["host"] == "replica-2"
