"""The demo generator: deterministic, valid by the hub's own rules, and honest ground truth."""

from __future__ import annotations

import csv
import re
import statistics
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from random import Random
from typing import Any

import orjson
import pytest
import yaml
from typer.testing import CliRunner

from services.cli.demo import app as demo_app
from services.core.errors import SignalRejected
from services.core.identifiers import ean_check_digit, normalise
from services.core.schema_registry import SchemaRegistry, default_schema_dir
from services.core.signal import accept_bytes
from services.core.signing import canonical_envelope, parse_signature, verifies
from services.demo import (
    MALFORMED_KINDS,
    DemoTraffic,
    generate,
    planted_count,
    stream,
    to_jsonl,
    truth,
)
from services.demo.geography import MUNICIPALITIES, municipality
from services.demo.identities import (
    LocationFactory,
    kvk_number,
    nl_iban,
    plate,
    postcode_letters,
    write_address,
    write_bag,
    write_ean,
    write_postcode,
)
from services.demo.keys import demo_key_id, demo_private_key
from services.demo.timing import TimeStyle, amsterdam_offset, rfc3339

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "signals.jsonl"
START = datetime(2026, 9, 1, tzinfo=UTC)
REGISTRY = SchemaRegistry.load(default_schema_dir())
LOCATION_FIELDS = {"address": "address", "delivery_address": "address", "ean": "ean", "bag": "bag"}

EXPECTED_REJECTION = {
    "invalid_json": "unparseable",
    "truncated": "unparseable",
    "bad_ean_check_digit": "invalid_identifier",
    "unknown_signal_type": "unknown_type",
    "missing_required_field": "schema_violation",
    "wrong_type": "schema_violation",
    "invalid_postcode": "invalid_identifier",
    "time_without_offset": "invalid_envelope",
    "unknown_envelope_attribute": "invalid_envelope",
}


def _covenant_parties() -> tuple[dict[str, tuple[str, set[str]]], set[tuple[str, str]]]:
    """Partner id -> (kind, roles), and the (source, type) pairs some rule names."""
    parties: dict[str, tuple[str, set[str]]] = {}
    allowed: set[tuple[str, str]] = set()
    for file in sorted((ROOT / "covenants").rglob("*.yaml")):
        document = yaml.safe_load(file.read_text(encoding="utf-8"))
        for party_id, party in document.get("parties", {}).items():
            kind, roles = parties.get(party_id, (party["kind"], set()))
            parties[party_id] = (kind, roles | set(party["roles"]))
        for rule in document.get("rules", []):
            allowed |= {(source, t) for source in rule["from"] for t in rule["types"]}
    return parties, allowed


PARTIES, RULE_SOURCES = _covenant_parties()


@pytest.fixture(scope="module")
def traffic() -> DemoTraffic:
    return generate(1200, seed=11, start=START, days=60, malformed_ratio=0.02)


@pytest.fixture(scope="module")
def lines(traffic: DemoTraffic) -> list[bytes]:
    return to_jsonl(traffic).splitlines()


def _by_id(traffic: DemoTraffic) -> dict[str, dict[str, Any]]:
    return {envelope["id"]: envelope for envelope in traffic.signals}


def _kind(envelope: dict[str, Any]) -> str:
    return PARTIES[envelope["source"]][0]


def _location_ids(envelope: dict[str, Any]) -> dict[str, str]:
    """Canonical address / EAN / BAG named by a signal, by identifier kind."""
    data = envelope["data"]
    return {kind: normalise(kind, data[f]) for f, kind in LOCATION_FIELDS.items() if f in data}


# --- determinism ---------------------------------------------------------------------------


def test_same_arguments_give_the_same_bytes() -> None:
    first = to_jsonl(generate(600, seed=5, start=START, days=30, malformed_ratio=0.05))
    again = to_jsonl(generate(600, seed=5, start=START, days=30, malformed_ratio=0.05))
    other = to_jsonl(generate(600, seed=6, start=START, days=30, malformed_ratio=0.05))
    assert first == again
    assert first != other


@pytest.fixture(scope="module")
def example() -> DemoTraffic:
    return generate(3000, seed=2026, start=START, days=60, malformed_ratio=0.01)


def test_example_file_is_exactly_what_the_documented_command_makes(example: DemoTraffic) -> None:
    assert EXAMPLE.read_bytes() == to_jsonl(example)
    readme = (ROOT / "examples" / "README.md").read_text(encoding="utf-8")
    assert "--count 3000 --seed 2026 --start 2026-09-01T00:00:00Z --days 60" in readme
    assert "--malformed-ratio 0.01" in readme


def test_example_readme_counts_are_current(example: DemoTraffic) -> None:
    readme = (ROOT / "examples" / "README.md").read_text(encoding="utf-8")
    table = dict(re.findall(r"^\| `([a-z0-9_.-]+)`[^|]*\|(?: [^|]+ \|)? (\d+) \|", readme, re.M))
    counted = Counter(e["type"] for e in example.signals)
    counted.update(e["source"] for e in example.signals)
    counted.update(m.kind for m in example.malformed)
    assert {name: int(n) for name, n in table.items()} == dict(counted)
    assert f"**Planted production sites: {len(example.planted)}**" in readme
    assert f"**Decoys: {len(example.decoys)}**" in readme
    assert f"**Broken lines: {len(example.malformed)}**" in readme


def test_the_partner_example_is_the_first_hundred_good_signals_of_liander() -> None:
    """examples/liander.jsonl (what the banner of `schakel up` publishes) is cut from the
    example file exactly as its README says."""
    good = []
    for line in EXAMPLE.read_bytes().splitlines(keepends=True):
        try:
            accept_bytes(line, REGISTRY, expected_source="liander")
        except SignalRejected:
            continue
        good.append(line)
    assert (ROOT / "examples" / "liander.jsonl").read_bytes() == b"".join(good[:100])
    readme = (ROOT / "examples" / "README.md").read_text(encoding="utf-8")
    assert "`liander.jsonl` holds the first 100 valid signals of `liander`" in readme


# --- validity ------------------------------------------------------------------------------


def test_every_good_line_is_accepted_by_the_hub(traffic: DemoTraffic, lines: list[bytes]) -> None:
    broken = dict(traffic.malformed_line_numbers())
    accepted = 0
    for number, line in enumerate(lines, 1):
        if number in broken:
            continue
        signal = accept_bytes(line, REGISTRY)
        assert signal.envelope.dataschema == signal.schema.uri
        accepted += 1
    assert accepted == len(traffic.signals) == 1200
    assert len(lines) == 1200 + len(traffic.malformed)


@pytest.mark.parametrize("kind", sorted(MALFORMED_KINDS))
def test_each_broken_kind_is_rejected_for_its_reason(
    kind: str, traffic: DemoTraffic, lines: list[bytes]
) -> None:
    numbers = [number for number, k in traffic.malformed_line_numbers() if k == kind]
    assert numbers, f"no {kind} line generated"
    for number in numbers:
        with pytest.raises(SignalRejected) as rejected:
            accept_bytes(lines[number - 1], REGISTRY)
        assert rejected.value.code == EXPECTED_REJECTION[kind]


def test_broken_lines_are_one_percent_and_every_kind_from_500_signals() -> None:
    assert set(EXPECTED_REJECTION) == set(MALFORMED_KINDS)
    small = generate(500, seed=3, start=START, malformed_ratio=0.001)
    assert {m.kind for m in small.malformed} == set(MALFORMED_KINDS)
    assert len(generate(2000, seed=3, start=START, malformed_ratio=0.01).malformed) == 20
    assert generate(800, seed=3, start=START).malformed == []


def test_envelopes_are_cloudevents_in_time_order_within_the_window(traffic: DemoTraffic) -> None:
    keys = {"specversion", "id", "source", "type", "time", "dataschema", "datacontenttype", "data"}
    times = []
    for envelope in traffic.signals:
        assert set(envelope) == keys | {"signature"}
        assert envelope["dataschema"] == f"urn:schakel:signal:{envelope['type']}"
        assert envelope["datacontenttype"] == "application/json"
        times.append(datetime.fromisoformat(envelope["time"]))
    assert times == sorted(times)
    assert times[0] >= START
    assert times[-1] < START + timedelta(days=60)
    assert len({e["id"] for e in traffic.signals}) == len(traffic.signals)
    endings = Counter(e["time"][-6:] if e["time"][-1] != "Z" else "Z" for e in traffic.signals)
    assert {"Z", "+02:00", "+01:00"} <= set(endings)  # UTC and Dutch summer and winter time


# --- sources and mix -----------------------------------------------------------------------


def test_sources_are_covenant_suppliers_of_an_allowed_kind(traffic: DemoTraffic) -> None:
    ruled_types = {t for _, t in RULE_SOURCES}
    for envelope in traffic.signals:
        kind, roles = PARTIES[envelope["source"]]
        assert "supplier" in roles
        assert kind in REGISTRY.get(envelope["type"]).partner_kinds
        if envelope["type"] in ruled_types:  # a type no rule shares yet is withheld from all
            assert (envelope["source"], envelope["type"]) in RULE_SOURCES


def test_mix_follows_the_partners_real_volumes(traffic: DemoTraffic) -> None:
    share = {
        t: n / len(traffic.signals) for t, n in Counter(e["type"] for e in traffic.signals).items()
    }
    indicators = {
        t
        for t in REGISTRY.types()
        # outcomes come apart; hand-overs come from the RIEC's workplace, not the demo
        if not (REGISTRY.get(t).outcome or REGISTRY.get(t).approval or REGISTRY.get(t).handover)
    }
    assert set(share) == indicators - {"hub.stacked_location_alert.v1"}
    assert 0.25 <= share["energy.consumption_anomaly.v1"] <= 0.40
    order = [
        "energy.consumption_anomaly.v1",
        "housing.observation.v1",
        "water.abnormal_use.v1",
        "residents.anonymous_tip.v1",
    ]
    assert [share[t] for t in order] == sorted((share[t] for t in order), reverse=True)
    for rare in ("water.sewer_contamination_spike.v1", "chemicals.precursor_transaction.v1"):
        assert 0.01 <= share[rare] <= 0.06
    tampering = share["energy.meter_tampering.v1"] + share["energy.illegal_connection.v1"]
    assert tampering < share["rural.barn_rental_approach.v1"] < share["waste.drug_waste_dumping.v1"]


def test_background_scores_are_mostly_low_and_planted_ones_high(traffic: DemoTraffic) -> None:
    planted_ids = {i for p in traffic.planted for i in p.signal_ids}
    background, planted = [], []
    for envelope in traffic.signals:
        if envelope["type"] == "energy.consumption_anomaly.v1":
            score = envelope["data"]["score"]
            (planted if envelope["id"] in planted_ids else background).append(score)
    assert statistics.median(background) < 0.4
    assert 0 < sum(s >= 0.8 for s in background) / len(background) < 0.1  # some false alarms
    assert min(planted) >= 0.8


def test_addresses_lie_in_their_municipality(traffic: DemoTraffic) -> None:
    for envelope in traffic.signals:
        data = envelope["data"]
        raw = data.get("address") or data.get("delivery_address") or data.get("postcode")
        if raw is None and "postcode4" not in data:
            continue  # a tip that names only the municipality
        area = int(data["postcode4"]) if "postcode4" in data else int(raw.strip()[:4])
        ranges = municipality(data["municipality"]).postcodes
        assert any(low <= area <= high for low, high in ranges)


# --- ground truth --------------------------------------------------------------------------


def test_planted_sites_are_reported_by_three_kinds_under_one_identity(
    traffic: DemoTraffic,
) -> None:
    signals = _by_id(traffic)
    assert len(traffic.planted) == planted_count(1200) == 8
    assert {p.kind for p in traffic.planted} == {"cannabis", "synthetic"}
    spellings: set[str] = set()
    for site in traffic.planted:
        kinds = {_kind(signals[i]) for i in site.signal_ids}
        assert len(kinds) >= 3
        assert tuple(sorted(kinds)) == site.partner_kinds
        expected = {"address": site.address, "ean": site.ean, "bag": site.bag}
        for signal_id in site.signal_ids:
            envelope = signals[signal_id]
            named = _location_ids(envelope)
            assert "address" in named
            assert named == {k: expected[k] for k in named}
            assert envelope["data"]["municipality"] == site.municipality
            spellings.add(envelope["data"].get("address") or envelope["data"]["delivery_address"])
        for signal_id in site.nearby_signal_ids:
            data = signals[signal_id]["data"]
            area = data.get("postcode4") or normalise("postcode", data["postcode"])[:4]
            assert area == site.address[:4]
        assert municipality(site.municipality).in_riec_nh
    canonical = {site.address for site in traffic.planted}
    assert len(spellings - canonical) > len(traffic.planted)  # mostly not written canonically


def test_nothing_else_names_a_planted_site(traffic: DemoTraffic) -> None:
    planted_ids = {i for p in traffic.planted for i in p.signal_ids}
    identities = {v for p in traffic.planted for v in (p.address, p.ean, p.bag)}
    for envelope in traffic.signals:
        if envelope["id"] not in planted_ids:
            assert identities.isdisjoint(_location_ids(envelope).values())


def test_decoys_look_like_stacks_but_are_weak_or_single_kind(traffic: DemoTraffic) -> None:
    signals = _by_id(traffic)
    assert len(traffic.decoys) == 12
    assert {d.reason for d in traffic.decoys} == {"same_kind_repeated", "two_kinds_weak"}
    for decoy in traffic.decoys:
        kinds = {_kind(signals[i]) for i in decoy.signal_ids}
        assert len(kinds) == (1 if decoy.reason == "same_kind_repeated" else 2)
        for signal_id in decoy.signal_ids:
            data = signals[signal_id]["data"]
            assert normalise("address", data["address"]) == decoy.address
            assert data.get("score", 0.0) < 0.5


def test_truth_document_points_at_the_broken_lines(
    traffic: DemoTraffic, lines: list[bytes]
) -> None:
    document = orjson.loads(orjson.dumps(truth(traffic)))
    assert "TEST DATA" in document["warning"]
    assert len(document["planted"]) == len(traffic.planted)
    for entry in document["malformed"]:
        with pytest.raises(SignalRejected):
            accept_bytes(lines[entry["line"] - 1], REGISTRY)


def test_planted_count_rule() -> None:
    assert [planted_count(n) for n in (0, 50, 150, 999, 1000, 3000)] == [0, 0, 1, 7, 7, 20]
    assert planted_count(1000) >= 5


# --- stream --------------------------------------------------------------------------------


def test_stream_is_lazy_deterministic_and_crosses_chunks() -> None:
    first = list(islice(stream(9, START, signals_per_day=20, chunk_days=2), 100))
    again = list(islice(stream(9, START, signals_per_day=20, chunk_days=2), 100))
    assert first == again
    times = [datetime.fromisoformat(envelope["time"]) for _, envelope in first]
    assert times == sorted(times)
    assert times[-1] >= START + timedelta(days=4)  # 40 signals per chunk: several chunks
    for partner, envelope in first:
        assert partner == envelope["source"]
        accept_bytes(orjson.dumps(envelope), REGISTRY)


# --- building blocks -----------------------------------------------------------------------


def test_municipality_table_matches_the_reference_data() -> None:
    with (ROOT / "covenants" / "reference" / "municipalities_nh.csv").open(encoding="utf-8") as f:
        rows = {row["gm_code"]: row for row in csv.DictReader(f)}
    assert [m.code for m in MUNICIPALITIES] == list(rows)
    seen: set[int] = set()
    for place in MUNICIPALITIES:
        assert place.name == rows[place.code]["gemeentenaam"]
        assert place.safety_region == rows[place.code]["veiligheidsregio"]
        assert place.riec == rows[place.code]["riec"]
        areas = {n for low, high in place.postcodes for n in range(low, high + 1)}
        assert all(1000 <= n <= 2199 for n in areas)
        assert seen.isdisjoint(areas), place.name
        seen |= areas
    first_digits = {"GM0361": "18", "GM0479": "15", "GM0392": "20", "GM0400": "17", "GM0363": "10"}
    for code, prefix in first_digits.items():
        assert all(str(low).startswith(prefix) for low, _ in municipality(code).postcodes)


def test_identifiers_are_valid_in_every_spelling() -> None:
    rng = Random(1)
    factory = LocationFactory(rng)
    for place in MUNICIPALITIES:
        for rural in (False, True):
            site = factory.new(place, rural=rural)
            assert site.ean.startswith("871")
            assert ean_check_digit(site.ean[:17]) == site.ean[17]
            assert site.bag.startswith(place.code[2:] + "01")
            assert len(site.bag) == 16
            for style in range(7):
                assert normalise("address", write_address(rng, site, style)) == site.address
            assert normalise("ean", write_ean(rng, site.ean)) == site.ean
            assert normalise("bag", write_bag(rng, site.bag)) == site.bag
            assert normalise("postcode", write_postcode(rng, site.postcode)) == site.postcode
    for _ in range(300):
        assert postcode_letters(rng) not in {"SA", "SD", "SS"}
        assert normalise("iban", nl_iban(rng)).startswith("NL")
        assert len(normalise("kvk", kvk_number(rng))) == 8
        assert len(normalise("plate", plate(rng))) == 6


def test_dutch_local_time_follows_the_eu_summer_time_rule() -> None:
    last_summer = datetime(2026, 10, 25, 0, 59, tzinfo=UTC)
    assert amsterdam_offset(last_summer) == timedelta(hours=2)
    assert amsterdam_offset(last_summer + timedelta(minutes=1)) == timedelta(hours=1)
    assert amsterdam_offset(datetime(2026, 3, 29, 1, 0, tzinfo=UTC)) == timedelta(hours=2)
    assert (
        rfc3339(datetime(2026, 9, 1, 12, tzinfo=UTC), TimeStyle.LOCAL)
        == "2026-09-01T14:00:00+02:00"
    )
    assert (
        rfc3339(datetime(2026, 9, 1, 12, tzinfo=UTC), TimeStyle.UTC_MS)
        == "2026-09-01T12:00:00.000Z"
    )


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        generate(10, seed=1, start=datetime(2026, 9, 1))
    with pytest.raises(ValueError, match="negative"):
        generate(-1, seed=1, start=START)
    with pytest.raises(ValueError, match="between 0 and 1"):
        generate(10, seed=1, start=START, malformed_ratio=1.5)


# --- CLI -----------------------------------------------------------------------------------


def test_cli_writes_signals_and_truth_with_a_warning(tmp_path: Path) -> None:
    out, truth_file = tmp_path / "signals.jsonl", tmp_path / "truth.json"
    args = [
        "generate", "--count", "300", "--seed", "4", "--start", "2026-09-01T00:00:00+02:00",
        "--days", "20", "--malformed-ratio", "0.02", "--out", str(out), "--truth", str(truth_file),
    ]  # fmt: skip
    result = CliRunner().invoke(demo_app, args)
    assert result.exit_code == 0, result.output
    start = datetime(2026, 8, 31, 22, tzinfo=UTC)
    expected = generate(300, seed=4, start=start, days=20, malformed_ratio=0.02)
    assert out.read_bytes() == to_jsonl(expected)
    assert orjson.loads(truth_file.read_bytes())["planted"][0]["address"]
    assert "TEST DATA" in result.output


def test_cli_refuses_a_start_without_offset() -> None:
    result = CliRunner().invoke(demo_app, ["generate", "--start", "2026-09-01T00:00:00"])
    assert result.exit_code != 0


def test_every_good_signal_is_signed_with_its_partners_test_key(traffic: DemoTraffic) -> None:
    public = {}
    for envelope in traffic.signals:
        source = envelope["source"]
        if source not in public:
            public[source] = demo_private_key(source).public_key()
        key_id, signature = parse_signature(envelope["signature"])
        assert key_id == demo_key_id(source)
        assert verifies(public[source], signature, canonical_envelope(envelope))
    assert len(public) == 12
