"""Seeded, vectorised generator of realistic synthetic user profiles (for the demo and benchmarks).

Determinism
-----------
Every value of a profile is a pure function of ``(seed, profile number)``: profile 1234 comes out
the same from ``generate_profiles(2000)`` as from ``generate_profiles(5, start=1232, batch_size=2)``.

This holds because randomness never flows from one profile to the next.  Each random quantity has
its own named stream: a PCG64 generator seeded with ``(seed, crc32(name))`` in which the 64-bit
word number ``k`` belongs to profile number ``k``.  PCG64 can ``advance`` to any position in
O(log k) steps, so a batch starts reading at its first profile number without generating the words
before it; everything derived from the words is element-wise numpy/Arrow work.  Profile ids are
not random at all but a bijective hash of ``(seed, profile number)``, which makes them unique.

Speed comes from never touching a row in Python: categorical values are indices into small
vocabularies that Arrow ``take`` turns into strings, composed strings such as ids and push tokens
are ASCII matrices handed to Arrow as buffers, and quantities needing little precision (choices,
coin flips, null flags) share one 64-bit word between four 16-bit "codes".

Vocabularies, distributions and correlations (email follows the name; phone prefix, city and time
zone follow the country; ...) may change between versions of this module: determinism is promised
for one version.
"""

from __future__ import annotations

import unicodedata
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["SYNTHETIC_SCHEMA", "generate_profiles"]

# Fixed "now", so that dates do not depend on when the generator runs.
_REFERENCE_SECONDS = 1_735_689_600  # 2025-01-01T00:00:00Z
_DAY = 86_400
_YEAR = 365.2425 * _DAY

# Offsets are int32: with ~100 bytes per row in the widest string column this stays below 2 GiB.
_MAX_BATCH_SIZE = 10_000_000

_SECONDS_UTC = pa.timestamp("s", tz="UTC")
_STRINGS = pa.list_(pa.string())

# -- schema ----------------------------------------------------------------------------------------

_PROPERTY_FIELDS: tuple[pa.Field, ...] = (
    # System properties.
    pa.field("Name", pa.string()),
    pa.field("Gender", pa.string()),
    pa.field("DOB", _SECONDS_UTC),
    pa.field("Photo", pa.string()),
    pa.field("Employed", pa.bool_()),
    pa.field("Education", pa.string()),
    pa.field("Married", pa.bool_()),
    pa.field("Age", pa.int64()),
    pa.field("Location", pa.string()),
    pa.field("Timezone", pa.string()),
    # Custom properties.
    pa.field("Customer Type", pa.string()),
    pa.field("loyalty_points", pa.int64()),
    pa.field("lifetime_value", pa.float64()),
    pa.field("Favourite Game", pa.string()),
    pa.field("tags", _STRINGS),
    pa.field("last_purchase_at", _SECONDS_UTC),
    pa.field("is_premium", pa.bool_()),
    pa.field("crm_id", pa.string()),
    pa.field("signup_source", pa.string()),
    pa.field("preferred_language", pa.string()),
    pa.field("cart_items", pa.int64()),
    pa.field("avg_order_value", pa.float64()),
    pa.field("referral_code", pa.string()),
    pa.field("nps_score", pa.int64()),
    pa.field("marketing_segment", pa.string()),
    pa.field("app_opens_30d", pa.int64()),
    pa.field("churn_risk", pa.float64()),
    pa.field("country", pa.string()),
    pa.field("city_tier", pa.int64()),
    pa.field("newsletter_topics", _STRINGS),
    pa.field("last_seen_platform", pa.string()),
    pa.field("kyc_verified", pa.bool_()),
    pa.field("wallet_balance", pa.float64()),
    pa.field("Blood Group", pa.string()),
)

_DEVICE_FIELDS = (
    pa.field("token", pa.string()),
    pa.field("platform", pa.string()),
    pa.field("os_version", pa.string()),
    pa.field("app_version", pa.string()),
)

_COMM_PREF_FIELDS = tuple(
    pa.field(name, pa.bool_()) for name in ("MSG-push", "MSG-push-all", "MSG-email", "MSG-sms", "MSG-whatsapp")
)

SYNTHETIC_SCHEMA: pa.Schema = pa.schema(
    [
        pa.field("profile_id", pa.string(), nullable=False),
        pa.field("profile_ids", _STRINGS),
        pa.field("identity", _STRINGS),
        pa.field("email", pa.string()),
        pa.field("phone", pa.string()),
        pa.field("device", pa.struct(_DEVICE_FIELDS)),
        pa.field("comm_prefs", pa.struct(_COMM_PREF_FIELDS)),
        pa.field("subscription_groups", pa.map_(pa.string(), pa.string())),
        pa.field("properties", pa.struct(_PROPERTY_FIELDS)),
        pa.field("updated_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)

# Share of nulls per optional value; every property has some, so consumers meet gaps everywhere.
_NULL_RATES: dict[str, float] = {
    "identity": 0.10,
    "email": 0.15,
    "phone": 0.25,
    "device.token": 0.20,
    "comm_prefs": 0.10,
    "Name": 0.05,
    "Gender": 0.12,
    "DOB": 0.35,
    "Photo": 0.55,
    "Employed": 0.40,
    "Education": 0.45,
    "Married": 0.50,
    "Age": 0.30,
    "Location": 0.20,
    "Timezone": 0.08,
    "Customer Type": 0.10,
    "loyalty_points": 0.25,
    "lifetime_value": 0.30,
    "Favourite Game": 0.60,
    "tags": 0.35,
    "last_purchase_at": 0.40,
    "is_premium": 0.05,
    "crm_id": 0.15,
    "signup_source": 0.03,
    "preferred_language": 0.12,
    "cart_items": 0.50,
    "avg_order_value": 0.40,
    "referral_code": 0.55,
    "nps_score": 0.60,
    "marketing_segment": 0.20,
    "app_opens_30d": 0.10,
    "churn_risk": 0.15,
    "country": 0.02,
    "city_tier": 0.20,
    "newsletter_topics": 0.45,
    "last_seen_platform": 0.06,
    "kyc_verified": 0.30,
    "wallet_balance": 0.35,
    "Blood Group": 0.58,
}

# -- vocabularies ----------------------------------------------------------------------------------

_CODE_BITS = 16  # precision of a "code": four of them share one random 64-bit word
_CODE_RANGE = 1 << _CODE_BITS


def _inverse_cdf_table(weights: Sequence[float]) -> np.ndarray:
    """Table mapping a 16-bit code to an index drawn with the given weights.

    A lookup is ten times faster than a per-row binary search; each weight is honoured to 1/65536.
    """
    cdf = np.cumsum(np.asarray(weights, dtype=np.float64))
    cells = (np.arange(_CODE_RANGE) + 0.5) / _CODE_RANGE
    # uint8 keeps the table (64 KiB) in cache; every vocabulary here has fewer than 256 entries.
    return np.searchsorted(cdf / cdf[-1], cells, side="right").astype(np.uint8)


def _scaled(code: np.ndarray, size: np.ndarray | int) -> np.ndarray:
    """Uniform integers in [0, size) from 16-bit codes (``size`` may vary per row)."""
    return (code.astype(np.int64) * size) >> _CODE_BITS


def _chance(code: np.ndarray, probability: np.ndarray | float) -> np.ndarray:
    """True with ``probability`` (a number or one per row)."""
    if isinstance(probability, float):  # an integer threshold keeps the comparison in integers
        return code < round(probability * _CODE_RANGE)
    return code < probability * _CODE_RANGE


class _Vocab:
    """Strings with sampling weights. Columns hold indices; Arrow ``take`` turns them into strings."""

    def __init__(self, values: Mapping[str, float] | Sequence[str]) -> None:
        weights = values if isinstance(values, Mapping) else dict.fromkeys(values, 1.0)
        self.values = pa.array(list(weights), pa.string())
        self._table = _inverse_cdf_table(list(weights.values()))

    def __len__(self) -> int:
        return len(self.values)

    def index(self, value: str) -> int:
        return self.values.index(value).as_py()

    def sample(self, code: np.ndarray) -> np.ndarray:
        return self._table[code]

    def take(self, indices: np.ndarray, null_mask: np.ndarray | None = None) -> pa.Array:
        return _take(self.values, indices, null_mask)


class _GroupedVocab(_Vocab):
    """Strings listed per group (OS versions per platform, ...); a row samples within its group."""

    def __init__(self, groups: Sequence[Sequence[str]]) -> None:
        super().__init__([value for group in groups for value in group])
        self._sizes = np.array([len(group) for group in groups])
        self._offsets = np.concatenate([[0], np.cumsum(self._sizes)[:-1]])

    def sample_in(self, group: np.ndarray, code: np.ndarray) -> np.ndarray:
        return self._offsets[group] + _scaled(code, self._sizes[group])


class _PickVocab(_Vocab):
    """A vocabulary from which each row picks a few distinct entries (tags, topics, ...).

    A row walks the vocabulary from a random start with a random non-zero stride.  The size is
    prime, so any stride visits distinct entries: no per-row shuffle.  All walks are precomputed,
    so one 16-bit code chooses a row's walk.
    """

    def __init__(self, values: Sequence[str], count_weights: Sequence[float]) -> None:
        super().__init__(values)
        size = len(values)
        if size < 2 or any(size % divisor == 0 for divisor in range(2, size)):
            raise ValueError(f"vocabulary size must be prime, got {size}")
        self.max_items = len(count_weights) - 1
        self._counts = _inverse_cdf_table(count_weights)
        starts, strides = np.meshgrid(np.arange(size), np.arange(1, size), indexing="ij")
        walks = starts[..., None] + strides[..., None] * np.arange(self.max_items)
        self._walks = (walks % size).reshape(-1, self.max_items).astype(np.uint8)
        self._slots = np.arange(self.max_items, dtype=np.uint8)

    def picks(self, draws: _Draws, name: str, null_mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per row 0..max_items distinct indices (none for null rows), as (offsets, flat indices)."""
        codes = draws.codes(f"{name}/count", f"{name}/walk")
        counts = self._counts[codes[f"{name}/count"]]
        if null_mask is not None:
            counts[null_mask] = 0
        walks = self._walks[_scaled(codes[f"{name}/walk"], len(self._walks))]
        return _offsets(counts), walks[self._slots < counts[:, None]]

    def lists(self, draws: _Draws, name: str, null_mask: np.ndarray) -> pa.Array:
        offsets, picks = self.picks(draws, name, null_mask)
        return pa.ListArray.from_arrays(offsets, _take(self.values, picks), mask=_arrow(null_mask))


def _ascii_slug(name: str) -> str:
    """``"Chloé O'Brien"`` -> ``"chloeobrien"``: what people actually type into an email address."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


_GENDERS = _Vocab({"M": 0.48, "F": 0.48, "O": 0.04})
_FIRST_NAMES_BY_GENDER = (  # same order as _GENDERS
    (
        "Aarav",
        "Rohan",
        "Arjun",
        "James",
        "Liam",
        "Noah",
        "Lucas",
        "Mateus",
        "José",
        "Budi",
        "Omar",
        "Lukas",
        "Haruto",
        "Kenji",
        "Louis",
        "Diego",
    ),
    (
        "Priya",
        "Ananya",
        "Meera",
        "Emma",
        "Olivia",
        "Sofia",
        "Ana",
        "María",
        "Siti",
        "Fatima",
        "Aisha",
        "Lena",
        "Yui",
        "Chloé",
        "Zoë",
        "Camila",
    ),
    ("Alex", "Sam", "Kiran", "Robin", "Jordan", "Sasha"),
)
_FIRST_NAMES = _GroupedVocab(_FIRST_NAMES_BY_GENDER)
_LAST_NAMES = _Vocab(
    (
        "Sharma",
        "Patel",
        "Gupta",
        "Iyer",
        "Reddy",
        "Khan",
        "Smith",
        "Johnson",
        "O'Brien",
        "Silva",
        "Santos",
        "Wijaya",
        "Al-Farsi",
        "Müller",
        "Schmidt",
        "Tanaka",
        "Satō",
        "Dubois",
        "García",
        "Hernández",
        "Nguyen",
        "Kowalski",
    )
)
_EMAIL_SEPARATORS = _Vocab({".": 0.55, "_": 0.15, "": 0.30})
# Every (first, separator, last) combination, precomputed: one ``take`` instead of a join per row.
# Index: (first * len(_EMAIL_SEPARATORS) + separator) * len(_LAST_NAMES) + last.
_FULL_NAMES = pa.array(
    [f"{first} {last}" for first in _FIRST_NAMES.values.to_pylist() for last in _LAST_NAMES.values.to_pylist()]
)
_EMAIL_LOCAL_PARTS = pa.array(
    [
        f"{_ascii_slug(first)}{separator}{_ascii_slug(last)}"
        for first in _FIRST_NAMES.values.to_pylist()
        for separator in _EMAIL_SEPARATORS.values.to_pylist()
        for last in _LAST_NAMES.values.to_pylist()
    ]
)
_EMAIL_NUMBERS = pa.array(["", *map(str, range(1, 1000))])  # index 0: no number in the address
_EMAIL_DOMAINS = _Vocab({"@example.com": 0.6, "@example.org": 0.25, "@example.net": 0.15})

# city, ISO country, time zone, tier, weight
_CITIES = (
    ("Mumbai", "IN", "Asia/Kolkata", 1, 9.0),
    ("Delhi", "IN", "Asia/Kolkata", 1, 9.0),
    ("Bengaluru", "IN", "Asia/Kolkata", 1, 8.0),
    ("Pune", "IN", "Asia/Kolkata", 2, 4.0),
    ("Jaipur", "IN", "Asia/Kolkata", 2, 3.0),
    ("Lucknow", "IN", "Asia/Kolkata", 2, 3.0),
    ("Indore", "IN", "Asia/Kolkata", 3, 2.0),
    ("Coimbatore", "IN", "Asia/Kolkata", 3, 2.0),
    ("New York", "US", "America/New_York", 1, 4.0),
    ("San Francisco", "US", "America/Los_Angeles", 1, 3.0),
    ("Austin", "US", "America/Chicago", 2, 2.0),
    ("Denver", "US", "America/Denver", 2, 1.5),
    ("London", "GB", "Europe/London", 1, 4.0),
    ("Manchester", "GB", "Europe/London", 2, 2.0),
    ("São Paulo", "BR", "America/Sao_Paulo", 1, 4.0),
    ("Rio de Janeiro", "BR", "America/Sao_Paulo", 1, 2.0),
    ("Belo Horizonte", "BR", "America/Sao_Paulo", 2, 1.0),
    ("Jakarta", "ID", "Asia/Jakarta", 1, 4.0),
    ("Surabaya", "ID", "Asia/Jakarta", 2, 2.0),
    ("Dubai", "AE", "Asia/Dubai", 1, 3.0),
    ("Abu Dhabi", "AE", "Asia/Dubai", 1, 1.5),
    ("Berlin", "DE", "Europe/Berlin", 1, 2.0),
    ("München", "DE", "Europe/Berlin", 1, 1.5),
    ("Tokyo", "JP", "Asia/Tokyo", 1, 2.0),
    ("Osaka", "JP", "Asia/Tokyo", 1, 1.0),
    ("Paris", "FR", "Europe/Paris", 1, 2.0),
    ("Lyon", "FR", "Europe/Paris", 2, 1.0),
    ("Ciudad de México", "MX", "America/Mexico_City", 1, 2.0),
    ("Monterrey", "MX", "America/Monterrey", 2, 1.0),
)
_CITY_NAMES = _Vocab({city: weight for city, _, _, _, weight in _CITIES})
_CITY_TIMEZONES = pa.array([tz for _, _, tz, _, _ in _CITIES])
_CITY_TIERS = np.array([tier for _, _, _, tier, _ in _CITIES], dtype=np.int64)

# ISO code -> (main language besides English, phone number plans as (prefix, random digits after it))
_COUNTRIES: dict[str, tuple[str, tuple[tuple[str, int], ...]]] = {
    "IN": ("hi", (("+9198", 8), ("+9197", 8), ("+9199", 8), ("+9188", 8), ("+9170", 8), ("+9162", 8))),
    "US": ("en", (("+1555", 7),)),
    "GB": ("en", (("+447700900", 3), ("+447", 9))),
    "BR": ("pt-BR", (("+55119", 8), ("+55219", 8))),
    "ID": ("id", (("+62812", 8), ("+62857", 8))),
    "AE": ("ar", (("+97150", 7), ("+97155", 7))),
    "DE": ("de", (("+49151", 8), ("+49176", 8))),
    "JP": ("ja", (("+8190", 8), ("+8180", 8))),
    "FR": ("fr", (("+336", 8), ("+337", 8))),
    "MX": ("es-MX", (("+5255", 8), ("+5281", 8))),
}
_COUNTRY_CODES = _Vocab(list(_COUNTRIES))
_CITY_COUNTRY = np.array([_COUNTRY_CODES.index(iso) for _, iso, _, _, _ in _CITIES])
_PHONE_PREFIXES = _GroupedVocab([[prefix for prefix, _ in plans] for _, plans in _COUNTRIES.values()])
_PHONE_DIGITS_AFTER_PREFIX = np.array([n for _, plans in _COUNTRIES.values() for _, n in plans])
_PHONE_MAX_DIGITS = int(_PHONE_DIGITS_AFTER_PREFIX.max())
_LANGUAGES = _Vocab(sorted({language for language, _ in _COUNTRIES.values()}))
_COUNTRY_LANGUAGE = np.array([_LANGUAGES.index(language) for language, _ in _COUNTRIES.values()])
_ENGLISH = _LANGUAGES.index("en")

_PLATFORMS = _Vocab({"Android": 0.60, "iOS": 0.34, "Web": 0.06})
_OS_VERSIONS = _GroupedVocab(  # same order as _PLATFORMS
    (
        ("14", "13", "12", "15", "11", "10"),
        ("17.5.1", "17.4", "18.0", "18.1", "16.7.8"),
        ("Chrome 125", "Safari 17.4", "Firefox 126", "Edge 125"),
    )
)
_APP_VERSIONS = _Vocab(
    {"6.1.0": 0.35, "6.0.2": 0.25, "6.0.0": 0.12, "5.12.4": 0.12, "5.11.0": 0.08, "5.9.1": 0.05, "6.2.0-beta.1": 0.03}
)
_COMM_PREF_OPT_IN = {"MSG-push": 0.75, "MSG-push-all": 0.5, "MSG-email": 0.6, "MSG-sms": 0.4, "MSG-whatsapp": 0.3}
_MERGED_ID_COUNTS = _inverse_cdf_table((0.85, 0.10, 0.05))  # 0, 1 or 2 older ids per profile
_SUBSCRIPTION_STATUS = _Vocab(("Subscribed", "Unsubscribed"))

# List-valued columns: up to len(weights) - 1 distinct items, with these weights for 0, 1, ... items.
_SUBSCRIPTION_GROUPS = _PickVocab(
    ("newsletter", "offers", "product_updates", "security", "events"), (0.25, 0.3, 0.3, 0.15)
)
_TAGS = _PickVocab(
    (
        "early_adopter",
        "beta_tester",
        "high_value",
        "discount_seeker",
        "night_owl",
        "weekend_shopper",
        "gamer",
        "traveller",
        "foodie",
        "parent",
        "student",
    ),
    (0.3, 0.3, 0.2, 0.12, 0.08),
)
_NEWSLETTER_TOPICS = _PickVocab(
    ("Cricket", "Football", "Tech", "Travel", "Food", "Finance", "Movies"), (0.35, 0.3, 0.2, 0.15)
)

_EDUCATION = _Vocab(
    {"High School": 0.25, "Bachelor's": 0.35, "Master's": 0.2, "PhD": 0.04, "Diploma": 0.12, "Other": 0.04}
)
_CUSTOMER_TYPES = _Vocab({"Regular": 0.55, "New": 0.2, "VIP": 0.05, "Dormant": 0.15, "Wholesale": 0.05})
_VIP = _CUSTOMER_TYPES.index("VIP")
_FAVOURITE_GAMES = _Vocab(
    (
        "Ludo ✨",
        "Échecs",
        "将棋",
        "Carrom",
        "Chess",
        "Teen Patti",
        "Rummy",
        "Candy Crush",
        "Fortnite",
        "Minecraft",
        "Sudoku",
        "Mahjong 麻雀",
        "FIFA ⚽",
        "Scrabble",
    )
)
_SIGNUP_SOURCES = _Vocab(
    {
        "organic": 0.35,
        "google_ads": 0.2,
        "facebook_ads": 0.15,
        "referral": 0.12,
        "instagram": 0.1,
        "app_store_search": 0.08,
    }
)
_MARKETING_SEGMENTS = _Vocab(
    ("Bargain Hunters", "Loyalists", "Window Shoppers", "Big Spenders", "At Risk", "Newcomers")
)
_NPS_SCORES = _inverse_cdf_table((2, 1, 1, 2, 2, 4, 5, 9, 16, 22, 20))  # 0..10, promoters dominate
_BLOOD_GROUPS = _Vocab(
    {"O+": 0.37, "A+": 0.28, "B+": 0.2, "AB+": 0.05, "O-": 0.04, "A-": 0.03, "B-": 0.02, "AB-": 0.01}
)

# -- randomness ------------------------------------------------------------------------------------


class _Draws:
    """Random numbers for profile numbers ``start .. start+count-1``, in named streams.

    Stream ``name`` is PCG64 seeded with ``(seed, crc32(name))``; its word ``k`` belongs to profile
    number ``k``.  Naming streams (rather than numbering them in call order) keeps the existing
    columns stable when a new random quantity is added.  (Philox, counter-based by design, would
    do as well, but generates at half the speed.)
    """

    def __init__(self, seed: int, start: int, count: int) -> None:
        self._seed, self._start, self._count = seed, start, count
        self._used: dict[int, str] = {}

    def words(self, name: str) -> np.ndarray:
        """One uniformly random uint64 per profile."""
        tag = zlib.crc32(name.encode())
        if tag in self._used:  # reusing a stream would silently correlate two columns
            raise RuntimeError(f"random stream {name!r} clashes with {self._used[tag]!r}")
        self._used[tag] = name
        return np.random.PCG64([self._seed, tag]).advance(self._start).random_raw(self._count)

    def codes(self, *names: str) -> dict[str, np.ndarray]:
        """One uniformly random 16-bit code per profile and name; four names share a stream."""
        codes: dict[str, np.ndarray] = {}
        for first in range(0, len(names), 4):
            group = names[first : first + 4]
            lanes = self.words("+".join(group)).astype("<u8", copy=False).view("<u2").reshape(-1, 4)
            codes.update(zip(group, lanes.T, strict=False))
        return codes

    def nulls(self, rates: Mapping[str, float]) -> dict[str, np.ndarray]:
        """A null mask (True = null) per name, at the given rates."""
        codes = self.codes(*(f"{name}/null" for name in rates))
        return {name: _chance(codes[f"{name}/null"], rate) for name, rate in rates.items()}

    def uniform(self, name: str) -> np.ndarray:
        """Floats in [0, 1) with 53 random bits."""
        return (self.words(name) >> np.uint64(11)) * (1.0 / (1 << 53))

    def exponential(self, name: str, mean: float) -> np.ndarray:
        return -np.log1p(-self.uniform(name)) * mean

    def lognormal(self, name: str, mu: float, sigma: float) -> np.ndarray:
        # Box-Muller on the two 32-bit halves of one word. numpy's own normal sampler consumes a
        # variable number of words per value, which would break the word-per-profile alignment.
        words = self.words(name)
        radius = np.sqrt(-2.0 * np.log1p(-((words >> np.uint64(32)) * 2.0**-32)))
        angle = (words & np.uint64(0xFFFFFFFF)) * (2.0 * np.pi * 2.0**-32)
        return np.exp(mu + sigma * radius * np.cos(angle))


_GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)  # odd, so multiplying by it is invertible mod 2**64


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: a bijection on uint64, so distinct inputs stay distinct."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


# -- ASCII matrices and Arrow arrays ---------------------------------------------------------------

# Two hex digits per byte value, as one uint16: a lookup per byte beats shifting out nibbles.
_HEX_PAIRS = np.array([int.from_bytes(f"{b:02x}".encode(), "little") for b in range(256)], dtype=np.uint16)
_CROCKFORD_BASE32 = np.frombuffer(b"0123456789ABCDEFGHJKMNPQRSTVWXYZ", dtype=np.uint8)


def _hex_chars(words: np.ndarray, digits: int = 16) -> np.ndarray:
    """(n, digits) ASCII matrix: the leading hex digits of each row of uint64s (n or (n, k))."""
    bytes_per_row = 8 * (words.shape[1] if words.ndim == 2 else 1)
    big_endian_bytes = words.astype(">u8").view(np.uint8).reshape(len(words), bytes_per_row)
    return _HEX_PAIRS[big_endian_bytes].view(np.uint8)[:, :digits]


def _base32_chars(words: np.ndarray, digits: int) -> np.ndarray:
    """(n, digits <= 8) ASCII matrix of random Crockford base-32 digits, one per byte of ``words``."""
    return _CROCKFORD_BASE32[words.astype("<u8", copy=False).view(np.uint8).reshape(-1, 8)[:, :digits] & 0x1F]


def _digit_chars(words: Sequence[np.ndarray], digits: int) -> np.ndarray:
    """(n, digits) ASCII matrix of random decimal digits, one per random byte of ``words``.

    ``byte * 10 >> 8`` maps a byte to a digit without the integer division that formatting numbers
    would need (each digit is off uniform by at most 0.4 percentage points).
    """
    random_bytes = np.stack(words, axis=1).astype("<u8", copy=False).view(np.uint8)[:, :digits]
    return ((random_bytes.astype(np.uint16) * 10 >> 8) + ord("0")).astype(np.uint8)


def _concat_chars(count: int, *parts: bytes | np.ndarray) -> np.ndarray:
    """Glue constant byte strings and (count, k) ASCII matrices into one (count, width) matrix."""
    blocks = [np.frombuffer(part, dtype=np.uint8) if isinstance(part, bytes) else part for part in parts]
    ends = np.cumsum([block.shape[-1] for block in blocks])
    chars = np.empty((count, ends[-1]), dtype=np.uint8)
    for block, end in zip(blocks, ends, strict=True):
        chars[:, end - block.shape[-1] : end] = block  # a constant broadcasts down the rows
    return chars


def _strings(chars: np.ndarray, lengths: np.ndarray | None = None, null_mask: np.ndarray | None = None) -> pa.Array:
    """A string array straight from an ASCII matrix: row ``i`` is ``chars[i, :lengths[i]]``.

    Handing Arrow the offsets and data buffers avoids creating one Python string per row.
    """
    count, width = chars.shape
    if lengths is None:
        offsets = np.arange(0, (count + 1) * width, width, dtype=np.int32)
        data = np.ascontiguousarray(chars).reshape(-1)
    else:
        offsets = _offsets(lengths)
        data = chars[np.arange(width) < lengths[:, None]]  # row-major, so rows stay in order
    validity, null_count = _validity(null_mask)
    buffers = [validity, pa.py_buffer(offsets), pa.py_buffer(data)]
    return pa.Array.from_buffers(pa.string(), count, buffers, null_count=null_count)


def _validity(null_mask: np.ndarray | None) -> tuple[pa.Buffer | None, int]:
    null_count = 0 if null_mask is None else int(np.count_nonzero(null_mask))
    if null_mask is None or null_count == 0:
        return None, 0
    return pa.py_buffer(np.packbits(~null_mask, bitorder="little")), null_count


def _arrow(data: np.ndarray, type_: pa.DataType | None = None, null_mask: np.ndarray | None = None) -> pa.Array:
    """numpy -> Arrow without copying values; with a mask, ~20x faster than ``pa.array(mask=...)``."""
    type_ = type_ or pa.from_numpy_dtype(data.dtype)
    if pa.types.is_boolean(type_):
        payload = np.packbits(data, bitorder="little")
    else:
        dtype = np.int64 if pa.types.is_timestamp(type_) else type_.to_pandas_dtype()
        payload = np.ascontiguousarray(data, dtype=dtype)
    validity, null_count = _validity(null_mask)
    return pa.Array.from_buffers(type_, len(data), [validity, pa.py_buffer(payload)], null_count=null_count)


def _take(values: pa.Array, indices: np.ndarray, null_mask: np.ndarray | None = None) -> pa.Array:
    """``values[indices]``, null where ``null_mask`` is set."""
    return pc.take(values, _arrow(indices, null_mask=null_mask))


def _offsets(lengths: np.ndarray) -> np.ndarray:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def _global_ids(words: np.ndarray) -> pa.Array:
    """``__g`` + 20 hex digits: 16 carry ``words`` (and their uniqueness), 4 are a hash of them."""
    return _strings(_concat_chars(len(words), b"__g", _hex_chars(words), _hex_chars(_mix64(words), 4)))


def _list_of_parts(parts: Sequence[pa.Array], counts: np.ndarray, null_mask: np.ndarray | None) -> pa.Array:
    """A list array whose row ``i`` holds one value from each of ``parts[:counts[i]]``.

    ``parts[j]`` has values only for the rows with ``counts > j``, in row order, so that rarely used
    parts (older merged ids, second identities) are built only where they are needed.
    """
    offsets = _offsets(counts)
    source = np.empty(offsets[-1], dtype=np.int64)  # position in the concatenated parts
    part_start = 0
    for slot, part in enumerate(parts):
        source[offsets[:-1][counts > slot] + slot] = np.arange(part_start, part_start + len(part))
        part_start += len(part)
    values = _take(pa.concat_arrays(list(parts)), source)
    mask = None if null_mask is None else _arrow(null_mask)
    return pa.ListArray.from_arrays(offsets, values, mask=mask)


# -- columns ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Person:
    """Traits several columns share, so that e.g. the email matches Name and the phone the country."""

    gender: np.ndarray
    first_name: np.ndarray
    last_name: np.ndarray
    city: np.ndarray
    country: np.ndarray
    platform: np.ndarray
    customer_type: np.ndarray
    age_years: np.ndarray
    app_opens_30d: np.ndarray

    @classmethod
    def draw(cls, draws: _Draws) -> _Person:
        codes = draws.codes("gender", "city", "platform", "customer_type", "first_name", "last_name", "app_opens/idle")
        gender = _GENDERS.sample(codes["gender"])
        city = _CITY_NAMES.sample(codes["city"])
        idle = _chance(codes["app_opens/idle"], 0.15)
        return cls(
            gender=gender,
            first_name=_FIRST_NAMES.sample_in(gender, codes["first_name"]),
            last_name=_scaled(codes["last_name"], len(_LAST_NAMES)),
            city=city,
            country=_CITY_COUNTRY[city],
            platform=_PLATFORMS.sample(codes["platform"]),
            customer_type=_CUSTOMER_TYPES.sample(codes["customer_type"]),
            # Skewed towards younger users, as app audiences are.
            age_years=18.0 + 52.0 * draws.uniform("age") ** 1.7,
            app_opens_30d=np.where(idle, 0, draws.exponential("app_opens", 14.0)).astype(np.int64),
        )


def _profile_id(numbers: np.ndarray, seed: int) -> pa.Array:
    # Multiplying by an odd constant, adding a constant and _mix64 are bijections on uint64, so
    # distinct profile numbers get distinct ids under any one seed.
    seed_offset = _mix64(np.array([seed], dtype=np.uint64) * _GOLDEN_GAMMA)[0]
    return _global_ids(_mix64(numbers * _GOLDEN_GAMMA + seed_offset))


def _profile_ids(draws: _Draws, profile_id: pa.Array) -> pa.Array:
    """The current id first, then the ids of profiles merged into this one."""
    counts = 1 + _MERGED_ID_COUNTS[draws.codes("merged_ids")["merged_ids"]]
    merged = [_global_ids(draws.words(f"merged_id/{i}")[counts > i]) for i in (1, 2)]
    return _list_of_parts([profile_id, *merged], counts, None)


def _identity(draws: _Draws, numbers: np.ndarray) -> pa.Array:
    codes = draws.codes("identity/null", "identity/second")
    null_mask = _chance(codes["identity/null"], _NULL_RATES["identity"])
    counts = np.where(null_mask, 0, np.where(_chance(codes["identity/second"], 0.055), 2, 1))
    user_numbers = pa.array(numbers[counts > 0].astype(np.int64))
    user_digits = pc.utf8_lpad(pc.cast(user_numbers, pa.string()), 6, "0")
    user_ids = pc.binary_join_element_wise("user_", user_digits, "")
    legacy_words = draws.words("identity/legacy")[counts > 1]
    legacy_ids = _strings(_concat_chars(len(legacy_words), b"legacy-", _hex_chars(legacy_words, 10)))
    return _list_of_parts([user_ids, legacy_ids], counts, null_mask)


def _email(draws: _Draws, person: _Person) -> pa.Array:
    codes = draws.codes("email/null", "email/separator", "email/domain", "email/has_number", "email/number")
    separator = _EMAIL_SEPARATORS.sample(codes["email/separator"])
    first_and_separator = person.first_name * len(_EMAIL_SEPARATORS) + separator
    local_part = first_and_separator * len(_LAST_NAMES) + person.last_name  # see _EMAIL_LOCAL_PARTS
    number = np.where(_chance(codes["email/has_number"], 0.6), 1 + _scaled(codes["email/number"], 999), 0)
    domain = _EMAIL_DOMAINS.sample(codes["email/domain"])
    return pc.binary_join_element_wise(  # the null domains make the null emails
        _take(_EMAIL_LOCAL_PARTS, local_part),
        _take(_EMAIL_NUMBERS, number),
        _EMAIL_DOMAINS.take(domain, _chance(codes["email/null"], _NULL_RATES["email"])),
        "",
    )


def _phone(draws: _Draws, person: _Person) -> pa.Array:
    codes = draws.codes("phone/null", "phone/plan")
    plan = _PHONE_PREFIXES.sample_in(person.country, codes["phone/plan"])
    digits = _digit_chars([draws.words("phone/digits/0"), draws.words("phone/digits/1")], _PHONE_MAX_DIGITS)
    prefix = _PHONE_PREFIXES.take(plan, _chance(codes["phone/null"], _NULL_RATES["phone"]))
    return pc.binary_join_element_wise(prefix, _strings(digits, _PHONE_DIGITS_AFTER_PREFIX[plan]), "")


def _device(draws: _Draws, person: _Person) -> pa.Array:
    codes = draws.codes("device.token/null", "device.os_version", "device.app_version")
    # An APNs/FCM-style push token: 256 random bits as 64 hex digits.
    token = _hex_chars(np.stack([draws.words(f"device.token/{i}") for i in range(4)], axis=1), 64)
    token_nulls = _chance(codes["device.token/null"], _NULL_RATES["device.token"])
    children = [
        _strings(token, null_mask=token_nulls),
        _PLATFORMS.take(person.platform),
        _OS_VERSIONS.take(_OS_VERSIONS.sample_in(person.platform, codes["device.os_version"])),
        _APP_VERSIONS.take(_APP_VERSIONS.sample(codes["device.app_version"])),
    ]
    return pa.StructArray.from_arrays(children, fields=list(_DEVICE_FIELDS))


def _comm_prefs(draws: _Draws) -> pa.Array:
    opted_in = draws.codes(*_COMM_PREF_OPT_IN)
    nulls = draws.nulls(dict.fromkeys(_COMM_PREF_OPT_IN, _NULL_RATES["comm_prefs"]))
    children = [
        _arrow(_chance(opted_in[name], rate), null_mask=nulls[name]) for name, rate in _COMM_PREF_OPT_IN.items()
    ]
    return pa.StructArray.from_arrays(children, fields=list(_COMM_PREF_FIELDS))


def _subscription_groups(draws: _Draws) -> pa.Array:
    offsets, groups = _SUBSCRIPTION_GROUPS.picks(draws, "subscription_groups")
    # A status code per (row, slot); the flattened map entries take theirs in slot order.
    slots = range(_SUBSCRIPTION_GROUPS.max_items)
    codes = draws.codes(*(f"subscription_groups/status/{slot}" for slot in slots))
    status_codes = np.stack(list(codes.values()), axis=1)
    used = np.arange(len(slots)) < np.diff(offsets)[:, None]
    unsubscribed = ~_chance(status_codes[used], 0.8)
    return pa.MapArray.from_arrays(
        offsets,
        _take(_SUBSCRIPTION_GROUPS.values, groups),
        _SUBSCRIPTION_STATUS.take(unsubscribed.astype(np.int8)),
    )


def _properties(draws: _Draws, person: _Person) -> pa.Array:
    count = len(person.gender)
    nulls = draws.nulls({field.name: _NULL_RATES[field.name] for field in _PROPERTY_FIELDS})
    codes = draws.codes(
        "Employed", "Education", "Married", "Favourite Game", "is_premium", "signup_source",
        "preferred_language", "nps_score", "marketing_segment", "last_seen_platform/switched",
        "last_seen_platform", "kyc_verified", "wallet_balance/empty", "Blood Group", "churn_risk",
    )  # fmt: skip

    def values(name: str, data: np.ndarray, type_: pa.DataType) -> pa.Array:
        return _arrow(data, type_, nulls[name])

    def pick(name: str, vocab: _Vocab) -> pa.Array:
        return vocab.take(vocab.sample(codes[name]), nulls[name])

    age = person.age_years
    dob_seconds = (_REFERENCE_SECONDS - age * _YEAR) // _DAY * _DAY  # midnight UTC, as DOBs are kept
    purchase_age = np.minimum(draws.exponential("last_purchase_at", 21 * _DAY), 730 * _DAY)
    switched = _chance(codes["last_seen_platform/switched"], 0.15)
    last_seen = np.where(switched, _PLATFORMS.sample(codes["last_seen_platform"]), person.platform)
    language = np.where(_chance(codes["preferred_language"], 0.65), _COUNTRY_LANGUAGE[person.country], _ENGLISH)
    wallet = np.round(draws.exponential("wallet_balance", 400.0), 2)
    opens = person.app_opens_30d

    columns: dict[str, pa.Array] = {
        "Name": _take(_FULL_NAMES, person.first_name * len(_LAST_NAMES) + person.last_name, nulls["Name"]),
        "Gender": _GENDERS.take(person.gender, nulls["Gender"]),
        "DOB": values("DOB", dob_seconds.astype(np.int64), _SECONDS_UTC),
        "Photo": _strings(
            _concat_chars(count, b"https://img.example.com/avatars/", _hex_chars(draws.words("Photo")), b".jpg"),
            null_mask=nulls["Photo"],
        ),
        "Employed": values("Employed", _chance(codes["Employed"], np.where(age < 60, 0.72, 0.2)), pa.bool_()),
        "Education": pick("Education", _EDUCATION),
        "Married": values("Married", _chance(codes["Married"], np.clip((age - 20) / 25, 0.05, 0.85)), pa.bool_()),
        "Age": values("Age", age.astype(np.int64), pa.int64()),
        "Location": _CITY_NAMES.take(person.city, nulls["Location"]),
        "Timezone": _take(_CITY_TIMEZONES, person.city, nulls["Timezone"]),
        "Customer Type": _CUSTOMER_TYPES.take(person.customer_type, nulls["Customer Type"]),
        "loyalty_points": values(
            "loyalty_points", draws.exponential("loyalty_points", 150.0).astype(np.int64) * 10, pa.int64()
        ),
        "lifetime_value": values(
            "lifetime_value", np.round(draws.lognormal("lifetime_value", 5.5, 1.1), 2), pa.float64()
        ),
        "Favourite Game": pick("Favourite Game", _FAVOURITE_GAMES),
        "tags": _TAGS.lists(draws, "tags", nulls["tags"]),
        "last_purchase_at": values(
            "last_purchase_at", (_REFERENCE_SECONDS - purchase_age).astype(np.int64), _SECONDS_UTC
        ),
        "is_premium": values(
            "is_premium", (person.customer_type == _VIP) | _chance(codes["is_premium"], 0.07), pa.bool_()
        ),
        "crm_id": _strings(
            _concat_chars(count, b"CRM-", _digit_chars([draws.words("crm_id")], 7)), null_mask=nulls["crm_id"]
        ),
        "signup_source": pick("signup_source", _SIGNUP_SOURCES),
        "preferred_language": _LANGUAGES.take(language, nulls["preferred_language"]),
        "cart_items": values(
            "cart_items", np.minimum(draws.exponential("cart_items", 1.8), 30).astype(np.int64), pa.int64()
        ),
        "avg_order_value": values(
            "avg_order_value", np.round(draws.lognormal("avg_order_value", 3.6, 0.7), 2), pa.float64()
        ),
        "referral_code": _strings(
            _concat_chars(count, b"REF-", _base32_chars(draws.words("referral_code"), 6)),
            null_mask=nulls["referral_code"],
        ),
        "nps_score": values("nps_score", _NPS_SCORES[codes["nps_score"]].astype(np.int64), pa.int64()),
        "marketing_segment": pick("marketing_segment", _MARKETING_SEGMENTS),
        "app_opens_30d": values("app_opens_30d", opens, pa.int64()),
        # Users who stopped opening the app are the likely churners.
        "churn_risk": values(
            "churn_risk",
            np.round(0.85 * np.exp(-opens / 8.0) + 0.15 / _CODE_RANGE * codes["churn_risk"], 3),
            pa.float64(),
        ),
        "country": _COUNTRY_CODES.take(person.country, nulls["country"]),
        "city_tier": values("city_tier", _CITY_TIERS[person.city], pa.int64()),
        "newsletter_topics": _NEWSLETTER_TOPICS.lists(draws, "newsletter_topics", nulls["newsletter_topics"]),
        "last_seen_platform": _PLATFORMS.take(last_seen, nulls["last_seen_platform"]),
        "kyc_verified": values("kyc_verified", _chance(codes["kyc_verified"], 0.6), pa.bool_()),
        "wallet_balance": values(
            "wallet_balance",
            np.where(_chance(codes["wallet_balance/empty"], 0.35), 0.0, wallet),
            pa.float64(),
        ),
        "Blood Group": pick("Blood Group", _BLOOD_GROUPS),
    }
    fields = list(_PROPERTY_FIELDS)
    return pa.StructArray.from_arrays([columns[field.name] for field in fields], fields=fields)


def _updated_at(draws: _Draws) -> pa.Array:
    age_us = (draws.uniform("updated_at") * (365 * _DAY * 1_000_000)).astype(np.int64)
    return _arrow(_REFERENCE_SECONDS * 1_000_000 - age_us, pa.timestamp("us", tz="UTC"))


def _batch(seed: int, start: int, count: int) -> pa.RecordBatch:
    draws = _Draws(seed, start, count)
    numbers = np.arange(start, start + count, dtype=np.uint64)
    person = _Person.draw(draws)
    profile_id = _profile_id(numbers, seed)
    columns = [
        profile_id,
        _profile_ids(draws, profile_id),
        _identity(draws, numbers),
        _email(draws, person),
        _phone(draws, person),
        _device(draws, person),
        _comm_prefs(draws),
        _subscription_groups(draws),
        _properties(draws, person),
        _updated_at(draws),
    ]
    return pa.RecordBatch.from_arrays(columns, schema=SYNTHETIC_SCHEMA)


# -- public API ------------------------------------------------------------------------------------


def generate_profiles(
    count: int, *, seed: int = 0, batch_size: int = 10_000, start: int = 0
) -> Iterator[pa.RecordBatch]:
    """Yield profiles ``start .. start+count-1`` as record batches of at most ``batch_size`` rows.

    Every batch has exactly :data:`SYNTHETIC_SCHEMA`.  A profile's values depend only on ``seed``
    and its profile number, never on ``batch_size`` or ``start``; memory use is proportional to
    ``batch_size``.  Arguments are checked at the call, not at the first ``next()``.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    if start < 0 or start + count > 2**62:
        raise ValueError(f"profile numbers must lie in [0, 2**62), got start={start}, count={count}")
    if not 1 <= batch_size <= _MAX_BATCH_SIZE:
        raise ValueError(f"batch_size must be between 1 and {_MAX_BATCH_SIZE:,}, got {batch_size}")
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    return _batches(count, seed=seed, batch_size=batch_size, start=start)


def _batches(count: int, *, seed: int, batch_size: int, start: int) -> Iterator[pa.RecordBatch]:
    end = start + count
    for batch_start in range(start, end, batch_size):
        yield _batch(seed, batch_start, min(batch_size, end - batch_start))
