"""Deterministic, vectorised per-row fingerprints of Arrow record batches.

Incremental exports store one ``uint64`` fingerprint per profile and compare it with the next run's,
possibly in another process, on another machine, with another version of this package. So the
result is defined bit for bit (below) and computed with numpy over the Arrow buffers: Python loops
run over columns, struct fields and word positions within values, never over rows or values.

``FINGERPRINT_VERSION`` names this definition. Changing any part of it (a constant, a key, how a
type is read) changes the fingerprints, and every profile of the next run would look changed:
bump the version with it, so that state written under the old definition is recognised and rebuilt.

Definition (version 1)
----------------------
All arithmetic is on unsigned 64-bit integers, modulo 2**64.

* ``splitmix(z)`` is the splitmix64 finaliser; ``fmix(z)`` is MurmurHash3's fmix64.
* ``mixw(x, c)``: ``x ^= x >> 32; x *= c; x ^= x >> 29; x *= 0xBF58476D1CE4E5B9``. With ``c`` odd
  every step can be undone, so ``mixw(., c)`` is a bijection, and ``mixw(0, c) == 0``.
* A *key* is a 64-bit ``k``. A column's or struct field's key is the first 8 bytes (little endian)
  of ``blake2b(name.encode("utf-8"), digest_size=8, person=b"pe-fp-name-v1")``; list elements and
  :func:`value_hashes` use the labels ``"item"`` and ``"value"`` with ``person=b"pe-fp-role-v1"``.
  A key gives position multipliers ``c_m = splitmix(k + (m + 1) * G) | 1`` for m = 0, 1, ...
  (``G = 0x9E3779B97F4A7C15``) and, from ``t = k ^ 0xD1B54A32D192ED03``, a length multiplier
  ``K = splitmix(t + G)`` and tags ``T_bytes, T_list, T_number, T_struct = splitmix(t + i * G)``
  for i = 2, 3, 4, 5.

The *term* of a non-null value under key ``k``:

* bytes (string, binary, their large and view variants, fixed_size_binary; decimals as their
  string form; month_day_nano intervals as their 16 bytes): cut into 8-byte little-endian words
  ``w_0 .. w_{n-1}`` counted from the value's first byte, the last one zero-padded;
  ``term = sum_m mixw(w_m, c_m) + len * K + T_bytes``.
* numbers: integers sign- or zero-extended to 64 bits, floats widened to float64 with every NaN
  made the canonical quiet NaN (-0.0 stays apart from 0.0), booleans as 0/1, dates, times,
  timestamps and durations by their integer storage (unit and time zone are not part of it):
  ``term = mixw(bits ^ T_number, c_0)``.
* lists (list, large_list, list_view, large_list_view, fixed_size_list; a map is the list of its
  entries as ``{key, value}`` structs, whatever the entry fields are called): with ``e_m`` the
  term of element m under the ``"item"`` key, 0 for a null element,
  ``term = sum_m mixw(e_m, c_m) + len * K + T_list``.
* struct: with ``d`` the sum of the terms of its non-null fields, each under its field name's key,
  ``term = mixw(d ^ T_struct, c_0)``.
* dictionary: the term of the decoded value. Null type: always null. Extension types: their storage.
  Anything else is cast to string (a TypeError names the column when that fails, e.g. unions).

:func:`row_fingerprints` is the sum, over the batch's columns, of the terms of the row's non-null
values, each under its column name's key. :func:`value_hashes` is ``fmix(term)`` under the
``"value"`` key, and 0 for null.

Implementation
--------------
Rows are taken 16384 at a time, columns one by one. Byte strings go word position by word
position: word m of every value at once, each assembled from the two aligned words it straddles
(a gather and two shifts), masked past the value's end, mixed and added; values that all have
the same length (ids, tokens) read their words as strided views instead. A polynomial hash over
bytes would need a prefix sum over every byte, and numpy's cumulative sums cost about 3 ns per
element. Work arrays are reused between calls. With the ``[fast]`` extra, byte strings go through
one compiled loop instead (:mod:`profile_exports.fingerprint_kernels`, numba), to the same values
and about twice as fast, without holding the GIL. ``benchmarks/fingerprints.py`` measures the
synthetic export's layout: 1,000,000 rows of 39 columns in 0.7 to 0.9 s on one core.

Guarantees
----------
* Deterministic: no ``hash()``, no random seed; the same on every platform and in every process.
* Layout independent: only logical values enter the definition, so slices, chunking, string vs
  large_string vs string_view, the binary variants, list vs large_list vs list_view,
  dictionary-encoded or not, all give the same result.
* A null contributes nothing: a column that is null in a row does not change the row's
  fingerprint, so appending a mostly empty column changes only the rows where it has values. The
  same holds for struct fields. A null struct differs from a struct whose fields are all null.
  Column order does not matter (two columns of the same name would share a key).
* Sensitive: ``mixw`` is a bijection and everything else adds up, so a change of one byte of a
  string, of one number, of one element of a list or one field of a struct (the shape staying the
  same), always changes the fingerprint. Other changes (lengths, null to value) change it but for
  a chance of about 2**-64: "" is not null, [] is not null, ["a", "b"] is not ["ab"], ["a", None]
  is not ["a"]. List and map order matter. It is not a cryptographic hash: inputs crafted to
  collide are out of scope. Integer and float widths are not part of a value (int32 5 equals
  int64 5); the kind is (5 is not "5").
"""

from __future__ import annotations

import hashlib
import itertools
import os
import threading
from collections.abc import Callable
from functools import cache, lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["FINGERPRINT_VERSION", "row_fingerprints", "value_hashes"]

FINGERPRINT_VERSION = 1

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_TAG_SALT = 0xD1B54A32D192ED03
_MIX_M = np.uint64(0xBF58476D1CE4E5B9)
_FMIX_1 = np.uint64(0xFF51AFD7ED558CCD)
_FMIX_2 = np.uint64(0xC4CEB9FE1A85EC53)
_CANONICAL_NAN = 0x7FF8000000000000
_ALL_ONES = np.uint64(_MASK64)
_U64_64 = np.uint64(64)
_SHIFT_29 = np.uint64(29)
_SHIFT_32 = np.uint64(32)
_SHIFT_33 = np.uint64(33)

# Rows per slice of work: a dozen work arrays of this many uint64 stay in the L2 cache, and each
# numpy call's fixed cost is spread over enough elements (measured: 16384 beats 8192 and 4096).
_CHUNK_ROWS = 16384
# Values with more words than this go through the flat path, which indexes every word, instead of
# the loop over word positions, which costs a round of numpy calls per position.
_LOOP_WORDS = 64
# Bound on the words materialised at once on the flat path.
_FLAT_WORDS = 1 << 20
# List arrays with more elements than this are hashed a part of their rows at a time.
_LIST_ELEMENTS = 1 << 20
# Scratch blocks of more elements than this are not kept between calls.
_SCRATCH_KEEP = 1 << 20
# The loop over word positions drops the values that have no word left at these positions, when
# they are at least half of at least _COMPACT_MIN values.
_COMPACT_AT = frozenset({0, 2, 4, 8, 16, 32})
_COMPACT_MIN = 1024


def _splitmix(z: int) -> int:
    z &= _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def _position_multipliers(key: int, m: np.ndarray) -> np.ndarray:
    """``c_m = splitmix(k + (m + 1) * G) | 1`` for an array of positions."""
    z = m.astype(np.uint64)
    z += np.uint64(1)
    z *= np.uint64(_GOLDEN)
    z += np.uint64(key)
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    z |= np.uint64(1)
    return z


class _Key:
    """The constants one key derives: position multipliers, length multiplier and type tags."""

    __slots__ = ("length", "list_tag", "number_tag", "positions", "string_tag", "struct_tag", "value")

    def __init__(self, value: int) -> None:
        self.value = value
        # The loop over word positions takes these as scalars; lists and long values compute theirs.
        self.positions = _position_multipliers(value, np.arange(_LOOP_WORDS))
        tag_seed = value ^ _TAG_SALT
        self.length, self.string_tag, self.list_tag, self.number_tag, self.struct_tag = (
            np.uint64(_splitmix(tag_seed + i * _GOLDEN)) for i in range(1, 6)
        )

    def position_multipliers(self, m: np.ndarray) -> np.ndarray:
        if len(m) and int(m.max()) < _LOOP_WORDS:
            return self.positions.take(m)
        return _position_multipliers(self.value, m)


def _blake_key(label: str, person: bytes) -> int:
    digest = hashlib.blake2b(label.encode("utf-8"), digest_size=8, person=person).digest()
    return int.from_bytes(digest, "little")


@lru_cache(maxsize=4096)
def _name_key(name: str) -> _Key:
    return _Key(_blake_key(name, b"pe-fp-name-v1"))


@cache
def _role_key(role: str) -> _Key:
    return _Key(_blake_key(role, b"pe-fp-role-v1"))


class _Scratch(threading.local):
    """Work arrays reused between calls, one set per thread.

    A fresh array of a chunk's size comes from mmap and page-faults on first touch, which costs more
    than the arithmetic done in it (allocating them per call made the whole thing twice as slow).
    """

    def __init__(self) -> None:
        self.blocks: dict[str, np.ndarray] = {}
        self.views: dict[tuple[str, int, int], list[np.ndarray]] = {}

    def rows(self, name: str, count: int, n: int, dtype: type[np.generic] = np.uint64) -> list[np.ndarray]:
        """``count`` arrays of length ``n``, valid until the next request under ``name``."""
        views = self.views.get((name, count, n))
        if views is not None and views[0].dtype == dtype:
            return views
        block = self.blocks.get(name)
        if block is None or block.dtype != dtype or block.shape[0] < count or block.shape[1] < n:
            # Rows a power of two apart in memory would compete for the same cache sets: pad them.
            block = np.empty((count, max(n, 1024) + 200), dtype=dtype)
            if count * n > _SCRATCH_KEEP:
                return list(block[:, :n])
            self.blocks[name] = block
            self.views = {k: v for k, v in self.views.items() if k[0] != name}
        views = list(block[:count, :n])
        if len(self.views) < 64:  # chunks come in few sizes; do not keep views of every size
            self.views[(name, count, n)] = views
        return views


_scratch = _Scratch()


def _mixw(x: np.ndarray, c: np.ndarray | np.uint64, tmp: np.ndarray) -> np.ndarray:
    """``mixw`` in place; ``tmp`` is a work array of the same length."""
    np.right_shift(x, _SHIFT_32, out=tmp)
    x ^= tmp
    x *= c
    np.right_shift(x, _SHIFT_29, out=tmp)
    x ^= tmp
    x *= _MIX_M
    return x


def _fmix(x: np.ndarray) -> np.ndarray:
    """MurmurHash3 fmix64 in place."""
    tmp = np.empty_like(x)
    for multiplier in (_FMIX_1, _FMIX_2):
        np.right_shift(x, _SHIFT_33, out=tmp)
        x ^= tmp
        x *= multiplier
    np.right_shift(x, _SHIFT_33, out=tmp)
    x ^= tmp
    return x


# --- buffers ------------------------------------------------------------------------------------


def _data_bytes(buffer: pa.Buffer | None) -> np.ndarray:
    return np.empty(0, dtype=np.uint8) if buffer is None else np.frombuffer(buffer, dtype=np.uint8)


def _buffer_values(buffer: pa.Buffer | None, dtype: type[np.generic], offset: int, n: int) -> np.ndarray:
    """Elements ``offset .. offset + n`` of a buffer (which may be longer, or absent if there are none)."""
    if n == 0 or buffer is None:
        return np.zeros(n, dtype=dtype)  # absent only for arrays without values
    return np.frombuffer(buffer, dtype=dtype, count=n, offset=offset * np.dtype(dtype).itemsize)


def _offsets(buffer: pa.Buffer | None, dtype: type[np.generic], offset: int, n: int) -> np.ndarray:
    """The ``n + 1`` offsets of ``n`` values starting at ``offset``."""
    return _buffer_values(buffer, dtype, offset, n + 1)


def _unpack_bits(buffer: pa.Buffer, offset: int, n: int) -> np.ndarray:
    """Bits ``offset .. offset + n`` of a bitmap as uint8 0/1."""
    first = offset >> 3
    raw = np.frombuffer(buffer, dtype=np.uint8, count=((offset + n + 7) >> 3) - first, offset=first)
    start = offset & 7
    return np.unpackbits(raw, bitorder="little")[start : start + n]


def _validity(array: pa.Array) -> np.ndarray | None:
    """Boolean mask of the non-null slots, or None when there is no null."""
    if array.null_count == 0:
        return None
    bitmap = array.buffers()[0]
    if bitmap is None:  # nulls without a bitmap (not expected of the types read here)
        return np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    return _unpack_bits(bitmap, array.offset, len(array)).view(bool)


def _add_valid(acc: np.ndarray, terms: np.ndarray, valid: np.ndarray | None) -> None:
    """``acc += terms`` where valid; clobbers ``terms``."""
    if valid is not None:
        # Several times faster than np.add(..., where=valid), which takes numpy's masked loop.
        np.multiply(terms, valid, out=terms)
    acc += terms


# --- bytes --------------------------------------------------------------------------------------


@cache
def _byte_kernel() -> Callable[..., None] | None:
    """The compiled byte-term loop (``[fast]`` extra), unless numba is missing or ``PROFILE_EXPORTS_JIT=0``."""
    if os.environ.get("PROFILE_EXPORTS_JIT", "1").strip().lower() in {"0", "false", "no", "off"}:
        return None
    try:
        from .fingerprint_kernels import byte_terms
    except ImportError:
        return None
    return byte_terms


def _bytes_terms(
    offsets: np.ndarray, data: np.ndarray, key: _Key, out: np.ndarray, valid: np.ndarray | None
) -> np.ndarray:
    """Terms of byte strings, given their ``n + 1`` offsets into ``data``."""
    n = len(offsets) - 1
    if n == 0:
        return out
    kernel = _byte_kernel()
    if kernel is not None:
        words = data[: len(data) & ~7].view(np.uint64)
        offsets = offsets.astype(np.int64, copy=False)  # one compiled variant, not one per offset width
        kernel(offsets, data, words, np.uint64(key.value), key.positions, key.length, key.string_tag, out)
        return out
    start, length = _scratch.rows("offsets", 2, n, np.int64)
    np.subtract(offsets[1:], offsets[:-1], out=length)
    longest = int(length.max())
    if longest == int(length.min()) and longest <= 8 * _LOOP_WORDS:
        out.fill(np.uint64((longest * int(key.length) + int(key.string_tag)) & _MASK64))
        _regular_byte_sums(data, int(offsets[0]), longest, key, out)
        return out
    # Copy the bytes from an 8-aligned position: aligned words for the reads below, and zero
    # padding after the end for the reads that run past it.
    first = int(offsets[0]) & ~7
    nbytes = int(offsets[n]) - first
    (words,) = _scratch.rows("words", 1, (nbytes >> 3) + 2)
    words[nbytes >> 3 :] = 0
    words.view(np.uint8)[:nbytes] = data[first : first + nbytes]
    np.subtract(offsets[:-1], first, out=start)
    np.multiply(length.view(np.uint64), key.length, out=out)
    out += key.string_tag
    if longest > 8 * _LOOP_WORDS:
        long = np.flatnonzero(length > 8 * _LOOP_WORDS)
        out[long] += _byte_sums_flat(words, start[long], length[long], key)
        length[long] = 0  # the loop below sees them as empty
    _byte_sums_loop(words, start, length, key, out, valid)
    return out


def _regular_byte_sums(data: np.ndarray, first: int, length: int, key: _Key, out: np.ndarray) -> None:
    """Add ``sum_m mixw(w_m, c_m)`` of values of ``length`` bytes each, back to back from ``data[first]``.

    Ids, hashes and tokens often come like this (also when their null slots hold bytes). Word m of
    every value is then a strided view of the bytes themselves: no copy, offsets, gathers or
    shifts, and numpy copies the unaligned words quickly.
    """
    n = len(out)
    word, tmp = _scratch.rows("regular", 2, n)
    count = (length + 7) >> 3
    for m in range(count):
        # Reads of the last few values may run past the data: those come from a padded copy.
        room = len(data) - first - 8 * m - 8
        whole = 0 if room < 0 else min(n, room // length + 1)
        strided = np.ndarray((whole,), dtype=np.uint64, buffer=data, offset=first + 8 * m, strides=(length,))
        np.copyto(word[:whole], strided)
        if whole < n:
            rest = first + whole * length + 8 * m
            padded = np.zeros((n - whole) * length + 8, dtype=np.uint8)
            padded[: len(data) - rest] = data[rest:]
            np.copyto(word[whole:], np.ndarray((n - whole,), dtype=np.uint64, buffer=padded, strides=(length,)))
        if m == count - 1 and length & 7:
            word &= np.uint64((1 << (8 * (length & 7))) - 1)
        _mixw(word, key.positions[m], tmp)
        out += word


def _byte_sums_loop(
    words: np.ndarray, start: np.ndarray, length: np.ndarray, key: _Key, out: np.ndarray, valid: np.ndarray | None
) -> None:
    """Add ``sum_m mixw(w_m, c_m)`` of each value to ``out``, one round of numpy calls per word position.

    ``start`` and ``length`` are byte positions in ``words``, which ends with two zero words. Word
    m of a value is assembled from the two aligned words it straddles; bytes past the value's end
    are masked off, so a value out of words adds ``mixw(0) == 0``. Null slots may come out as
    anything: their terms are discarded.
    """
    n = len(start)
    index: np.ndarray | None = None  # the values the work arrays hold, when not all of them
    acc = out
    longest = int(length.max())
    if valid is not None and n >= _COMPACT_MIN:
        nulls = n - np.count_nonzero(valid)
        # Null slots may own bytes; leaving them out costs about as much as a word of each value.
        if nulls * ((longest + 7) >> 3) >= n:
            index = np.flatnonzero(valid)
            start, length = start[index], length[index]
            acc = np.zeros(len(index), dtype=np.uint64)
            longest = int(length.max()) if len(index) else 0
    count = len(start)
    if count == 0:
        return
    shortest = int(length.min())
    base, low_shift, high_shift = _scratch.rows("loop-int", 3, count, np.int64)
    low, high, word, tmp, mask = _scratch.rows("loop-u64", 5, count)
    np.right_shift(start, 3, out=base)
    np.bitwise_and(start, 7, out=low_shift)
    np.left_shift(low_shift, 3, out=low_shift)
    low_shift_u = low_shift.view(np.uint64)
    # numpy defines a shift by 64 as giving 0: an aligned value takes nothing from the next word.
    high_shift_u = np.subtract(_U64_64, low_shift_u, out=high_shift.view(np.uint64))
    words.take(base, mode="clip", out=low)
    mask_shift: np.ndarray | None = None  # 64 * (m + 1) - 8 * length, for the masks
    for m in range((longest + 7) >> 3):
        if m in _COMPACT_AT and count >= _COMPACT_MIN:
            has_word = np.greater(length, 8 * m, out=mask.view(bool)[:count])
            if 2 * np.count_nonzero(has_word) <= count:  # most are out of words: go on with the others
                keep = np.flatnonzero(has_word)
                if index is None:
                    index = keep
                else:
                    out[index] += acc
                    index = index[keep]
                base, low_shift_u, high_shift_u, length, low = (
                    x[keep] for x in (base, low_shift_u, high_shift_u, length, low)
                )
                count = len(keep)
                if count == 0:
                    return
                acc = np.zeros(count, dtype=np.uint64)
                high, word, tmp, mask = high[:count], word[:count], tmp[:count], mask[:count]
                mask_shift = None
                shortest = int(length.min())
        # Clipped indices only happen past a value's end, where the bytes are masked off anyway.
        words[m + 1 :].take(base, mode="clip", out=high)
        np.right_shift(low, low_shift_u, out=word)
        np.left_shift(high, high_shift_u, out=tmp)
        word |= tmp
        if 8 * (m + 1) > shortest:  # some values end within this word
            if shortest == longest:  # all the same length: one mask for all
                word &= np.uint64((1 << (8 * min(8, longest - 8 * m))) - 1)
            else:
                if mask_shift is None:
                    mask_shift = np.multiply(length, -8)
                    mask_shift += 64 * m
                mask_shift += 64
                np.maximum(mask_shift, 0, out=tmp.view(np.int64))
                np.right_shift(_ALL_ONES, tmp, out=mask)
                word &= mask
        _mixw(word, key.positions[m], tmp)
        acc += word
        low, high = high, low
    if index is not None:
        out[index] += acc


def _local_words(words: np.ndarray, start: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every word of the given values, flattened, with each word's position within its value."""
    count = (length + 7) >> 3
    total = int(count.sum())
    position = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
    byte = np.repeat(start, count) + 8 * position
    index = byte >> 3
    shift = ((byte & 7) << 3).view(np.uint64)
    word = words[index] >> shift
    word |= words[index + 1] << (_U64_64 - shift)
    remaining = (np.repeat(length, count) - 8 * position).clip(0, 8)
    word &= ~(_ALL_ONES << (8 * remaining).view(np.uint64))
    return word, position


def _positional_sums(
    values: np.ndarray, offsets: np.ndarray, positions: np.ndarray, key: _Key, out: np.ndarray | None = None
) -> np.ndarray:
    """``sum mixw(values[i], c_{positions[i]})`` per segment ``offsets[j] .. offsets[j + 1]``; clobbers values."""
    mixed = _mixw(values, key.position_multipliers(positions), np.empty_like(values))
    prefix = np.empty(len(values) + 1, dtype=np.uint64)
    prefix[0] = 0
    np.cumsum(mixed, out=prefix[1:])
    bounds = prefix.take(offsets)
    return np.subtract(bounds[1:], bounds[:-1], out=out)


def _byte_sums_flat(words: np.ndarray, start: np.ndarray, length: np.ndarray, key: _Key) -> np.ndarray:
    """``sum_m mixw(w_m, c_m)`` of long values, in pieces of at most _FLAT_WORDS words."""
    piece_bytes = 8 * _FLAT_WORDS
    n = len(start)
    pieces = (length + piece_bytes - 1) // piece_bytes
    owner = np.repeat(np.arange(n), pieces)
    rank = np.arange(len(owner), dtype=np.int64) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    piece_start = start[owner] + rank * piece_bytes
    piece_length = np.minimum(length[owner] - rank * piece_bytes, piece_bytes)
    sums = np.zeros(n, dtype=np.uint64)
    # Groups of about _FLAT_WORDS words: a Python loop over bounded units of work, for memory.
    group = np.cumsum((piece_length + 7) >> 3) // _FLAT_WORDS
    bounds = [0, *(np.flatnonzero(np.diff(group)) + 1).tolist(), len(owner)]
    for lo, hi in itertools.pairwise(bounds):
        word, position = _local_words(words, piece_start[lo:hi], piece_length[lo:hi])
        count = (piece_length[lo:hi] + 7) >> 3
        offsets = np.zeros(len(count) + 1, dtype=np.int64)
        np.cumsum(count, out=offsets[1:])
        position += np.repeat(rank[lo:hi] * _FLAT_WORDS, count)
        np.add.at(sums, owner[lo:hi], _positional_sums(word, offsets, position, key))
    return sums


# --- per type -----------------------------------------------------------------------------------
# A handler writes the terms of an array's values under a key into ``out`` and returns them with
# the mask of non-null values (None: no nulls). Terms of null slots are unspecified: callers mask.

_Terms = tuple[np.ndarray, np.ndarray | None]
_Handler = Callable[[pa.Array, _Key, str, np.ndarray, int], _Terms]


def _binary_terms(offset_type: type[np.generic]) -> _Handler:
    def handler(array: pa.Array, key: _Key, path: str, out: np.ndarray, depth: int) -> _Terms:
        buffers = array.buffers()
        offsets = _offsets(buffers[1], offset_type, array.offset, len(array))
        valid = _validity(array)
        return _bytes_terms(offsets, _data_bytes(buffers[2]), key, out, valid), valid

    return handler


def _fixed_width_bytes_terms(width: int) -> _Handler:
    def handler(array: pa.Array, key: _Key, path: str, out: np.ndarray, depth: int) -> _Terms:
        n = len(array)
        data = _data_bytes(array.buffers()[1])[array.offset * width : (array.offset + n) * width]
        valid = _validity(array)
        return _bytes_terms(np.arange(n + 1, dtype=np.int64) * width, data, key, out, valid), valid

    return handler


def _cast_terms(target: pa.DataType) -> _Handler:
    def handler(array: pa.Array, key: _Key, path: str, out: np.ndarray, depth: int) -> _Terms:
        return _terms(array.cast(target), key, path, out, depth)

    return handler


# What narrower numbers widen to (signed integers: int64, which sign-extends).
_WIDENED: dict[type[np.generic], type[np.generic]] = {
    np.uint8: np.uint64,
    np.uint16: np.uint64,
    np.uint32: np.uint64,
    np.float16: np.float64,
    np.float32: np.float64,
}


def _number_terms(storage: type[np.generic]) -> _Handler:
    """Numbers, by the numpy dtype of their values buffer."""
    is_float = np.issubdtype(storage, np.floating)
    widened = _WIDENED.get(storage, np.int64)

    def handler(array: pa.Array, key: _Key, path: str, out: np.ndarray, depth: int) -> _Terms:
        n = len(array)
        values = _buffer_values(array.buffers()[1], storage, array.offset, n)
        if values.itemsize == 8:  # no copy: the xor writes the result
            np.bitwise_xor(values.view(np.uint64), key.number_tag, out=out)
        else:
            np.copyto(out.view(widened), values)
            out ^= key.number_tag
        if is_float and n and np.isnan(values.min()):  # min propagates NaN: one cheap pass
            np.copyto(out, np.uint64(_CANONICAL_NAN ^ int(key.number_tag)), where=np.isnan(values))
        (tmp,) = _scratch.rows("number", 1, n)
        _mixw(out, key.positions[0], tmp)
        return out, _validity(array)

    return handler


def _boolean_terms(array: pa.Array, key: _Key, path: str, out: np.ndarray, depth: int) -> _Terms:
    # Only two terms are possible: compute them once and pick.
    choices = np.array([0, 1], dtype=np.uint64) ^ key.number_tag
    _mixw(choices, key.positions[0], np.empty_like(choices))
    choices.take(_unpack_bits(array.buffers()[1], array.offset, len(array)), out=out)
    return out, _validity(array)


def _list_terms(
    offsets: np.ndarray, child: pa.Array, key: _Key, path: str, out: np.ndarray, depth: int, take: np.ndarray | None
) -> np.ndarray:
    """Terms of lists whose elements are ``child[offsets[i] .. offsets[i + 1]]`` (offsets from 0).

    With ``take``, the elements in list order are ``child[take]`` instead (list views).
    """
    element, element_valid = _terms(
        child, _role_key("item"), f"{path}[]", np.empty(len(child), dtype=np.uint64), depth + 1
    )
    if element_valid is not None:
        element *= element_valid  # a null element is 0, and still counts towards the length
    if take is not None:
        element = element[take]
    total = int(offsets[-1])
    # Each element's position in its list. np.repeat costs about 10 ns per list: instead, scatter
    # each list's start to its first element and carry it forward.
    list_start = np.zeros(total + 1, dtype=np.int64)
    list_start[offsets[:-1]] = offsets[:-1]
    np.maximum.accumulate(list_start, out=list_start)
    position = np.arange(total, dtype=np.int64)
    position -= list_start[:total]
    _positional_sums(element, offsets, position, key, out)
    length = np.diff(offsets).view(np.uint64)
    length *= key.length
    out += length
    out += key.list_tag
    return out


def _in_parts(
    handler: _Handler, array: pa.Array, key: _Key, path: str, out: np.ndarray, depth: int, ends: np.ndarray
) -> _Terms:
    """The terms of lists with many elements in all, some rows at a time (to bound the memory used).

    ``ends`` are the lists' end offsets, counted from the first element.
    """
    n = len(array)
    cuts = np.searchsorted(ends, np.arange(_LIST_ELEMENTS, int(ends[-1]), _LIST_ELEMENTS), side="left") + 1
    bounds = [0, *np.unique(np.clip(cuts, 1, n - 1)).tolist(), n]
    valid: np.ndarray | None = None
    for lo, hi in itertools.pairwise(bounds):
        part_valid = handler(array.slice(lo, hi - lo), key, path, out[lo:hi], depth)[1]
        if part_valid is not None:
            if valid is None:
                valid = np.ones(n, dtype=bool)
            valid[lo:hi] = part_valid
    return out, valid


def _offset_list_terms(offset_type: type[np.generic], is_map: bool) -> _Handler:
    def handler(array: pa.Array, key: _Key, path: str, out: np.ndarray, depth: int) -> _Terms:
        n = len(array)
        raw = _offsets(array.buffers()[1], offset_type, array.offset, n)
        first = int(raw[0])
        if int(raw[n]) - first > _LIST_ELEMENTS and n > 1:
            return _in_parts(handler, array, key, path, out, depth, raw[1:] - first)
        child = array.values.slice(first, int(raw[n]) - first)
        if is_map:  # entries hash as {key, value} structs, whatever their fields are called
            child = pa.StructArray.from_arrays([child.field(0), child.field(1)], names=["key", "value"])
        offsets = np.subtract(raw, first, dtype=np.int64)
        return _list_terms(offsets, child, key, path, out, depth, None), _validity(array)

    return handler


def _fixed_size_list_terms(array: pa.Array, key: _Key, path: str, out: np.ndarray, depth: int) -> _Terms:
    n = len(array)
    width = array.type.list_size
    if n * width > _LIST_ELEMENTS and n > 1:
        ends = np.arange(1, n + 1, dtype=np.int64) * width
        return _in_parts(_fixed_size_list_terms, array, key, path, out, depth, ends)
    child = array.values.slice(array.offset * width, n * width)  # .values ignores the slice
    offsets = np.arange(n + 1, dtype=np.int64) * width
    return _list_terms(offsets, child, key, path, out, depth, None), _validity(array)


def _list_view_terms(offset_type: type[np.generic]) -> _Handler:
    # Casting a list view to a list drops elements in pyarrow 26: gather the elements instead.
    def handler(array: pa.Array, key: _Key, path: str, out: np.ndarray, depth: int) -> _Terms:
        buffers = array.buffers()
        n = len(array)
        starts = _buffer_values(buffers[1], offset_type, array.offset, n).astype(np.int64)
        sizes = _buffer_values(buffers[2], offset_type, array.offset, n).astype(np.int64)
        valid = _validity(array)
        if valid is not None:
            sizes *= valid  # a null list view may point anywhere
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        used = sizes > 0
        low = int(starts[used].min()) if used.any() else 0
        high = int((starts + sizes)[used].max()) if used.any() else 0
        take = np.arange(offsets[-1], dtype=np.int64) + np.repeat(starts - low - offsets[:-1], sizes)
        return _list_terms(offsets, array.values.slice(low, high - low), key, path, out, depth, take), valid

    return handler


def _struct_terms(array: pa.Array, key: _Key, path: str, out: np.ndarray, depth: int) -> _Terms:
    out[:] = 0
    (child_out,) = _scratch.rows(f"struct-{depth}", 1, len(array))
    for i, field in enumerate(array.type):
        # .field() applies the struct's slice and keeps the child's own nulls (.flatten() would add the struct's)
        terms, valid = _terms(array.field(i), _name_key(field.name), f"{path}.{field.name}", child_out, depth + 1)
        _add_valid(out, terms, valid)
    out ^= key.struct_tag
    _mixw(out, key.positions[0], child_out)
    return out, _validity(array)


def _take_terms(entries: np.ndarray, entry_valid: np.ndarray | None, indices: pa.Array, out: np.ndarray) -> _Terms:
    """Terms of dictionary indices, given the terms of the dictionary's entries."""
    index = _buffer_values(indices.buffers()[1], _integer_storage(indices.type), indices.offset, len(indices))
    if len(entries):
        entries.take(index, mode="clip", out=out)  # null slots may hold any index
    else:  # then every slot is null
        out[:] = 0
    valid = _validity(indices)
    if entry_valid is not None and len(entry_valid):
        entry_valid = entry_valid.take(index, mode="clip")
        valid = entry_valid if valid is None else valid & entry_valid
    return out, valid


def _dictionary_terms(array: pa.Array, key: _Key, path: str, out: np.ndarray, depth: int) -> _Terms:
    dictionary = array.dictionary
    entries, entry_valid = _terms(dictionary, key, path, np.empty(len(dictionary), dtype=np.uint64), depth + 1)
    return _take_terms(entries, entry_valid, array.indices, out)


def _null_terms(array: pa.Array, key: _Key, path: str, out: np.ndarray, depth: int) -> _Terms:
    return out, np.zeros(len(array), dtype=bool)


def _extension_terms(array: pa.Array, key: _Key, path: str, out: np.ndarray, depth: int) -> _Terms:
    return _terms(array.storage, key, path, out, depth)


def _run_end_terms(array: pa.Array, key: _Key, path: str, out: np.ndarray, depth: int) -> _Terms:
    return _terms(pc.run_end_decode(array), key, path, out, depth)


_SIGNED: dict[int, type[np.generic]] = {8: np.int8, 16: np.int16, 32: np.int32, 64: np.int64}
_UNSIGNED: dict[int, type[np.generic]] = {8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}
_FLOATS: dict[int, type[np.generic]] = {16: np.float16, 32: np.float32, 64: np.float64}


def _storage(type_: pa.DataType) -> type[np.generic] | None:
    """The numpy dtype of a fixed-width number's values buffer (None if it is not one)."""
    t = pa.types
    if t.is_signed_integer(type_):
        return _SIGNED[type_.bit_width]
    if t.is_unsigned_integer(type_):
        return _UNSIGNED[type_.bit_width]
    if t.is_floating(type_):
        return _FLOATS[type_.bit_width]
    if t.is_date32(type_) or t.is_time32(type_):
        return np.int32
    if t.is_date64(type_) or t.is_time64(type_) or t.is_timestamp(type_) or t.is_duration(type_):
        return np.int64
    return None


def _integer_storage(type_: pa.DataType) -> type[np.generic]:
    storage = _storage(type_)
    if storage is None or not np.issubdtype(storage, np.integer):
        raise TypeError(f"dictionary indices of type {type_}")
    return storage


@lru_cache(maxsize=1024)
def _handler(type_: pa.DataType) -> _Handler | None:
    """How values of a type are read; None: not supported (a cast to string is tried)."""
    t = pa.types
    if isinstance(type_, pa.ExtensionType):
        return _extension_terms
    if t.is_dictionary(type_):
        return _dictionary_terms
    if t.is_null(type_):
        return _null_terms
    if t.is_string(type_) or t.is_binary(type_):
        return _binary_terms(np.int32)
    if t.is_large_string(type_) or t.is_large_binary(type_):
        return _binary_terms(np.int64)
    if t.is_string_view(type_):
        return _cast_terms(pa.large_string())
    if t.is_binary_view(type_):
        return _cast_terms(pa.large_binary())
    if t.is_fixed_size_binary(type_) and not t.is_decimal(type_):
        return _fixed_width_bytes_terms(type_.byte_width)
    if type_ == pa.month_day_nano_interval():
        return _fixed_width_bytes_terms(16)
    if t.is_boolean(type_):
        return _boolean_terms
    storage = _storage(type_)
    if storage is not None:
        return _number_terms(storage)
    if t.is_list(type_) or t.is_map(type_):
        return _offset_list_terms(np.int32, t.is_map(type_))
    if t.is_large_list(type_):
        return _offset_list_terms(np.int64, False)
    if t.is_fixed_size_list(type_):
        return _fixed_size_list_terms
    if t.is_list_view(type_):
        return _list_view_terms(np.int32)
    if t.is_large_list_view(type_):
        return _list_view_terms(np.int64)
    if t.is_struct(type_):
        return _struct_terms
    if t.is_run_end_encoded(type_):
        return _run_end_terms
    return None


def _terms(array: pa.Array, key: _Key, path: str, out: np.ndarray, depth: int = 0) -> _Terms:
    """Each value's term under ``key``, written to ``out``, and the mask of non-null values.

    ``path`` names the column in errors. ``out`` must not be a scratch array that this depth or a
    deeper one uses (struct children write to the scratch of their parent's depth).
    """
    handler = _handler(array.type)
    if handler is not None:
        return handler(array, key, path, out, depth)
    try:
        as_string = array.cast(pa.large_string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid) as error:
        raise TypeError(f"cannot fingerprint column {path!r}: unsupported type {array.type}") from error
    return _terms(as_string, key, path, out, depth)


def row_fingerprints(batch: pa.RecordBatch | pa.Table) -> np.ndarray:
    """One uint64 fingerprint per row: the sum of its non-null values' terms, keyed by column name.

    Equal logical rows get equal fingerprints, in any process and whatever the Arrow layout; a
    column that is null in a row leaves it unchanged; column order does not matter.
    """
    if isinstance(batch, pa.Table):
        parts = [row_fingerprints(b) for b in batch.to_batches()]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)
    n = batch.num_rows
    result = np.zeros(n, dtype=np.uint64)
    names = batch.schema.names
    keys = [_name_key(name) for name in names]
    for start in range(0, n, _CHUNK_ROWS):
        stop = min(n, start + _CHUNK_ROWS)
        acc = result[start:stop]
        (terms_out,) = _scratch.rows("terms", 1, stop - start)
        for name, key, column in zip(names, keys, batch.columns, strict=True):
            part = column if stop - start == n else column.slice(start, stop - start)
            terms, valid = _terms(part, key, name, terms_out)
            _add_valid(acc, terms, valid)
    return result


def value_hashes(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A uint64 hash of each element (0 for null), e.g. of profile ids; layout independent like the fingerprints."""
    key = _role_key("value")
    chunks = array.chunks if isinstance(array, pa.ChunkedArray) else [array]
    parts = []
    for chunk in chunks:
        for start in range(0, len(chunk), _CHUNK_ROWS):
            part = chunk.slice(start, _CHUNK_ROWS)
            terms, valid = _terms(part, key, "value", np.empty(len(part), dtype=np.uint64))
            _fmix(terms)
            if valid is not None:
                terms *= valid
            parts.append(terms)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)
