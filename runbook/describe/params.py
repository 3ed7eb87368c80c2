"""`{name}` placeholders in check fields, filled from `--param name=value` or the description's default.

The runbook's `healthcheck_master_replicas.sh --user test1` becomes `--param user=test1`: one
description checks whichever user the operator names. A value is data only (a compared value,
an argv element, a word in a command): it must be one plain token, never starting with '-',
with no space, quote or shell character, so it can become neither an option nor code.
"""

from __future__ import annotations

import re
from typing import Any

NAME = re.compile(r"[a-z_][a-z0-9_]*")
# `{user}`, not `{{json .State}}` (docker's Go templates) nor `${VAR}` (already interpolated).
PLACEHOLDER = re.compile(r"(?<![{$])\{([a-z_][a-z0-9_]*)\}(?!\})")
# A path (/srv/map/backups) or a URL's scheme and host (https://map.example.com) is a value too:
# '/' is no shell character, and the field it fills is validated by its kind after filling.
VALUE = re.compile(r"[A-Za-z0-9_/][A-Za-z0-9_.@+:=/-]{0,255}")


def parse(options: list[str]) -> dict[str, str]:
    """`--param` options as a mapping; ValueError naming the bad one."""
    params: dict[str, str] = {}
    for text in options:
        name, sep, value = text.partition("=")
        if not sep or not NAME.fullmatch(name):
            raise ValueError(f"--param {text!r}: expected NAME=VALUE (NAME in lowercase letters, digits, _)")
        check_value(name, value)
        params[name] = value
    return params


def check_value(name: str, value: str) -> None:
    if not VALUE.fullmatch(value):
        raise ValueError(
            f"--param {name}={value!r}: a value is one plain word (letters, digits, _ . @ + : = / -, "
            "not starting with '-', at most 256 characters): it is data, never an option or code"
        )


def fill(data: dict[str, Any], given: dict[str, str]) -> dict[str, Any]:
    """The description with every `{name}` in its checks replaced.

    A name comes from --param, else from the description's `params:` default; a placeholder with
    neither (or a null default) is a ValueError naming the check and its field.
    """
    declared = data.get("params") or {}
    if not isinstance(declared, dict):
        return data  # the schema says what is wrong with it
    # YAML gives `false` or `3` as such; a placeholder is filled with their text ("false", "3").
    values = {**{str(k): _text(v) for k, v in declared.items()}, **given}
    for name, value in values.items():
        if value is not None:
            check_value(name, str(value))
    checks = data.get("checks")
    if not isinstance(checks, dict):
        return data
    names = names_in(data)  # before filling: a placeholder of features counts as used too
    _refuse_missing(data, values)
    # Two system fields a site decides too: its compose project and the features it has
    # (`features: {https: "{https}"}`, the runbook's "если HTTPS").
    data = {
        **data,
        **{
            key: _substitute(data[key], values, key, "-")
            for key in SYSTEM_FIELDS
            if isinstance(data.get(key), str | dict)
        },
    }
    filled: dict[str, Any] = {}
    for kind, listed in checks.items():
        if not isinstance(listed, list):
            filled[kind] = listed
            continue
        filled[kind] = [
            _substitute(check, values, f"checks.{kind}[{index}]", _id_of(check))
            for index, check in enumerate(listed)
        ]
    used = {name: values.get(name) for name in names}
    return {**data, "checks": filled, "params": {**declared, **used}}


# System fields (beside the checks) whose `{name}` placeholders are filled.
SYSTEM_FIELDS = ("compose_project", "features")


def _text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, int | float) else value


def names_in(data: dict[str, Any]) -> set[str]:
    """The placeholder names the checks use (to refuse a --param no system uses)."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str):
            found.update(PLACEHOLDER.findall(node))

    walk(data.get("checks"))
    for key in SYSTEM_FIELDS:
        walk(data.get(key))
    return found


def _refuse_missing(data: dict[str, Any], values: dict[str, Any]) -> None:
    """One ValueError naming every placeholder without a value, each with its first user.

    A site filling in a new description learns all it has to give in one run, not one per run.
    """
    users: dict[str, list[str]] = {}

    def walk(node: Any, where: str, check_id: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{where}.{key}", check_id)
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}[{index}]", check_id)
        elif isinstance(node, str):
            for name in PLACEHOLDER.findall(node):
                if values.get(name) is None:
                    user = f"check {check_id!r} ({where})" if check_id != "-" else where
                    users.setdefault(name, []).append(user)

    for key in SYSTEM_FIELDS:
        walk(data.get(key), key, "-")
    for kind, listed in (data.get("checks") or {}).items():
        for index, check in enumerate(listed if isinstance(listed, list) else []):
            walk(check, f"checks.{kind}[{index}]", _id_of(check))
    if not users:
        return
    said = "; ".join(
        f"{where[0]} uses {{{name}}}" + (f" (and {len(where) - 1} more)" if len(where) > 1 else "")
        for name, where in users.items()
    )
    options = " ".join(f"--param {name}=VALUE" for name in users)
    raise ValueError(
        f"{said}, which {'has' if len(users) == 1 else 'have'} no value: "
        f"run with {options} or give {'it a default' if len(users) == 1 else 'them defaults'} under params:"
    )


def _id_of(check: Any) -> str:
    return str(check.get("id")) if isinstance(check, dict) and check.get("id") else "?"


def _substitute(node: Any, values: dict[str, Any], where: str, check_id: str) -> Any:
    if isinstance(node, dict):
        return {key: _substitute(value, values, f"{where}.{key}", check_id) for key, value in node.items()}
    if isinstance(node, list):
        return [_substitute(value, values, f"{where}[{i}]", check_id) for i, value in enumerate(node)]
    if not isinstance(node, str):
        return node

    def value_of(match: re.Match[str]) -> str:
        name = match.group(1)
        if values.get(name) is None:
            user = f"check {check_id!r} ({where})" if check_id != "-" else where
            raise ValueError(
                f"{user} uses {{{name}}}, which has no value: "
                f"run with --param {name}=VALUE or give it a default under params:"
            )
        return str(values[name])

    return PLACEHOLDER.sub(value_of, node)
