"""Fake but valid identifiers, and the many ways partners write the same one.

Everything made here passes :func:`services.core.identifiers.normalise`: postcodes with letters
PostNL uses (never SA, SD or SS), EAN-18 grid ids with a correct GS1 check digit, 16-digit BAG
verblijfsobject ids, Dutch licence plates in the current side codes, 8-digit KvK numbers and
Dutch IBANs with a correct mod-97 check. The values are random, so they may by chance belong
to a real address or company; they are test data and must only ever meet test systems.

Stacking only works if the hub folds different spellings of one thing into one canonical
string, so :func:`write_address`, :func:`write_ean`, :func:`write_bag` and the other writers
vary the spelling the way real partner systems and call-takers do (``1811 ab 12-a``,
``1811AB 12A``, ``1811AB12A``, grouped EANs, plates without dashes).
"""

from __future__ import annotations

from dataclasses import dataclass
from random import Random

from services.core.identifiers import ean_check_digit, normalise
from services.demo.geography import Municipality, pick_postcode4

__all__ = [
    "Location",
    "LocationFactory",
    "company_name",
    "kvk_number",
    "nl_iban",
    "plate",
    "postcode_letters",
    "write_address",
    "write_bag",
    "write_ean",
    "write_postcode",
]

# PostNL leaves F, I, O, Q, U and Y out of the letter pair; SA, SD and SS are never issued.
_POSTCODE_LETTERS = "ABCDEGHJKLMNPRSTVWXZ"
_FORBIDDEN_PAIRS = frozenset({"SA", "SD", "SS"})
# Liander's EAN range (GS1 company prefix 871687...).
LIANDER_EAN_PREFIX = "871687"
# Letters on Dutch plates: no vowels, no C or Q (and W/Y are not used either).
_PLATE_LETTERS = "BDFGHJKLMNPRSTVXZ"
# Side codes 7 to 14 (issued since 1999), L = letter, D = digit.
_PLATE_SIDE_CODES = (
    "DD-LLL-D", "D-LLL-DD", "LL-DDD-L", "L-DDD-LL",
    "LLL-DD-L", "L-DD-LLL", "D-LL-DDD", "DDD-LL-D",
)  # fmt: skip
_BANKS_WITH_ELEVEN_TEST = ("ABNA", "RABO", "SNSB", "ASNB", "RBRB")
_BANKS_WITHOUT = ("INGB", "TRIO", "BUNQ", "KNAB")


def postcode_letters(rng: Random) -> str:
    """Two postcode letters as issued (never SA, SD or SS)."""
    while True:
        pair = rng.choice(_POSTCODE_LETTERS) + rng.choice(_POSTCODE_LETTERS)
        if pair not in _FORBIDDEN_PAIRS:
            return pair


@dataclass(frozen=True, slots=True)
class Location:
    """A real-looking address with its grid connection and BAG object.

    ``postcode`` and ``addition`` are canonical (``1811AB``, ``A`` / ``1`` / ``BIS`` / empty);
    :attr:`address` is the canonical address exactly as the hub's normaliser produces it.
    """

    municipality: Municipality
    postcode: str
    number: int
    addition: str
    ean: str
    bag: str
    rural: bool

    @property
    def address(self) -> str:
        return normalise("address", f"{self.postcode} {self.number} {self.addition}".strip())

    @property
    def postcode4(self) -> str:
        return self.postcode[:4]


class LocationFactory:
    """Makes locations whose address, EAN and BAG id are each used by no other location.

    Background noise must not land on a planted location by accident (or the ground truth
    would be wrong), so every location the generator invents comes from one factory.
    """

    def __init__(self, rng: Random) -> None:
        self._rng = rng
        self._addresses: set[str] = set()
        self._eans: set[str] = set()
        self._bags: set[str] = set()

    def new(self, place: Municipality, *, rural: bool = False) -> Location:
        """A fresh location in ``place``; ``rural`` gives farm-style numbers, no additions."""
        rng = self._rng
        while True:
            postcode = f"{pick_postcode4(rng, place)}{postcode_letters(rng)}"
            if rural:
                number, addition = rng.randrange(1, 400), ""
            else:
                number = min(int(rng.expovariate(1 / 40)) + 1, 999)
                addition = _addition(rng) if rng.random() < 0.15 else ""
            location = Location(
                place, postcode, number, addition, self._ean(), self._bag(place), rural
            )
            if location.address not in self._addresses:
                self._addresses.add(location.address)
                return location

    def nearby(self, location: Location) -> str:
        """A different postcode (canonical) in the same 4-digit area: where waste gets dumped."""
        while True:
            postcode = location.postcode4 + postcode_letters(self._rng)
            if postcode != location.postcode:
                return postcode

    def _ean(self) -> str:
        while True:
            first17 = LIANDER_EAN_PREFIX + f"{self._rng.randrange(10**11):011d}"
            ean = first17 + ean_check_digit(first17)
            if ean not in self._eans:
                self._eans.add(ean)
                return ean

    def _bag(self, place: Municipality) -> str:
        while True:
            bag = f"{place.bag_prefix}01{self._rng.randrange(1, 2_500_000):010d}"
            if bag not in self._bags:
                self._bags.add(bag)
                return bag


def _addition(rng: Random) -> str:
    """A canonical house-number addition: a letter, a floor number, or a word like BIS."""
    roll = rng.random()
    if roll < 0.55:
        return rng.choice("ABCDEFGH")
    if roll < 0.85:
        return str(rng.randrange(1, 4))
    return rng.choice(("BIS", "HS", "RD", "ZW"))


def write_address(rng: Random, location: Location, preferred: int | None = None) -> str:
    """``location``'s address spelled in one of the ways partners write it.

    ``preferred`` is the sender's usual style (its system's format); it is used most of the
    time, and any style otherwise (people type addresses by hand too).
    """
    style = preferred if preferred is not None and rng.random() < 0.7 else rng.randrange(7)
    pc4, letters = location.postcode[:4], location.postcode[4:]
    number, addition = str(location.number), location.addition
    glued = not addition or addition[0].isalpha()  # 12A can be written without a separator
    if style == 0:  # '1811 AB 12-A', the form in the schema documentation
        text = f"{pc4} {letters} {number}" + (f"-{addition}" if addition else "")
    elif style == 1:  # canonical '1811AB 12A' / '1811AB 12-1'
        text = location.address
    elif style == 2:  # typed by hand: '1811 ab 12-a'
        text = (f"{pc4} {letters} {number}" + (f"-{addition}" if addition else "")).lower()
    elif style == 3 and glued:  # all run together: '1811AB12A'
        text = f"{pc4}{letters}{number}{addition}"
    elif style == 4:  # fields joined with spaces: '1811 AB 12 A'
        text = f"{pc4} {letters} {number} {addition}".rstrip()
    elif style == 5:  # fixed-width number from an old system: '1811AB 0012 A'
        text = f"{pc4}{letters} {location.number:04d} {addition}".rstrip()
    else:  # slash before the addition: '1811 AB 12/A'
        text = f"{pc4} {letters} {number}" + (f"/{addition}" if addition else "")
    return text


def write_postcode(rng: Random, postcode: str) -> str:
    """A canonical postcode written as ``1811 AB``, ``1811AB`` or ``1811 ab``."""
    style = rng.randrange(3)
    if style == 0:
        return f"{postcode[:4]} {postcode[4:]}"
    if style == 1:
        return postcode
    return f"{postcode[:4]} {postcode[4:].lower()}"


def write_ean(rng: Random, ean: str) -> str:
    """An EAN-18 as usually written (plain digits), sometimes grouped with spaces or dashes."""
    roll = rng.random()
    if roll < 0.8:
        return ean
    if roll < 0.9:
        return " ".join(ean[i : i + 3] for i in range(0, 18, 3))
    return f"{ean[:6]}-{ean[6:12]}-{ean[12:]}"


def write_bag(rng: Random, bag: str) -> str:
    """A BAG id as 16 plain digits, now and then grouped as municipality, type, number."""
    return bag if rng.random() < 0.9 else f"{bag[:4]} {bag[4:6]} {bag[6:]}"


def plate(rng: Random) -> str:
    """A Dutch licence plate (side codes 7-14), with dashes, without, or in lower case."""
    text = "".join(
        rng.choice(_PLATE_LETTERS) if c == "L" else str(rng.randrange(10)) if c == "D" else c
        for c in rng.choice(_PLATE_SIDE_CODES)
    )
    roll = rng.random()
    if roll < 0.6:
        return text
    if roll < 0.9:
        return text.replace("-", "")
    return text.lower()


def kvk_number(rng: Random) -> str:
    """An 8-digit KvK number, mostly plain, sometimes written ``1234 5678``."""
    digits = f"{rng.randrange(10_000_000, 100_000_000)}"
    return digits if rng.random() < 0.85 else f"{digits[:4]} {digits[4:]}"


def _eleven_test_account(rng: Random) -> str:
    """A 10-digit account number passing the old Dutch eleven test (weights 10..1)."""
    while True:
        first9 = [rng.randrange(10) for _ in range(9)]
        last = -sum(d * w for d, w in zip(first9, range(10, 1, -1), strict=True)) % 11
        if last < 10:
            return "".join(map(str, first9)) + str(last)


def nl_iban(rng: Random) -> str:
    """A Dutch IBAN with valid mod-97 check digits; grouped by four half of the time."""
    bank = rng.choice(_BANKS_WITH_ELEVEN_TEST + _BANKS_WITHOUT)
    if bank in _BANKS_WITH_ELEVEN_TEST:
        account = _eleven_test_account(rng)
    else:
        account = f"{rng.randrange(10**10):010d}"
    digits = "".join(str(int(c, 36)) for c in bank + account + "NL00")
    iban = f"NL{98 - int(digits) % 97:02d}{bank}{account}"
    if rng.random() < 0.5:
        return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    return iban


_SURNAMES = (
    "De Vries", "Van der Meer", "Bakker", "Visser", "Smit", "Jansen", "De Boer", "Mulder",
    "Groot", "Bos", "Kok", "Schouten", "Dekker", "Koster", "Kuiper", "De Ruijter", "Blom",
    "Pronk", "Schermerhorn", "Tesselaar", "Kaagman", "Stam", "Beentjes", "Koning", "Zeeman",
)  # fmt: skip
_REGIONS = (
    "Westfriese", "Zaanse", "Kennemer", "Noordkop", "Waterlandse", "Alkmaarse", "Haarlemse",
    "Hollands Kroon", "Texelse", "Purmerendse", "Noord-Hollandse", "IJmond",
)  # fmt: skip
_TRADES = (
    "Schoonmaakbedrijf", "Reinigingsdiensten", "Autoschade", "Aannemersbedrijf", "Loonbedrijf",
    "Zwembadtechniek", "Schildersbedrijf", "Metaalbewerking", "Tuincentrum", "Laboratorium",
    "Installatietechniek", "Recycling", "Agrarisch Bedrijf", "Veehouderij", "Garage",
    "Meubelmakerij", "Drukkerij", "Bloemenkwekerij",
)  # fmt: skip
_FRONTS = (
    "Trading", "Import Export", "Handelsonderneming", "Holding", "Logistics", "Chemicals",
    "Global Supplies", "Cleaning Solutions",
)  # fmt: skip
_LEGAL_FORMS = ("B.V.", "B.V.", "V.O.F.", "", "& Zn.")


def company_name(rng: Random, *, front: bool = False) -> str:
    """A Dutch company name; ``front`` gives the vague trading names of letterbox companies."""
    if front:
        stem = rng.choice(_SURNAMES).split()[-1] if rng.random() < 0.5 else rng.choice(_REGIONS)
        return f"{stem} {rng.choice(_FRONTS)} B.V."
    roll = rng.random()
    if roll < 0.4:
        text = f"{rng.choice(_TRADES)} {rng.choice(_SURNAMES)}"
    elif roll < 0.7:
        text = f"{rng.choice(_SURNAMES)} {rng.choice(_TRADES)} {rng.choice(_LEGAL_FORMS)}"
    elif roll < 0.9:
        text = f"{rng.choice(_REGIONS)} {rng.choice(_TRADES)} {rng.choice(_LEGAL_FORMS)}"
    else:
        text = f"{rng.choice(_SURNAMES)} & {rng.choice(_SURNAMES)} {rng.choice(_LEGAL_FORMS)}"
    return text.strip()
