"""Compiled fingerprint kernels (numba), used when the ``[fast]`` extra is installed.

Byte strings are most of an export's columns and most of a fingerprint's cost. numpy takes a dozen
passes over every word position (gather, shifts, masks, the mix); one compiled loop does the same
arithmetic in registers, several times faster, and releases the GIL, so the thread that
fingerprints does not hold up the one that reads and projects.

The kernel computes exactly the byte term of :mod:`profile_exports.fingerprints` (version 1): the
tests compare it with the numpy code on random and edge-case strings. Importing this module
imports numba; :mod:`profile_exports.fingerprints` does so only when it first needs the kernel, and
uses numpy when numba is missing or ``PROFILE_EXPORTS_JIT=0``. Compiled code is cached on disk
(numba's ``cache=True``), so only the first process compiles it (about a second).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["byte_terms"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_M = np.uint64(0xBF58476D1CE4E5B9)
_SPLIT_1 = np.uint64(0xBF58476D1CE4E5B9)
_SPLIT_2 = np.uint64(0x94D049BB133111EB)
_ONE = np.uint64(1)
_ZERO = np.uint64(0)
_U64_63 = np.uint64(63)


@numba.njit(nogil=True, cache=True)
def byte_terms(
    offsets: np.ndarray,
    data: np.ndarray,
    words: np.ndarray,
    key: np.uint64,
    positions: np.ndarray,
    length_multiplier: np.uint64,
    tag: np.uint64,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled; covered through the fingerprints
    """Write the byte term of each value ``data[offsets[i]:offsets[i + 1]]`` to ``out[i]``.

    ``words`` is ``data`` read as whole little-endian uint64 (a trailing partial word left out): a
    word that starts off an 8-byte boundary is made of the two it straddles.
    """
    n_words = len(words)
    n_positions = len(positions)
    for i in range(len(offsets) - 1):
        start = offsets[i]
        end = offsets[i + 1]
        acc = np.uint64(end - start) * length_multiplier + tag
        # Whether every word of the value can be read as two whole words of the buffer.
        whole = (end >> 3) + 1 < n_words
        m = 0
        p = start
        while p < end:
            remaining = end - p
            if whole:
                base = p >> 3
                shift = np.uint64((p & 7) << 3)
                # Two shifts, since a shift by 64 is undefined: an aligned word takes nothing from the next.
                word = (words[base] >> shift) | ((words[base + 1] << _ONE) << (_U64_63 - shift))
            else:  # the buffer's last bytes: one at a time, never reading past its end
                word = _ZERO
                for b in range(min(8, remaining)):
                    word |= np.uint64(data[p + b]) << np.uint64(8 * b)
            if remaining < 8:
                word &= (_ONE << np.uint64(remaining << 3)) - _ONE
            if m < n_positions:
                c = positions[m]
            else:  # c_m = splitmix(k + (m + 1) * G) | 1
                z = key + np.uint64(m + 1) * _GOLDEN
                z = (z ^ (z >> np.uint64(30))) * _SPLIT_1
                z = (z ^ (z >> np.uint64(27))) * _SPLIT_2
                c = (z ^ (z >> np.uint64(31))) | _ONE
            word ^= word >> np.uint64(32)
            word *= c
            word ^= word >> np.uint64(29)
            word *= _MIX_M
            acc += word
            m += 1
            p += 8
        out[i] = acc
