"""`{name}` placeholders in check fields, filled from `--param name=value` or the description's default.

The runbook's `healthcheck_master_replicas.sh --user test1` becomes `--param user=test1`: one
description checks whichever user the operator names. A value is data only (a compared value,
an argv element, a word in a command): it must be one plain token, never starting with '-',
with no space, quote or shell character, so it can become neither an option nor code.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
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
    places = list(_placed(data, checks))  # before filling: a placeholder of features counts as used too
    _refuse_missing(places, values)
    # Two system fields a site decides too: its compose project and the features it has
    # (`features: {https: "{https}"}`, the runbook's "если HTTPS").
    decided = {key: data[key] for key in SYSTEM_FIELDS if isinstance(data.get(key), str | dict)}
    data = {**data, **{key: _substitute(value, values) for key, value in decided.items()}}
    filled = {
        kind: [_substitute(check, values) for check in listed] if isinstance(listed, list) else listed
        for kind, listed in checks.items()
    }
    used = {name: values.get(name) for _, text in places for name in PLACEHOLDER.findall(text)}
    return {**data, "checks": filled, "params": {**declared, **used}}


# System fields (beside the checks) whose `{name}` placeholders are filled.
SYSTEM_FIELDS = ("compose_project", "features")


def _text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, int | float) else value


def _placed(data: dict[str, Any], checks: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(user, text) of every string that may hold a placeholder: the system fields a site decides
    and each check's fields; `user` names the check and field, as an error about it should."""
    for key in SYSTEM_FIELDS:
        if isinstance(data.get(key), str | dict):
            yield from _strings(data[key], key)
    for kind, listed in checks.items():
        for index, check in enumerate(listed if isinstance(listed, list) else []):
            for where, text in _strings(check, f"checks.{kind}[{index}]"):
                yield f"check {_id_of(check)!r} ({where})", text


def _strings(node: Any, where: str) -> Iterator[tuple[str, str]]:
    """(field path, text) of every string in `node`."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, f"{where}[{index}]")
    elif isinstance(node, str):
        yield where, node


def _refuse_missing(places: list[tuple[str, str]], values: dict[str, Any]) -> None:
    """One ValueError naming every placeholder without a value, each with its first user.

    A site filling in a new description learns all it has to give in one run, not one per run.
    """
    users: dict[str, list[str]] = {}
    for user, text in places:
        for name in PLACEHOLDER.findall(text):
            if values.get(name) is None:
                users.setdefault(name, []).append(user)
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


def _substitute(node: Any, values: dict[str, Any]) -> Any:
    """`node` with every placeholder filled (each has a value: _refuse_missing ran first)."""
    if isinstance(node, dict):
        return {key: _substitute(value, values) for key, value in node.items()}
    if isinstance(node, list):
        return [_substitute(value, values) for value in node]
    if not isinstance(node, str):
        return node
    return PLACEHOLDER.sub(lambda match: str(values[match.group(1)]), node)
