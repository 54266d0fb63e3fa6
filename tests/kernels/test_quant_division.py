"""The quantization kernels' reciprocal division (csrc/quant/quant_kernels.cu, Divisor::quotient), replayed in
exact rational arithmetic: it must give the IEEE float32 quotient bit for bit wherever the kernels use it
(scales in [2^-90, 2^90]). Runs on the CPU; the GPU tests check the kernels themselves against the division."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

F32 = np.float32


def _round_f32(x: Fraction) -> F32:
    """x rounded to the nearest float32, ties to even (float(x) alone would round twice)."""
    c = F32(float(x))
    best = None
    for cand in (np.nextafter(c, F32(-np.inf)), c, np.nextafter(c, F32(np.inf))):
        key = (abs(Fraction(float(cand)) - x), int(cand.view(np.uint32)) & 1)
        if best is None or key < best[0]:
            best = (key, cand)
    return best[1]


def _fma(a: F32, b: F32, c: F32) -> F32:
    return _round_f32(Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c)))


def _quotient(x: F32, s: F32, inv: F32) -> F32:
    """Divisor::quotient: q0 = x * inv, then two remainder corrections."""
    q0 = F32(x * inv)
    q1 = _fma(_fma(-q0, s, x), inv, q0)
    return _fma(_fma(-q1, s, x), inv, q1)


def _bf16(a: np.ndarray) -> np.ndarray:
    u = np.asarray(a, F32).view(np.uint32).astype(np.uint64)
    u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    return u.astype(np.uint32).view(F32)


def test_reciprocal_division_equals_ieee_division():
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(60):
        hi = _bf16(F32(2.0 ** rng.uniform(-82, 90)))[()]
        s = F32(hi / F32(127))  # a dynamic scale, as the kernels compute it
        assert 2.0**-90 <= s <= 2.0**90
        inv = F32(F32(1) / s)
        codes = rng.integers(-127, 127, 48).astype(np.float64)
        near = _bf16((codes + 0.5) * float(s))  # quotients next to half steps, where one ulp changes the code
        spread = _bf16(rng.standard_normal(16) * float(hi) / 3)
        for x in np.concatenate([near, spread]):
            got, want = _quotient(x, s, inv), F32(x / s)
            assert got == want, f"{x!r} / {s!r}: {got!r}, IEEE {want!r}"
            checked += 1
    assert checked == 60 * 64
