"""Strict I-JSON reading: one reading or a named refusal, the same on the fast and exact path."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.config import ROOT
from services.core import strict_json
from services.core.envelope import peek
from services.core.errors import SignalRejected

MAX = strict_json.MAX_EXACT_INTEGER


def code_of(raw: bytes | str) -> str | None:
    try:
        strict_json.loads(raw)
    except SignalRejected as exc:
        return exc.code
    return None


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b'{"a":1,"a":1}', "duplicate_member"),
        (b'{"a":{"b":[{"c":1,"c":2}]}}', "duplicate_member"),
        (b'[{"x":1},{"y":2,"y":3}]', "duplicate_member"),
        (b'{"a":1,"a":"\\u003a"}', "duplicate_member"),  # the ':' counts agree: re-read
        (b'{"a\\u003a":1,"a:":2}', "duplicate_member"),  # one name, spelt two ways
        (b'{"n":9007199254740991}', None),
        (b'{"n":-9007199254740991}', None),
        (b'{"n":9007199254740992}', "integer_out_of_range"),
        (b'{"n":-9007199254740992}', "integer_out_of_range"),
        (b'{"n":18446744073709551616}', "integer_out_of_range"),  # orjson: a float
        (b"[" + b"9" * 5000 + b"]", "integer_out_of_range"),
        (b'{"n":9.3e18}', None),  # a float, however large, is what it says
        (b'{"n":1.7976931348623157e308}', None),
        (b'{"n":1e400}', "number_out_of_range"),
        (b'{"n":-1e400}', "number_out_of_range"),
        (b'{"n":NaN}', "number_out_of_range"),
        (b'{"n":Infinity}', "number_out_of_range"),
        (b'{"s":"\\ud800"}', "invalid_unicode"),
        (b'{"s":"\\udc00\\ud800"}', "invalid_unicode"),
        (b'{"\\udfff":1}', "invalid_unicode"),
        (b'{"s":"\\ud83d\\ude00"}', None),  # a proper pair
        (b'{"s":"\xff"}', "invalid_unicode"),
        (b'{"s":"\xed\xa0\x80"}', "invalid_unicode"),  # a surrogate written as UTF-8
        (b"\xef\xbb\xbf{}", "unparseable"),
        (b'{"a":1,}', "unparseable"),
        (b"[" * 2000 + b"]" * 2000, "unparseable"),
        (b'{"a":"x:y","b":"::"}', None),
    ],
)
def test_each_rule_has_its_code(raw: bytes, code: str | None):
    assert code_of(raw) == code
    if code is None:
        assert strict_json.loads(raw) == json.loads(raw)


def test_a_str_holding_a_lone_surrogate_is_invalid_unicode():
    assert code_of('{"s":"\ud800"}') == "invalid_unicode"


def test_reasons_name_only_envelope_attributes_never_other_names_or_values():
    with pytest.raises(SignalRejected) as info:
        strict_json.loads(b'{"source":"pwn","source":"liander"}')
    assert "'source'" in info.value.message and "pwn" not in info.value.message
    with pytest.raises(SignalRejected) as info:
        strict_json.loads(b'{"data":{"871685900000000011":1,"871685900000000011":2}}')
    assert "871" not in info.value.message
    with pytest.raises(SignalRejected) as info:
        strict_json.loads(b'{"n":9007199254740993}')
    assert "9007199254740993" not in info.value.message


def test_peek_reads_no_id_from_an_envelope_that_names_two():
    assert peek(b'{"id":"a-1","source":"liander","id":"b-2"}') == (None, "liander")
    assert peek(b'{"id":"a-1","source":"liander","n":1e400,"m":99999999999999999999}') == (
        "a-1",
        "liander",
    )


def test_the_example_traffic_is_read_on_the_fast_path(monkeypatch: pytest.MonkeyPatch):
    """Clean input never reaches the exact (slow) reader."""
    lines = (ROOT / "examples" / "signals.jsonl").read_bytes().splitlines()

    def slow(data: bytes) -> Any:
        raise AssertionError("clean input took the slow path")

    readable = 0
    for line in lines:
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # the example's deliberately broken lines
        assert strict_json.plain(line, value)
        readable += 1
    monkeypatch.setattr(strict_json, "exact", slow)
    for line in lines[:200]:
        try:
            orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        strict_json.loads(line)
    assert readable >= 2990


# --- the fast path agrees with a plain reference on any JSON text ---------------------------

names = st.sampled_from(["a", "b", "id", "a:", "a\\u003a", "\\u0061", "x\\\\"])
scalars = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["1.5", "-0.0", "1e400", "2.5e-3", "true", "null", '"x:y"', '"\\u003a"']),
    st.sampled_from(['"\\ud800"', '"\\ud83d\\ude00"', '"plain"', '":"']),
)


def values(depth: int = 3) -> st.SearchStrategy[str]:
    if depth == 0:
        return scalars
    inner = values(depth - 1)
    objects = st.lists(st.tuples(names, inner), max_size=4).map(
        lambda pairs: "{" + ",".join(f'"{k}":{v}' for k, v in pairs) + "}"
    )
    arrays = st.lists(inner, max_size=3).map(lambda items: "[" + ", ".join(items) + "]")
    return st.one_of(scalars, objects, arrays)


def reference(text: str) -> set[str]:
    """Every rule ``text`` breaks, found by a plain reader that keeps all members."""
    broken: set[str] = set()

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        if len({k for k, _ in items}) != len(items):
            broken.add("duplicate_member")
        for key, _ in items:
            if re.search("[\ud800-\udfff]", key):
                broken.add("invalid_unicode")
        return dict(items)

    def integer(literal: str) -> int:
        if abs(int(literal)) > MAX:
            broken.add("integer_out_of_range")
        return 0

    def number(literal: str) -> float:
        if float(literal) in (float("inf"), float("-inf")):
            broken.add("number_out_of_range")
        return 0.0

    def strings(value: Any) -> None:
        if isinstance(value, str) and re.search("[\ud800-\udfff]", value):
            broken.add("invalid_unicode")
        elif isinstance(value, dict):
            for item in value.values():
                strings(item)
        elif isinstance(value, list):
            for item in value:
                strings(item)

    strings(json.loads(text, object_pairs_hook=pairs, parse_int=integer, parse_float=number))
    return broken


@settings(max_examples=400, deadline=None)
@given(values())
def test_loads_refuses_exactly_what_breaks_a_rule(text: str):
    broken = reference(text)
    raw = text.encode()
    if broken:
        with pytest.raises(SignalRejected) as info:
            strict_json.loads(raw)
        assert info.value.code in broken
    else:
        assert strict_json.loads(raw) == json.loads(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(values(2), min_size=1, max_size=5))
def test_items_refuses_each_bad_item_alone(texts: list[str]):
    single, found = strict_json.items(("[" + ", ".join(texts) + "]").encode())
    assert not single and len(found) == len(texts)
    for text, item in zip(texts, found, strict=True):
        broken = reference(text)
        if broken:
            assert isinstance(item, SignalRejected) and item.code in broken
        else:
            assert item == json.loads(text)
