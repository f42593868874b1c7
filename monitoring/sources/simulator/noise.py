"""Fetch (simulator): hashed lattice noise and per-pixel random numbers, functions of world position and seed.

Nothing here keeps state or draws from a global generator: a value depends only on a key and integer lattice
coordinates, so two AOIs that overlap, or one AOI cut into different chunks, see exactly the same numbers.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from scipy import special, stats

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
U32 = NDArray[np.uint32]

_MASK32 = 0xFFFFFFFF


def key(*parts: object) -> int:
    """A stable 32-bit key from ints, floats and strings.

    blake2b of the repr, not hash(): Python salts str hashes per process, which would break determinism.
    """
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little")


def rng(*parts: object) -> np.random.Generator:
    """A numpy generator for object-level randomness (an event's shape, a scene's offsets), seeded by key."""
    return np.random.default_rng(key(*parts))


def _fmix32(h: U32) -> U32:
    """MurmurHash3's finaliser: every input bit avalanches into every output bit (in place, fresh array)."""
    h ^= h >> np.uint32(16)
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)
    return h


def _axis_hash(k: int, idx: I64, salt: int) -> U32:
    h = (np.asarray(idx, dtype=np.int64) & _MASK32).astype(np.uint32)
    h *= np.uint32(salt)
    h += np.uint32(k & _MASK32)
    return _fmix32(h)


def hash_pairs(k: int, a: I64, b: I64) -> U32:
    """Random 32-bit integers for integer pairs (a, b), broadcast like numpy (a: columns, b: rows)."""
    ha = _axis_hash(k, a, 0x9E3779B1)
    ha *= np.uint32(0x27D4EB2F)
    hb = _axis_hash(k ^ 0x5BD1E995, b, 0x85EBCA77)
    return _fmix32(hb + ha)


def hash_grid(k: int, cols: I64, rows: I64) -> U32:
    """Random 32-bit integers for every (row, col) of a lattice, given its 1-D integer column and row indices.

    Hashing each axis once and mixing the sum costs one finaliser per pixel instead of a full 2-D hash.
    """
    return hash_pairs(k, np.asarray(cols)[None, :], np.asarray(rows)[:, None])


def rehash(h: U32, salt: int) -> U32:
    """A further independent 32-bit integer from a hash (e.g. a second property of the same field)."""
    return _fmix32(h ^ np.uint32(salt & _MASK32))


def to_unit(h: U32) -> F32:
    """Uniform floats in [0, 1) from 32-bit hashes (24 bits, exactly representable in float32)."""
    return (h >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / (1 << 24))


def uniform_grid(k: int, cols: I64, rows: I64) -> F32:
    """Uniform [0, 1) per lattice cell."""
    return to_unit(hash_grid(k, cols, rows))


@lru_cache(maxsize=1)
def _normal_table() -> F32:
    u = (np.arange(65536) + 0.5) / 65536
    q = special.ndtri(u)
    return ((q - q.mean()) / q.std()).astype(np.float32)


@lru_cache(maxsize=8)
def _gamma_table(enl: float) -> F32:
    u = (np.arange(65536) + 0.5) / 65536
    q = stats.gamma.ppf(u, a=enl, scale=1.0 / enl)
    # The midpoint quantiles clip the far tail a little; renormalise so speckle keeps the mean exactly 1.
    return (q / q.mean()).astype(np.float32)


def normal_grid(k: int, cols: I64, rows: I64) -> F32:
    """Standard normal per lattice cell, by table lookup of the inverse CDF (16-bit resolution)."""
    return _normal_table()[hash_grid(k, cols, rows) >> np.uint32(16)]


def gamma_grid(k: int, cols: I64, rows: I64, enl: float) -> F32:
    """Gamma(shape=enl, mean 1) per lattice cell: multiplicative speckle of an enl-look intensity image."""
    return _gamma_table(float(enl))[hash_grid(k, cols, rows) >> np.uint32(16)]


def _fade(f: F64) -> F64:
    # Quintic smoothstep: continuous first and second derivatives, so slopes taken from the field are smooth.
    return f * f * f * (f * (f * 6.0 - 15.0) + 10.0)


def _axis(coord: F64, scale: float, offset: float) -> tuple[I64, F32]:
    g = np.asarray(coord, dtype=np.float64) / scale + offset
    i = np.floor(g)
    return i.astype(np.int64), _fade(g - i).astype(np.float32)


def _octave(k: int, xs: F64, ys: F64, scale: float) -> F32:
    # A per-octave lattice offset so that octaves do not share lattice corners (visible grid artefacts).
    ox, oy = (k & 0xFFFF) / 65536.0 * 977.0, (k >> 16) / 65536.0 * 977.0
    ix, wx = _axis(xs, scale, ox)
    iy, wy = _axis(ys, scale, oy)
    cols = np.arange(ix.min(), ix.max() + 2, dtype=np.int64)
    rows = np.arange(iy.min(), iy.max() + 2, dtype=np.int64)
    lattice = uniform_grid(k, cols, rows) * np.float32(2.0) - np.float32(1.0)
    ci, ri = ix - cols[0], iy - rows[0]
    # Separable bilinear interpolation: along x on the few lattice rows first, then along y per pixel.
    along_x = lattice[:, ci] * (np.float32(1.0) - wx) + lattice[:, ci + 1] * wx
    wy2 = wy[:, None]
    return along_x[ri] * (np.float32(1.0) - wy2) + along_x[ri + 1] * wy2


def value_noise(k: int, xs: F64, ys: F64, scale: float, *, octaves: int = 1, gain: float = 0.5) -> F32:
    """Fractal value noise in [-1, 1] on the grid xs (columns) x ys (rows), coordinates in metres.

    scale is the lattice spacing of the first octave; each further octave halves it and weighs gain times
    less. The value at a pixel depends only on its coordinates and k, never on the grid it was computed on.
    """
    out = np.zeros((len(ys), len(xs)), np.float32)
    amp, norm = 1.0, 0.0
    for o in range(octaves):
        out += np.float32(amp) * _octave(key(k, o), xs, ys, scale / 2.0**o)
        norm += amp
        amp *= gain
    out *= np.float32(1.0 / norm)
    return out


@lru_cache(maxsize=16)
def noise_quantiles(scale: float, octaves: int, gain: float) -> F32:
    """Sorted sample of value_noise over a large area: its empirical distribution, to turn a wanted area
    fraction into a threshold (e.g. a day's cloud fraction)."""
    n = 600
    xs = (np.arange(n) * (scale / 12.0)).astype(np.float64)
    sample = value_noise(key("calibration", scale, octaves, gain), xs, xs, scale, octaves=octaves, gain=gain)
    return np.sort(sample.ravel())


def threshold_for_fraction(fraction: float, scale: float, octaves: int, gain: float) -> float:
    """The level above which value_noise(scale, octaves, gain) covers `fraction` of the area on average."""
    q = noise_quantiles(scale, octaves, gain)
    return (
        float(np.quantile(q, 1.0 - fraction)) if 0.0 < fraction < 1.0 else (-2.0 if fraction >= 1.0 else 2.0)
    )
