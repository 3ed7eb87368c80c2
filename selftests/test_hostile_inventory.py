"""An Ansible inventory is read with the description reader's limits, and its names stay data.

Each case is one that grew the runner without bound, hung it, or reached a backend as an
option before: an alias fan-out, a FIFO, /dev/zero, 200k hosts, an upper-case name, a host
named like an option. Every one now stops the load with one message naming the file.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from runbook.describe.loader import DescriptionError, load_file

DESCRIPTION = """\
system: fleet
runbook: runbook.md
inventory: {{file: {inventory}, spec: "{spec}"}}
hosts:
  local: "local://"
checks:
  files:
    - {{id: etc, title: etc exists, path: /etc, type: directory, severity: P3, section: "1.", remedy: fix}}
"""


def describe(tmp_path: Path, inventory: str, spec: str = "ssh://{user}@{address}:{port}") -> Path:
    path = tmp_path / "fleet.yml"
    path.write_text(DESCRIPTION.format(inventory=inventory, spec=spec), encoding="utf-8")
    return path


def refused(path: Path) -> str:
    with pytest.raises(DescriptionError) as info:
        load_file(path)
    return str(info.value)


def test_an_alias_fan_out_is_refused(tmp_path: Path) -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]" for i in range(8)]
    lines += ["all: {hosts: {web: {ansible_host: '10.0.0.1'}}, vars: {bomb: *i}}"]
    (tmp_path / "inv.yml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert "inv.yml" in refused(describe(tmp_path, "inv.yml"))


def test_a_fifo_does_not_hang_the_load(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "inv.ini")
    result: list[str] = []
    reader = threading.Thread(
        target=lambda: result.append(refused(describe(tmp_path, "inv.ini"))), daemon=True
    )
    reader.start()
    reader.join(timeout=30)
    assert result and "a pipe, not a file" in result[0]


def test_dev_zero_is_not_a_file(tmp_path: Path) -> None:
    assert "not a file" in refused(describe(tmp_path, "/dev/zero"))


def test_a_huge_inventory_is_refused_by_its_size(tmp_path: Path) -> None:
    (tmp_path / "inv.ini").write_text(
        "[all]\n"
        + "".join(f"host{i} ansible_host=10.0.{i // 250 % 250}.{i % 250}\n" for i in range(200_000)),
        encoding="utf-8",
    )
    assert "too large" in refused(describe(tmp_path, "inv.ini"))


def test_upper_case_inventory_hosts_load_and_keep_lower_case_ids(tmp_path: Path) -> None:
    (tmp_path / "inv.ini").write_text("[web]\nWeb01 ansible_host=10.0.0.1\n", encoding="utf-8")
    loaded = load_file(describe(tmp_path, "inv.ini"))
    assert "Web01" in loaded.model.hosts


@pytest.mark.parametrize("name", ["--insecure-skip-tls-verify", "-oProxyCommand=x"])
def test_a_host_named_like_an_option_never_reaches_a_backend(tmp_path: Path, name: str) -> None:
    (tmp_path / "inv.ini").write_text(f"[web]\n{name}\n", encoding="utf-8")
    message = refused(describe(tmp_path, "inv.ini", spec="kubectl://{name}"))
    assert "fleet.yml" in message or "inv.ini" in message
