"""The demo's map of Noord-Holland: municipalities, their postcode areas and who lives there.

The hub itself only knows CBS codes and regions (``covenants/reference/municipalities_nh.csv``).
Generating believable traffic needs more: which 4-digit postcode areas belong to a
municipality (so an Alkmaar address starts with 18xx and a Zaanstad one with 15xx), roughly
how many people live there (busy towns send more signals), and whether it has a real rural
area with farms and barns (where the Schimmige Schuren approaches happen).

The postcode areas are the real ranges of the main places of each municipality, trimmed so no
two municipalities share a 4-digit area; all lie within 1000-2199 like the province's do.
Populations are rounded 2024 figures in thousands. The table is fixed data: the generator must
not depend on anything that can change under it, or the same seed would stop giving the same
file. A test checks it against the reference CSV.
"""

from __future__ import annotations

from dataclasses import dataclass
from random import Random

__all__ = ["MUNICIPALITIES", "RIEC_NH", "Municipality", "municipality", "pick_postcode4"]

RIEC_NH = "RIEC Noord-Holland"


@dataclass(frozen=True, slots=True)
class Municipality:
    """One municipality of the province as the demo needs it."""

    code: str
    """CBS code, ``GM`` + 4 digits."""
    name: str
    safety_region: str
    riec: str
    postcodes: tuple[tuple[int, int], ...]
    """Inclusive ranges of 4-digit postcode areas."""
    population_k: int
    """Inhabitants in thousands: weights how much traffic the municipality produces."""
    rural: int
    """0 (none) to 3 (mostly farmland): weights barn approaches and rural production sites."""

    @property
    def bag_prefix(self) -> str:
        """The 4-digit municipality number that starts the BAG ids issued by it."""
        return self.code[2:]

    @property
    def in_riec_nh(self) -> bool:
        return self.riec == RIEC_NH


_NHN, _ZW, _KEN = "Noord-Holland-Noord", "Zaanstreek-Waterland", "Kennemerland"
_AA, _GV = "Amsterdam-Amstelland", "Gooi en Vechtstreek"
_RIEC_AA, _RIEC_MN = "RIEC Amsterdam-Amstelland", "RIEC Midden-Nederland"


def _m(
    code: str, name: str, region: str, riec: str, postcodes: str, population_k: int, rural: int
) -> Municipality:
    """A table row; ``postcodes`` is written ``"1811-1829 1484-1489 1921"``."""
    ranges = []
    for part in postcodes.split():
        low, _, high = part.partition("-")
        ranges.append((int(low), int(high or low)))
    return Municipality(code, name, region, riec, tuple(ranges), population_k, rural)


MUNICIPALITIES: tuple[Municipality, ...] = (
    _m("GM0361", "Alkmaar", _NHN, RIEC_NH, "1811-1829", 111, 1),
    _m("GM0373", "Bergen (NH.)", _NHN, RIEC_NH, "1861-1873 1930-1935", 30, 2),
    _m("GM0383", "Castricum", _NHN, RIEC_NH, "1901-1906 1921", 37, 1),
    _m("GM0400", "Den Helder", _NHN, RIEC_NH, "1780-1789", 57, 0),
    _m("GM1980", "Dijk en Waard", _NHN, RIEC_NH, "1701-1707 1721-1724", 90, 2),
    _m("GM0498", "Drechterland", _NHN, RIEC_NH, "1606-1609 1616-1617", 20, 3),
    _m("GM0388", "Enkhuizen", _NHN, RIEC_NH, "1601-1602", 19, 0),
    _m("GM0399", "Heiloo", _NHN, RIEC_NH, "1850-1852", 25, 1),
    _m("GM1911", "Hollands Kroon", _NHN, RIEC_NH, "1761-1779", 50, 3),
    _m("GM0405", "Hoorn", _NHN, RIEC_NH, "1620-1625", 75, 0),
    _m("GM1598", "Koggenland", _NHN, RIEC_NH, "1633 1645-1648 1713", 24, 3),
    _m("GM0420", "Medemblik", _NHN, RIEC_NH, "1671-1689 1619", 48, 3),
    _m("GM0432", "Opmeer", _NHN, RIEC_NH, "1715-1718", 12, 3),
    _m("GM0441", "Schagen", _NHN, RIEC_NH, "1741-1759", 47, 3),
    _m("GM0532", "Stede Broec", _NHN, RIEC_NH, "1611-1613", 22, 1),
    _m("GM0448", "Texel", _NHN, RIEC_NH, "1791-1797", 14, 2),
    _m("GM0385", "Edam-Volendam", _ZW, RIEC_NH, "1131-1137", 37, 1),
    _m("GM0415", "Landsmeer", _ZW, RIEC_NH, "1121-1122", 12, 1),
    _m("GM0431", "Oostzaan", _ZW, RIEC_NH, "1511", 10, 1),
    _m("GM0439", "Purmerend", _ZW, RIEC_NH, "1441-1448 1461-1463", 93, 1),
    _m("GM0852", "Waterland", _ZW, RIEC_NH, "1141-1156 1452-1454", 17, 2),
    _m("GM0880", "Wormerland", _ZW, RIEC_NH, "1531 1545-1546", 17, 2),
    _m("GM0479", "Zaanstad", _ZW, RIEC_NH, "1501-1509 1521 1541-1544 1551 1561-1567", 160, 1),
    _m("GM0375", "Beverwijk", _KEN, RIEC_NH, "1940-1949", 43, 0),
    _m("GM0377", "Bloemendaal", _KEN, RIEC_NH, "2051-2052 2061 2106 2111-2121", 24, 0),
    _m("GM0392", "Haarlem", _KEN, RIEC_NH, "2011-2037", 165, 0),
    _m("GM0394", "Haarlemmermeer", _KEN, RIEC_NH, "2131-2153 1161 1171-1175", 160, 2),
    _m("GM0396", "Heemskerk", _KEN, RIEC_NH, "1961-1969", 40, 0),
    _m("GM0397", "Heemstede", _KEN, RIEC_NH, "2101-2105", 28, 0),
    _m("GM0450", "Uitgeest", _KEN, RIEC_NH, "1911", 14, 1),
    _m("GM0453", "Velsen", _KEN, RIEC_NH, "1971-1991 2071 2082", 69, 0),
    _m("GM0473", "Zandvoort", _KEN, RIEC_NH, "2041-2042", 17, 0),
    _m("GM0358", "Aalsmeer", _AA, _RIEC_AA, "1431-1433", 33, 1),
    _m("GM0362", "Amstelveen", _AA, _RIEC_AA, "1180-1189", 93, 0),
    _m("GM0363", "Amsterdam", _AA, _RIEC_AA, "1011-1109", 930, 0),
    _m("GM0384", "Diemen", _AA, _RIEC_AA, "1110-1113", 31, 0),
    _m("GM0437", "Ouder-Amstel", _AA, _RIEC_AA, "1191 1115", 15, 1),
    _m("GM0451", "Uithoorn", _AA, _RIEC_AA, "1420-1427", 31, 0),
    _m("GM0376", "Blaricum", _GV, _RIEC_MN, "1261-1262", 12, 0),
    _m("GM1942", "Gooise Meren", _GV, _RIEC_MN, "1398-1412", 60, 0),
    _m("GM0402", "Hilversum", _GV, _RIEC_MN, "1211-1223", 92, 0),
    _m("GM0406", "Huizen", _GV, _RIEC_MN, "1271-1277", 42, 0),
    _m("GM0417", "Laren", _GV, _RIEC_MN, "1251", 11, 0),
    _m("GM1696", "Wijdemeren", _GV, _RIEC_MN, "1231-1244 1394", 24, 1),
)
"""All 44 municipalities of the province, in the order of the reference CSV."""

_BY_CODE = {m.code: m for m in MUNICIPALITIES}


def municipality(code: str) -> Municipality:
    """The municipality with CBS ``code``; ``KeyError`` for one outside the province."""
    return _BY_CODE[code]


def pick_postcode4(rng: Random, place: Municipality) -> int:
    """A 4-digit postcode area of ``place``, each area of its ranges equally likely."""
    areas = [n for low, high in place.postcodes for n in range(low, high + 1)]
    return rng.choice(areas)
