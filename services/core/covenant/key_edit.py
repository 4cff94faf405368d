"""Register a partner key in a covenant file's text, keeping every comment and the layout.

``schakel covenant add-key`` uses this: the new entry is inserted as lines of its own, at the
end of the party's ``public_keys`` list (or as a new ``public_keys:`` list at the end of the
party), indented like its neighbours; no other byte of the file changes. The position comes
from PyYAML's node marks, so comments, quoting and flow-style neighbours stay as written.
A party written in flow style (``liander: {name: …}``) or a flow-style key list is refused
with the fix, as inserting into it would mean rewriting the author's lines.
"""

from __future__ import annotations

from datetime import date

import yaml

from services.core.errors import SchakelError


class KeyEditError(SchakelError):
    """The key cannot be inserted into this covenant text; the message says why and the fix."""


def add_key_text(
    text: str,
    partner: str,
    key_id: str,
    ed25519: str,
    *,
    valid_from: date | None = None,
    valid_until: date | None = None,
) -> str:
    """``text`` with ``{id, ed25519, valid_from?, valid_until?}`` appended to the public keys
    of party ``partner``."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise KeyEditError(f"the covenant file is not valid YAML: {exc}") from None
    party = _value(_value(root, "parties", "the covenant"), partner, "parties")
    if not isinstance(party, yaml.MappingNode) or party.flow_style:
        raise KeyEditError(
            f"party {partner!r} is written in flow style ({{…}}); write it as a block mapping "
            "(one key per line) and run the command again"
        )
    lines = text.splitlines(keepends=True)
    entry = [f"id: {key_id}", f'ed25519: "{ed25519}"']
    if valid_from is not None:
        entry.append(f"valid_from: {valid_from.isoformat()}")
    if valid_until is not None:
        entry.append(f"valid_until: {valid_until.isoformat()}")
    keys = _find(party, "public_keys")
    if keys is None:
        column = party.value[0][0].start_mark.column
        block = [" " * column + "public_keys:\n", *_item(entry, column + 2)]
        at = _end_line(party, lines)
    elif isinstance(keys, yaml.SequenceNode) and not keys.flow_style and keys.value:
        column = keys.start_mark.column
        block = _item(entry, column)
        at = _end_line(keys, lines)
    else:
        raise KeyEditError(
            f"the public_keys of {partner!r} are written in flow style ([…]); write them as a "
            "block list (one `- id: …` entry per key) and run the command again"
        )
    if at > 0 and not lines[at - 1].endswith("\n"):
        lines[at - 1] += "\n"
    return "".join(lines[:at] + block + lines[at:])


def _item(entry: list[str], column: int) -> list[str]:
    pad = " " * column
    return [f"{pad}- {entry[0]}\n", *(f"{pad}  {line}\n" for line in entry[1:])]


def _find(node: yaml.Node, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                found: yaml.Node = value
                return found
    return None


def _value(node: yaml.Node | None, key: str, where: str) -> yaml.Node:
    found = _find(node, key) if node is not None else None
    if found is None:
        raise KeyEditError(f"{where} has no {key!r}; is this a covenant file?")
    return found


def _end_line(node: yaml.Node, lines: list[str]) -> int:
    """Index of the line after ``node``'s last value (comments and blank lines after it stay
    below the insertion)."""
    last = _last_scalar_or_flow(node)
    end = last.end_mark
    # a value ending at column 0 ended with the line before (block scalars, a trailing newline)
    return end.line if end.column == 0 else min(end.line + 1, len(lines))


def _last_scalar_or_flow(node: yaml.Node) -> yaml.Node:
    while isinstance(node, yaml.CollectionNode) and not node.flow_style and node.value:
        last = node.value[-1]
        node = last[1] if isinstance(node, yaml.MappingNode) else last
    return node
