"""Summarizes an `nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu -lms ...` CSV log.

Why: the int8 peak (1,979 TOP/s) assumes the boost clock; under a long int8 GEMM the H100 may lower its SM clock
to stay in its power limit, and TOP/s must be read against the clock it actually ran at.
Usage: python -m benchmarks.clock_summary clocks.csv   (prints one line: SM clock, power and temperature)
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path


def summarize(text: str) -> dict[str, float]:
    """Median/min/max SM clock (MHz), median/max power (W) and max temperature (C) over samples drawing power."""
    samples = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 4:
            continue
        try:
            samples.append((float(parts[1]), float(parts[2]), float(parts[3])))
        except ValueError:  # "[N/A]" or a header line
            continue
    if not samples:
        raise ValueError("no clock samples in the log")
    busy = [s for s in samples if s[1] >= 200.0] or samples  # idle samples would pull the medians to the idle clock
    clocks, power, temp = zip(*busy)
    return {"samples": len(busy), "sm_mhz_median": statistics.median(clocks), "sm_mhz_min": min(clocks),
            "sm_mhz_max": max(clocks), "power_w_median": statistics.median(power), "power_w_max": max(power),
            "temp_c_max": max(temp)}


def main(argv: list[str]) -> int:
    s = summarize(Path(argv[0]).read_text())
    print(f"{s['samples']} busy samples: SM {s['sm_mhz_median']:.0f} MHz median ({s['sm_mhz_min']:.0f}-"
          f"{s['sm_mhz_max']:.0f}), power {s['power_w_median']:.0f} W median ({s['power_w_max']:.0f} max), "
          f"{s['temp_c_max']:.0f} C max")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
