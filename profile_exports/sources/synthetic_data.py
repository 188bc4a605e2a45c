"""Seeded, vectorised generator of realistic synthetic user profiles (for the demo and benchmarks).

Determinism
-----------
Every value of a profile is a pure function of ``(seed, profile number)``: asking for profile 1234
gives the same row whether it comes from ``generate_profiles(2000)`` or from
``generate_profiles(5, start=1232, batch_size=2)``.

This works because randomness never flows from one profile to the next.  Each random quantity
(say "the email's null flag") has its own named stream: a Philox generator keyed by
``(seed, crc32(name))`` in which word ``k`` belongs to profile number ``k``.  Philox is
counter-based, so a batch seeks straight to its first profile number instead of generating the
words before it, and everything derived from the words is element-wise numpy/Arrow work.  Profile
ids are not random at all but a bijective hash of the profile number, which is what makes them
unique.

Distributions, vocabularies and correlations (email follows the name, phone prefix, city and time
zone follow the country, ...) may change between library versions; determinism is promised for one
version of this module.
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

# Fixed "now" so that dates do not depend on when the generator runs.
_REFERENCE_SECONDS = 1_735_689_600  # 2025-01-01T00:00:00Z
_DAY = 86_400
_YEAR = 365.2425 * _DAY

# Offsets are int32: ~100 bytes per row in the widest string column stays below 2 GiB with this.
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
    pa.field(name, pa.bool_())
    for name in ("MSG-push", "MSG-push-all", "MSG-email", "MSG-sms", "MSG-whatsapp")
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


class _Vocab:
    """Strings with sampling weights. Columns hold indices; Arrow ``take`` turns them into strings."""

    def __init__(self, values: Mapping[str, float] | Sequence[str]) -> None:
        weights = values if isinstance(values, Mapping) else dict.fromkeys(values, 1.0)
        self.values = pa.array(list(weights), pa.string())
        self._cdf = _cdf(list(weights.values()))

    def __len__(self) -> int:
        return len(self.values)

    def sample(self, u: np.ndarray) -> np.ndarray:
        return _sample(self._cdf, u)

    def take(self, indices: np.ndarray, null_mask: np.ndarray | None = None) -> pa.Array:
        return pc.take(self.values, pa.array(indices, mask=null_mask))


_LUT_BITS = 16


def _cdf(weights: Sequence[float]) -> np.ndarray:
    """Inverse-CDF lookup table: a binary search per row (``searchsorted``) is ten times slower.

    The table has 2**16 cells, so each weight is honoured to within 1/65536.
    """
    cdf = np.cumsum(np.asarray(weights, dtype=np.float64))
    cells = (np.arange(1 << _LUT_BITS) + 0.5) / (1 << _LUT_BITS)
    return np.searchsorted(cdf / cdf[-1], cells, side="right").astype(np.intp)


def _sample(table: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Index ``i`` with probability ``weights[i] / sum(weights)``, for uniforms ``u`` in [0, 1)."""
    return table[(u * (1 << _LUT_BITS)).astype(np.intp)]


class _GroupedVocab:
    """Strings listed per group (OS versions per platform, ...); a row samples within its group."""

    def __init__(self, groups: Sequence[Sequence[str]]) -> None:
        self.values = pa.array([value for group in groups for value in group], pa.string())
        self._sizes = np.array([len(group) for group in groups])
        self._offsets = np.concatenate([[0], np.cumsum(self._sizes)[:-1]])

    def sample(self, group: np.ndarray, u: np.ndarray) -> np.ndarray:
        return self._offsets[group] + (u * self._sizes[group]).astype(np.int64)

    def take(self, indices: np.ndarray, null_mask: np.ndarray | None = None) -> pa.Array:
        return pc.take(self.values, pa.array(indices, mask=null_mask))


def _ascii_slug(name: str) -> str:
    """``"Chloé O'Brien"`` -> ``"chloeobrien"``: what people actually type into an email address."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


_GENDERS = _Vocab({"M": 0.48, "F": 0.48, "O": 0.04})
_FIRST_NAMES_BY_GENDER = (  # same order as _GENDERS
    ("Aarav", "Rohan", "Arjun", "James", "Liam", "Noah", "Lucas", "Mateus", "José", "Budi", "Omar",
     "Lukas", "Haruto", "Kenji", "Louis", "Diego"),
    ("Priya", "Ananya", "Meera", "Emma", "Olivia", "Sofia", "Ana", "María", "Siti", "Fatima",
     "Aisha", "Lena", "Yui", "Chloé", "Zoë", "Camila"),
    ("Alex", "Sam", "Kiran", "Robin", "Jordan", "Sasha"),
)
_FIRST_NAMES = _GroupedVocab(_FIRST_NAMES_BY_GENDER)
_LAST_NAMES = _Vocab(
    ("Sharma", "Patel", "Gupta", "Iyer", "Reddy", "Khan", "Smith", "Johnson", "O'Brien", "Silva",
     "Santos", "Wijaya", "Al-Farsi", "Müller", "Schmidt", "Tanaka", "Satō", "Dubois", "García",
     "Hernández", "Nguyen", "Kowalski")
)
# Index-aligned with the name vocabularies, so an email can reuse the row's name indices.
_FIRST_NAME_SLUGS = pa.array([_ascii_slug(n) for group in _FIRST_NAMES_BY_GENDER for n in group])
_LAST_NAME_SLUGS = pa.array([_ascii_slug(n) for n in _LAST_NAMES.values.to_pylist()])
_EMAIL_SEPARATORS = _Vocab({".": 0.55, "_": 0.15, "": 0.30})
_EMAIL_DOMAINS = _Vocab({"example.com": 0.6, "example.org": 0.25, "example.net": 0.15})

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
_CITY_WEIGHTS = _Vocab({city: weight for city, _, _, _, weight in _CITIES})
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
_CITY_COUNTRY = np.array([list(_COUNTRIES).index(iso) for _, iso, _, _, _ in _CITIES])
_PHONE_PREFIXES = _GroupedVocab([[prefix for prefix, _ in plans] for _, plans in _COUNTRIES.values()])
_PHONE_DIGITS_AFTER_PREFIX = np.array([n for _, plans in _COUNTRIES.values() for _, n in plans])
_LANGUAGES = _Vocab(sorted({language for language, _ in _COUNTRIES.values()}))
_COUNTRY_LANGUAGE = np.array(
    [_LANGUAGES.values.index(language).as_py() for language, _ in _COUNTRIES.values()]
)
_ENGLISH = _LANGUAGES.values.index("en").as_py()

_PLATFORMS = _Vocab({"Android": 0.60, "iOS": 0.34, "Web": 0.06})
_OS_VERSIONS = _GroupedVocab(  # same order as _PLATFORMS
    (
        ("14", "13", "12", "15", "11", "10"),
        ("17.5.1", "17.4", "18.0", "18.1", "16.7.8"),
        ("Chrome 125", "Safari 17.4", "Firefox 126", "Edge 125"),
    )
)
_APP_VERSIONS = _Vocab(
    {"6.1.0": 0.35, "6.0.2": 0.25, "6.0.0": 0.12, "5.12.4": 0.12, "5.11.0": 0.08, "5.9.1": 0.05,
     "6.2.0-beta.1": 0.03}
)
_COMM_PREF_OPT_IN = {"MSG-push": 0.75, "MSG-push-all": 0.5, "MSG-email": 0.6, "MSG-sms": 0.4,
                     "MSG-whatsapp": 0.3}
_MERGED_ID_COUNTS = _cdf((0.85, 0.10, 0.05))  # 0, 1 or 2 older ids merged into a profile
_SUBSCRIPTION_STATUS = _Vocab(("Subscribed", "Unsubscribed"))

# The list-valued vocabularies have prime sizes: see _distinct_picks.
_SUBSCRIPTION_GROUPS = _Vocab(("newsletter", "offers", "product_updates", "security", "events"))
_TAGS = _Vocab(
    ("early_adopter", "beta_tester", "high_value", "discount_seeker", "night_owl", "weekend_shopper",
     "gamer", "traveller", "foodie", "parent", "student")
)
_NEWSLETTER_TOPICS = _Vocab(("Cricket", "Football", "Tech", "Travel", "Food", "Finance", "Movies"))

_EDUCATION = _Vocab(
    {"High School": 0.25, "Bachelor's": 0.35, "Master's": 0.2, "PhD": 0.04, "Diploma": 0.12,
     "Other": 0.04}
)
_CUSTOMER_TYPES = _Vocab({"Regular": 0.55, "New": 0.2, "VIP": 0.05, "Dormant": 0.15, "Wholesale": 0.05})
_VIP = _CUSTOMER_TYPES.values.index("VIP").as_py()
_FAVOURITE_GAMES = _Vocab(
    ("Ludo ✨", "Échecs", "将棋", "Carrom", "Chess", "Teen Patti", "Rummy", "Candy Crush", "Fortnite",
     "Minecraft", "Sudoku", "Mahjong 麻雀", "FIFA ⚽", "Scrabble")
)
_SIGNUP_SOURCES = _Vocab(
    {"organic": 0.35, "google_ads": 0.2, "facebook_ads": 0.15, "referral": 0.12, "instagram": 0.1,
     "app_store_search": 0.08}
)
_MARKETING_SEGMENTS = _Vocab(
    ("Bargain Hunters", "Loyalists", "Window Shoppers", "Big Spenders", "At Risk", "Newcomers")
)
_NPS_WEIGHTS = _Vocab({str(score): w for score, w in enumerate((2, 1, 1, 2, 2, 4, 5, 9, 16, 22, 20))})
_BLOOD_GROUPS = _Vocab(
    {"O+": 0.37, "A+": 0.28, "B+": 0.2, "AB+": 0.05, "O-": 0.04, "A-": 0.03, "B-": 0.02, "AB-": 0.01}
)

# -- randomness ------------------------------------------------------------------------------------


class _Draws:
    """Random numbers for profile numbers ``start .. start+count-1``, one named stream per quantity.

    Stream ``name`` is PCG64 seeded with ``(seed, crc32(name))``; its word ``k`` belongs to profile
    number ``k``.  ``advance`` jumps to any word in O(log k) steps.  (Philox, counter-based by
    design, would do as well but generates half as fast.)  Naming streams (rather than numbering them in call order) keeps existing columns
    stable when a new random quantity is added.
    """

    def __init__(self, seed: int, start: int, count: int) -> None:
        self._seed, self._start, self._count = seed, start, count
        self._used: dict[int, str] = {}

    def words(self, name: str) -> np.ndarray:
        tag = zlib.crc32(name.encode())
        if tag in self._used:  # reusing a stream would silently correlate two columns
            raise RuntimeError(f"random stream {name!r} clashes with {self._used[tag]!r}")
        self._used[tag] = name
        bit_generator = np.random.PCG64([self._seed, tag]).advance(self._start)
        return bit_generator.random_raw(self._count)

    def uniform(self, name: str) -> np.ndarray:
        """Floats in [0, 1) with 53 random bits."""
        return (self.words(name) >> np.uint64(11)) * (1.0 / (1 << 53))

    def integers(self, name: str, low: int, high: int) -> np.ndarray:
        """Integers in [low, high)."""
        return low + (self.uniform(name) * (high - low)).astype(np.int64)

    def exponential(self, name: str, mean: float) -> np.ndarray:
        return -np.log1p(-self.uniform(name)) * mean

    def lognormal(self, name: str, mu: float, sigma: float) -> np.ndarray:
        # Box-Muller from two uniforms: numpy's own normal sampler consumes a variable number of
        # words per value, which would break the one-word-per-profile alignment.
        radius = np.sqrt(-2.0 * np.log1p(-self.uniform(f"{name}/radius")))
        normal = radius * np.cos(2.0 * np.pi * self.uniform(f"{name}/angle"))
        return np.exp(mu + sigma * normal)

    def nulls(self, name: str, rate: float | None = None) -> np.ndarray:
        """Null mask (True = null) at ``rate``, by default ``_NULL_RATES[name]``."""
        return self.uniform(f"{name}/null") < (_NULL_RATES[name] if rate is None else rate)


_GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)  # odd, so multiplying by it is invertible mod 2**64


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: a bijection on uint64, so distinct inputs stay distinct."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


# -- Arrow building blocks -------------------------------------------------------------------------

# Two hex digits per byte value, as one uint16: a byte-wise lookup beats shifting out nibbles.
_HEX_PAIRS = np.array(
    [int.from_bytes(f"{byte:02x}".encode(), "little") for byte in range(256)], dtype=np.uint16
)
_CROCKFORD_BASE32 = np.frombuffer(b"0123456789ABCDEFGHJKMNPQRSTVWXYZ", dtype=np.uint8)


def _hex_chars(words: np.ndarray, digits: int = 16) -> np.ndarray:
    """(n, digits) ASCII matrix: the leading hex digits of each uint64."""
    big_endian_bytes = words.astype(">u8").view(np.uint8).reshape(-1, 8)
    return _HEX_PAIRS[big_endian_bytes].view(np.uint8)[:, :digits]


def _base32_chars(words: np.ndarray, digits: int) -> np.ndarray:
    shifts = np.arange(59, 59 - 5 * digits, -5, dtype=np.uint64)
    return _CROCKFORD_BASE32[(words[:, None] >> shifts) & np.uint64(0x1F)]


def _decimal_chars(values: np.ndarray, digits: int) -> np.ndarray:
    """(n, digits) ASCII matrix of zero-padded decimals (values must be below 10**digits)."""
    powers = 10 ** np.arange(digits - 1, -1, -1, dtype=np.int64)
    return (values[:, None] // powers % 10 + ord("0")).astype(np.uint8)


def _concat_chars(count: int, *parts: bytes | np.ndarray) -> np.ndarray:
    """Glue constant byte strings and per-row ASCII matrices into one (count, width) matrix."""
    blocks = [
        np.broadcast_to(np.frombuffer(part, dtype=np.uint8), (count, len(part)))
        if isinstance(part, bytes)
        else part
        for part in parts
    ]
    return np.concatenate(blocks, axis=1)


def _validity(null_mask: np.ndarray | None) -> pa.Buffer | None:
    if null_mask is None or not null_mask.any():
        return None
    return pa.py_buffer(np.packbits(~null_mask, bitorder="little"))


def _strings_from_chars(
    chars: np.ndarray, lengths: np.ndarray | None = None, null_mask: np.ndarray | None = None
) -> pa.Array:
    """A string array straight from an ASCII matrix: row ``i`` is ``chars[i, :lengths[i]]``.

    Building the offsets and data buffers directly avoids creating one Python string per row.
    """
    count, width = chars.shape
    if lengths is None:
        offsets = np.arange(0, (count + 1) * width, width, dtype=np.int32)
        data = np.ascontiguousarray(chars).reshape(-1)
    else:
        offsets = _offsets(lengths)
        data = chars[np.arange(width) < lengths[:, None]]  # row-major, so rows stay in order
    return pa.Array.from_buffers(
        pa.string(),
        count,
        [_validity(null_mask), pa.py_buffer(offsets), pa.py_buffer(data)],
        null_count=0 if null_mask is None else int(null_mask.sum()),
    )


def _offsets(lengths: np.ndarray) -> np.ndarray:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def _values(values: np.ndarray, type_: pa.DataType, null_mask: np.ndarray) -> pa.Array:
    return pa.array(values, type=type_, mask=null_mask)


def _list_of_parts(parts: Sequence[pa.Array], counts: np.ndarray, null_mask: np.ndarray | None) -> pa.Array:
    """Row ``i`` lists ``parts[0][i], parts[1][i], ...`` up to ``counts[i]`` items."""
    count = len(counts)
    slots = np.arange(len(parts))
    keep = slots < counts[:, None]
    source = (slots * count + np.arange(count)[:, None])[keep]
    values = pc.take(pa.concat_arrays(list(parts)), pa.array(source))
    mask = None if null_mask is None else pa.array(null_mask)
    return pa.ListArray.from_arrays(pa.array(_offsets(counts)), values, mask=mask)


def _distinct_picks(
    draws: _Draws, name: str, vocab: _Vocab, count_weights: Sequence[float], null_mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, 0..len(count_weights)-1 distinct vocabulary indices: (offsets, flat indices).

    Rows walk the vocabulary from a random start with a random non-zero stride.  The vocabulary
    size is prime, so every stride visits distinct entries: distinct picks without a per-row shuffle.
    """
    size = len(vocab)
    counts = _sample(_cdf(count_weights), draws.uniform(f"{name}/count"))
    if null_mask is not None:
        counts[null_mask] = 0
    first = draws.integers(f"{name}/first", 0, size)
    stride = draws.integers(f"{name}/stride", 1, size)
    steps = np.arange(len(count_weights) - 1)
    picks = (first[:, None] + steps * stride[:, None]) % size
    return _offsets(counts), picks[steps < counts[:, None]]


def _string_list(
    draws: _Draws, name: str, vocab: _Vocab, count_weights: Sequence[float], null_mask: np.ndarray
) -> pa.Array:
    offsets, picks = _distinct_picks(draws, name, vocab, count_weights, null_mask)
    return pa.ListArray.from_arrays(
        pa.array(offsets), pc.take(vocab.values, pa.array(picks)), mask=pa.array(null_mask)
    )


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
    age_years: np.ndarray
    customer_type: np.ndarray
    app_opens_30d: np.ndarray

    @classmethod
    def draw(cls, draws: _Draws) -> _Person:
        gender = _GENDERS.sample(draws.uniform("gender"))
        city = _CITY_WEIGHTS.sample(draws.uniform("city"))
        # Skewed towards younger users, as app audiences are.
        age_years = 18.0 + 52.0 * draws.uniform("age") ** 1.7
        idle = draws.uniform("app_opens/idle") < 0.15
        opens = np.where(idle, 0, np.floor(draws.exponential("app_opens", 14.0))).astype(np.int64)
        return cls(
            gender=gender,
            first_name=_FIRST_NAMES.sample(gender, draws.uniform("first_name")),
            last_name=_LAST_NAMES.sample(draws.uniform("last_name")),
            city=city,
            country=_CITY_COUNTRY[city],
            platform=_PLATFORMS.sample(draws.uniform("platform")),
            age_years=age_years,
            customer_type=_CUSTOMER_TYPES.sample(draws.uniform("Customer Type")),
            app_opens_30d=opens,
        )


def _global_id_chars(hashed: np.ndarray, extra: np.ndarray) -> np.ndarray:
    """``__g`` + 20 hex digits: 16 from ``hashed`` (which carries the uniqueness) + 4 from ``extra``."""
    return _concat_chars(len(hashed), b"__g", _hex_chars(hashed), _hex_chars(extra, 4))


def _profile_id(numbers: np.ndarray, seed: int) -> pa.Array:
    # Multiplying by an odd constant, adding a seed-derived one and mixing are all bijections on
    # uint64, so ids are unique per profile number for a given seed.
    seed_offset = _mix64(np.array([seed], dtype=np.uint64) + _GOLDEN_GAMMA)[0]
    hashed = _mix64(numbers * _GOLDEN_GAMMA + seed_offset)
    return _strings_from_chars(_global_id_chars(hashed, _mix64(hashed ^ np.uint64(0x5DEECE66D))))


def _profile_ids(draws: _Draws, profile_id: pa.Array) -> pa.Array:
    """The current id first, then ids of profiles merged into this one."""
    merged = [
        _strings_from_chars(_global_id_chars(draws.words(f"merged_id_{i}"), draws.words(f"merged_id_{i}/x")))
        for i in (1, 2)
    ]
    counts = 1 + _sample(_MERGED_ID_COUNTS, draws.uniform("merged_ids"))
    return _list_of_parts([profile_id, *merged], counts, None)


def _identity(draws: _Draws, numbers: np.ndarray) -> pa.Array:
    count = len(numbers)
    user_ids = pc.binary_join_element_wise(
        "user_", pc.utf8_lpad(pc.cast(pa.array(numbers.astype(np.int64)), pa.string()), 6, "0"), ""
    )
    legacy_chars = _concat_chars(count, b"legacy-", _hex_chars(draws.words("legacy_id"), 10))
    legacy_ids = _strings_from_chars(legacy_chars)
    null_mask = draws.nulls("identity")
    counts = np.where(null_mask, 0, np.where(draws.uniform("identity/second") < 0.055, 2, 1))
    return _list_of_parts([user_ids, legacy_ids], counts, null_mask)


def _email(draws: _Draws, person: _Person) -> pa.Array:
    has_number = draws.uniform("email/has_number") < 0.6
    number = pa.array(draws.integers("email/number", 1, 1000), mask=~has_number)
    domain = _EMAIL_DOMAINS.take(_EMAIL_DOMAINS.sample(draws.uniform("email/domain")), draws.nulls("email"))
    return pc.binary_join_element_wise(  # a null domain (the null mask) makes the whole email null
        pc.take(_FIRST_NAME_SLUGS, pa.array(person.first_name)),
        _EMAIL_SEPARATORS.take(_EMAIL_SEPARATORS.sample(draws.uniform("email/separator"))),
        pc.take(_LAST_NAME_SLUGS, pa.array(person.last_name)),
        pc.fill_null(pc.cast(number, pa.string()), ""),
        "@",
        domain,
        "",
    )


def _phone(draws: _Draws, person: _Person) -> pa.Array:
    plan = _PHONE_PREFIXES.sample(person.country, draws.uniform("phone/plan"))
    digits = _strings_from_chars(
        _decimal_chars(draws.integers("phone/digits", 0, 10**9), 9), _PHONE_DIGITS_AFTER_PREFIX[plan]
    )
    return pc.binary_join_element_wise(_PHONE_PREFIXES.take(plan, draws.nulls("phone")), digits, "")


def _device(draws: _Draws, person: _Person) -> pa.Array:
    # An APNs/FCM-style token: 256 random bits as 64 hex digits.
    token_chars = np.concatenate([_hex_chars(draws.words(f"device.token/{i}")) for i in range(4)], axis=1)
    children = [
        _strings_from_chars(token_chars, null_mask=draws.nulls("device.token")),
        _PLATFORMS.take(person.platform),
        _OS_VERSIONS.take(_OS_VERSIONS.sample(person.platform, draws.uniform("device.os_version"))),
        _APP_VERSIONS.take(_APP_VERSIONS.sample(draws.uniform("device.app_version"))),
    ]
    return pa.StructArray.from_arrays(children, fields=list(_DEVICE_FIELDS))


def _comm_prefs(draws: _Draws) -> pa.Array:
    rate = _NULL_RATES["comm_prefs"]
    children = [
        pa.array(draws.uniform(name) < opt_in, mask=draws.nulls(name, rate))
        for name, opt_in in _COMM_PREF_OPT_IN.items()
    ]
    return pa.StructArray.from_arrays(children, fields=list(_COMM_PREF_FIELDS))


def _subscription_groups(draws: _Draws) -> pa.Array:
    offsets, groups = _distinct_picks(
        draws, "subscription_groups", _SUBSCRIPTION_GROUPS, (0.25, 0.3, 0.3, 0.15), None
    )
    # One status draw per (row, slot); the flattened entries pick theirs by position in the row.
    slot_u = np.stack([draws.uniform(f"subscription_groups/status/{i}") for i in range(3)], axis=1)
    slots = np.arange(3) < np.diff(offsets)[:, None]
    statuses = (slot_u[slots] >= 0.8).astype(np.int64)  # 80% Subscribed
    return pa.MapArray.from_arrays(
        pa.array(offsets),
        pc.take(_SUBSCRIPTION_GROUPS.values, pa.array(groups)),
        _SUBSCRIPTION_STATUS.take(statuses),
    )


def _properties(draws: _Draws, person: _Person) -> pa.Array:
    count = len(person.gender)
    nulls = draws.nulls
    age = person.age_years
    dob_days = (_REFERENCE_SECONDS - age * _YEAR) // _DAY  # born at midnight UTC, as DOBs are stored
    purchase_age = np.minimum(draws.exponential("last_purchase_at", 21 * _DAY), 730 * _DAY)
    app_opens = person.app_opens_30d
    seen_elsewhere = draws.uniform("last_seen_platform/switched") < 0.15

    columns: dict[str, pa.Array] = {
        "Name": pc.binary_join_element_wise(
            _FIRST_NAMES.take(person.first_name, nulls("Name")), _LAST_NAMES.take(person.last_name), " "
        ),
        "Gender": _GENDERS.take(person.gender, nulls("Gender")),
        "DOB": _values((dob_days * _DAY).astype(np.int64), _SECONDS_UTC, nulls("DOB")),
        "Photo": _strings_from_chars(
            _concat_chars(
                count, b"https://img.example.com/avatars/", _hex_chars(draws.words("Photo")), b".jpg"
            ),
            null_mask=nulls("Photo"),
        ),
        "Employed": _values(
            draws.uniform("Employed") < np.where(age < 60, 0.72, 0.2), pa.bool_(), nulls("Employed")
        ),
        "Education": _EDUCATION.take(_EDUCATION.sample(draws.uniform("Education")), nulls("Education")),
        "Married": _values(
            draws.uniform("Married") < np.clip((age - 20) / 25, 0.05, 0.85), pa.bool_(), nulls("Married")
        ),
        "Age": _values(age.astype(np.int64), pa.int64(), nulls("Age")),
        "Location": pc.take(_CITY_WEIGHTS.values, pa.array(person.city, mask=nulls("Location"))),
        "Timezone": pc.take(_CITY_TIMEZONES, pa.array(person.city, mask=nulls("Timezone"))),
        "Customer Type": _CUSTOMER_TYPES.take(person.customer_type, nulls("Customer Type")),
        "loyalty_points": _values(
            (draws.exponential("loyalty_points", 150.0).astype(np.int64) * 10), pa.int64(),
            nulls("loyalty_points"),
        ),
        "lifetime_value": _values(
            np.round(draws.lognormal("lifetime_value", 5.5, 1.1), 2), pa.float64(), nulls("lifetime_value")
        ),
        "Favourite Game": _FAVOURITE_GAMES.take(
            _FAVOURITE_GAMES.sample(draws.uniform("Favourite Game")), nulls("Favourite Game")
        ),
        "tags": _string_list(draws, "tags", _TAGS, (0.3, 0.3, 0.2, 0.12, 0.08), nulls("tags")),
        "last_purchase_at": _values(
            (_REFERENCE_SECONDS - purchase_age).astype(np.int64), _SECONDS_UTC, nulls("last_purchase_at")
        ),
        "is_premium": _values(
            (person.customer_type == _VIP) | (draws.uniform("is_premium") < 0.07), pa.bool_(),
            nulls("is_premium"),
        ),
        "crm_id": _strings_from_chars(
            _concat_chars(count, b"CRM-", _decimal_chars(draws.integers("crm_id", 0, 10**7), 7)),
            null_mask=nulls("crm_id"),
        ),
        "signup_source": _SIGNUP_SOURCES.take(
            _SIGNUP_SOURCES.sample(draws.uniform("signup_source")), nulls("signup_source")
        ),
        "preferred_language": _LANGUAGES.take(
            np.where(
                draws.uniform("preferred_language") < 0.65, _COUNTRY_LANGUAGE[person.country], _ENGLISH
            ),
            nulls("preferred_language"),
        ),
        "cart_items": _values(
            np.minimum(draws.exponential("cart_items", 1.8), 30).astype(np.int64), pa.int64(),
            nulls("cart_items"),
        ),
        "avg_order_value": _values(
            np.round(draws.lognormal("avg_order_value", 3.6, 0.7), 2), pa.float64(), nulls("avg_order_value")
        ),
        "referral_code": _strings_from_chars(
            _concat_chars(count, b"REF-", _base32_chars(draws.words("referral_code"), 6)),
            null_mask=nulls("referral_code"),
        ),
        "nps_score": _values(
            _NPS_WEIGHTS.sample(draws.uniform("nps_score")).astype(np.int64), pa.int64(), nulls("nps_score")
        ),
        "marketing_segment": _MARKETING_SEGMENTS.take(
            _MARKETING_SEGMENTS.sample(draws.uniform("marketing_segment")), nulls("marketing_segment")
        ),
        "app_opens_30d": _values(app_opens, pa.int64(), nulls("app_opens_30d")),
        # Users who stopped opening the app are the likely churners.
        "churn_risk": _values(
            np.round(0.85 * np.exp(-app_opens / 8.0) + 0.15 * draws.uniform("churn_risk"), 3),
            pa.float64(),
            nulls("churn_risk"),
        ),
        "country": _COUNTRY_CODES.take(person.country, nulls("country")),
        "city_tier": _values(_CITY_TIERS[person.city], pa.int64(), nulls("city_tier")),
        "newsletter_topics": _string_list(
            draws, "newsletter_topics", _NEWSLETTER_TOPICS, (0.35, 0.3, 0.2, 0.15), nulls("newsletter_topics")
        ),
        "last_seen_platform": _PLATFORMS.take(
            np.where(seen_elsewhere, _PLATFORMS.sample(draws.uniform("last_seen_platform")), person.platform),
            nulls("last_seen_platform"),
        ),
        "kyc_verified": _values(draws.uniform("kyc_verified") < 0.6, pa.bool_(), nulls("kyc_verified")),
        "wallet_balance": _values(
            np.where(
                draws.uniform("wallet_balance/empty") < 0.35,
                0.0,
                np.round(draws.exponential("wallet_balance", 400.0), 2),
            ),
            pa.float64(),
            nulls("wallet_balance"),
        ),
        "Blood Group": _BLOOD_GROUPS.take(
            _BLOOD_GROUPS.sample(draws.uniform("Blood Group")), nulls("Blood Group")
        ),
    }
    fields = list(_PROPERTY_FIELDS)
    return pa.StructArray.from_arrays([columns[field.name] for field in fields], fields=fields)


def _updated_at(draws: _Draws) -> pa.Array:
    age_us = (draws.uniform("updated_at") * 365 * _DAY * 1_000_000).astype(np.int64)
    return pa.array(_REFERENCE_SECONDS * 1_000_000 - age_us, type=pa.timestamp("us", tz="UTC"))


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
    and its profile number, never on ``batch_size`` or ``start``.  Memory use is proportional to
    ``batch_size``.
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
