"""Summarizes an `nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu[,clocks_event_reasons.active]
-lms ...` CSV log.

Why: the int8 peak (1,979 TOP/s) assumes the boost clock; under a long int8 GEMM the H100 may lower its SM clock
to stay in its power limit, and TOP/s must be read against the clock it actually ran at. With the fifth column,
also which limiter lowered it (serve run 18g: SM clock dips at 250-410 W in one engine, none at 480 W in another).
Usage: python -m benchmarks.clock_summary clocks.csv   (prints one line: SM clock, power and temperature)
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path


# nvidia-smi's clocks_event_reasons bits (nvml.h, nvmlClocksEventReason*)
REASONS = {0x1: "gpu_idle", 0x2: "applications_clocks_setting", 0x4: "sw_power_cap", 0x8: "hw_slowdown",
           0x10: "sync_boost", 0x20: "sw_thermal_slowdown", 0x40: "hw_thermal_slowdown", 0x80: "hw_power_brake",
           0x100: "display_clock_setting"}


def summarize(text: str) -> dict:
    """Median/min/max SM clock (MHz), median/max power (W) and max temperature (C) over samples drawing power; with a
    reasons column, in how many of those samples each clock event reason was active ("reasons")."""
    samples = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) not in (4, 5):
            continue
        try:
            reasons = int(parts[4], 16) if len(parts) == 5 else None
            samples.append((float(parts[1]), float(parts[2]), float(parts[3]), reasons))
        except ValueError:  # "[N/A]" or a header line
            continue
    if not samples:
        raise ValueError("no clock samples in the log")
    busy = [s for s in samples if s[1] >= 200.0] or samples  # idle samples would pull the medians to the idle clock
    clocks, power, temp, reasons = zip(*busy)
    out = {"samples": len(busy), "sm_mhz_median": statistics.median(clocks), "sm_mhz_min": min(clocks),
           "sm_mhz_max": max(clocks), "power_w_median": statistics.median(power), "power_w_max": max(power),
           "temp_c_max": max(temp)}
    if all(r is not None for r in reasons):
        out["reasons"] = {name: sum(1 for r in reasons if r & bit) for bit, name in REASONS.items()
                          if any(r & bit for r in reasons)}
    return out


def main(argv: list[str]) -> int:
    s = summarize(Path(argv[0]).read_text())
    print(f"{s['samples']} busy samples: SM {s['sm_mhz_median']:.0f} MHz median ({s['sm_mhz_min']:.0f}-"
          f"{s['sm_mhz_max']:.0f}), power {s['power_w_median']:.0f} W median ({s['power_w_max']:.0f} max), "
          f"{s['temp_c_max']:.0f} C max"
          + ("; clock event reasons (samples): " + (", ".join(f"{k} {v}" for k, v in s["reasons"].items()) or "none")
             if "reasons" in s else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
