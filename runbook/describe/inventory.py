"""Hosts and groups from an Ansible inventory file (INI or YAML), as a fleet already keeps them.

Only the parts a checklist needs: hosts with `ansible_host`, `ansible_user`, `ansible_port`;
groups with their hosts and `children` (flattened, so a group lists every host below it);
`all` and `ungrouped` as Ansible has them. Variables other than those three are ignored,
and nothing is evaluated: no Jinja, no dynamic inventory scripts, no plugins.

Why not ansible-core's InventoryManager (measured, ansible-core 2.19.14 on Python 3.11): 21 MB more
in this venv (its other dependencies are here already for paramiko), 0.16 s to import against
0.02 s, GPL-3.0, and it would evaluate Jinja in variables; for the few rules above, this reader.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook.describe.yamlfile import YamlFileError, read_text, read_yaml

CONNECTION_VARS = ("ansible_host", "ansible_user", "ansible_port")
DEFAULT_SPEC = "ssh://{user}@{address}:{port}"
# A fleet larger than this is split into shards (--shard K/N), each with its own inventory.
MAX_HOSTS = 20_000
# What each connection variable may hold: it lands in a host spec (ssh://user@address:port),
# so none of them may start with '-' or carry '@', '/', '?', spaces or quotes.
SHAPES = {
    "ansible_host": re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,252}"),
    "ansible_user": re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}"),
    "ansible_port": re.compile(r"[0-9]{1,5}"),
}


class InventoryError(ValueError):
    """The file is not an inventory this reader understands; the message says where."""


@dataclass
class Inventory:
    hosts: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> connection vars
    groups: dict[str, list[str]] = field(default_factory=dict)  # name -> hosts, children included

    def spec(self, host: str, template: str) -> str:
        """A host spec from the template, e.g. 'ssh://{user}@{address}:{port}'."""
        facts = self.hosts[host]
        return template.format(
            name=host,
            address=facts.get("ansible_host", host),
            user=facts.get("ansible_user", "root"),
            port=facts.get("ansible_port", "22"),
        )


def read(path: Path) -> Inventory:
    """The inventory, read with the description reader's limits (size, file type, depth, aliases)."""
    try:
        if path.suffix in {".yml", ".yaml"}:
            inventory = _from_yaml(path, read_yaml(path))
        else:
            inventory = _from_ini(path, read_text(path))
    except YamlFileError as exc:
        raise InventoryError(f"cannot read the inventory: {exc}") from None
    if len(inventory.hosts) > MAX_HOSTS:
        raise InventoryError(f"{path}: {len(inventory.hosts)} hosts; this reader takes at most {MAX_HOSTS}")
    return inventory


# ---- INI ------------------------------------------------------------------------------
def _from_ini(path: Path, text: str) -> Inventory:
    inventory = Inventory()
    members: dict[str, list[str]] = {}
    children: dict[str, list[str]] = {}
    section = "ungrouped"
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise InventoryError(f"{path}:{number}: a section header must end with ']': {line!r}")
            section = line[1:-1].strip()
            continue
        name, _, kind = section.partition(":")
        if kind == "vars":
            continue  # group variables: none of them is a connection fact of a single host
        if kind == "children":
            children.setdefault(name, []).append(line.split()[0])
            continue
        if kind:
            raise InventoryError(f"{path}:{number}: unknown section kind [{section}]")
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            raise InventoryError(f"{path}:{number}: {exc}") from None
        host, facts = words[0], _host_vars(path, number, words[1:])
        inventory.hosts.setdefault(host, {}).update(facts)
        members.setdefault(name, []).append(host)
    inventory.groups = _flatten(path, members, children)
    return inventory


def _host_vars(path: Path, number: int, words: list[str]) -> dict[str, str]:
    facts = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep:
            raise InventoryError(f"{path}:{number}: {word!r} is not key=value")
        if key in CONNECTION_VARS:
            facts[key] = _shaped(f"{path}:{number}", key, value)
    return facts


def _shaped(where: str, key: str, value: str) -> str:
    if not SHAPES[key].fullmatch(value):
        raise InventoryError(f"{where}: {key}={value!r} is not a plain host name, user or port")
    return value


# ---- YAML -----------------------------------------------------------------------------
def _from_yaml(path: Path, document: Any) -> Inventory:
    if not isinstance(document, dict):
        raise InventoryError(
            f"{path}: an inventory is a mapping of groups (all: {{hosts: ..., children: ...}})"
        )
    inventory = Inventory()
    members: dict[str, list[str]] = {}
    children: dict[str, list[str]] = {}

    def walk(name: str, node: Any, where: str) -> None:
        if node is None:
            node = {}
        if not isinstance(node, dict):
            raise InventoryError(f"{path}: {where}: a group is a mapping (hosts:, children:, vars:)")
        hosts = node.get("hosts") or {}
        if not isinstance(hosts, dict):
            raise InventoryError(f"{path}: {where}.hosts: a mapping of host name -> variables")
        for host, facts in hosts.items():
            if facts is not None and not isinstance(facts, dict):
                raise InventoryError(f"{path}: {where}.hosts.{host}: a mapping of variables")
            found = {
                key: _shaped(f"{path}: {where}.hosts.{host}", key, str(value))
                for key, value in (facts or {}).items()
                if key in CONNECTION_VARS
            }
            inventory.hosts.setdefault(str(host), {}).update(found)
            members.setdefault(name, []).append(str(host))
        for child, child_node in (node.get("children") or {}).items():
            children.setdefault(name, []).append(str(child))
            walk(str(child), child_node, f"{where}.children.{child}")

    for name, node in document.items():
        walk(str(name), node, str(name))
    inventory.groups = _flatten(path, members, children)
    return inventory


# ---- groups ---------------------------------------------------------------------------
def _flatten(
    path: Path, members: dict[str, list[str]], children: dict[str, list[str]]
) -> dict[str, list[str]]:
    """Every group with the hosts of its children, in first-seen order; `all` is every host."""
    flat: dict[str, list[str]] = {}

    def hosts_of(group: str, trail: tuple[str, ...]) -> list[str]:
        if group in trail:
            raise InventoryError(f"{path}: group {group!r} is its own child ({' > '.join((*trail, group))})")
        found = list(members.get(group, []))
        for child in children.get(group, []):
            found += hosts_of(child, (*trail, group))
        return list(dict.fromkeys(found))

    for group in [*members, *children]:
        flat[group] = hosts_of(group, ())
    every = list(dict.fromkeys(host for hosts in flat.values() for host in hosts))
    flat["all"] = list(dict.fromkeys([*flat.get("all", []), *every]))
    if not flat.get("ungrouped"):
        flat.pop("ungrouped", None)
    return flat


# ---- joined to a description --------------------------------------------------------------
def join(data: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Hosts and groups of the description's `inventory:` added to its own (which win on a clash)."""
    named = data.get("inventory")
    if not isinstance(named, dict) or not isinstance(named.get("file"), str):
        return data  # absent, or wrong: the schema says what is wrong with it
    file = Path(named["file"])
    found = read(file if file.is_absolute() else folder / file)
    template = str(named.get("spec", DEFAULT_SPEC))
    hosts = {name: found.spec(name, template) for name in found.hosts}
    hosts.update(data.get("hosts") or {})
    groups = {**found.groups, **(data.get("groups") or {})}
    return {**data, "hosts": hosts, "groups": groups}
