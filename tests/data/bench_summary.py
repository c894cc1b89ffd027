"""Ratios of the data-path benchmarks, printed in pytest's terminal summary (conftest.py)."""
from __future__ import annotations

BATCH = 64
MEDIANS: dict[str, float] = {}  # benchmark key -> median seconds per call


def lines() -> list[str]:
    if not MEDIANS:
        return []
    step = MEDIANS.get("vae_step")
    out = [f"data path, batch {BATCH}: images/s and share of one β-VAE training step"
           + (f" ({1000 * step:.0f} ms on this CPU)" if step else "")]
    for key, t in sorted(MEDIANS.items()):
        if key.startswith("batch"):
            share = f"  {100 * t / step:6.2f}% of a VAE step" if step and key.startswith("batch:") else ""
            out.append(f"  {key:<34} {BATCH / t:>10,.0f} img/s{share}")
        elif key.startswith("render:") and key.count(":") == 2:
            n = int(key.rsplit(":", 1)[1])
            out.append(f"  {key:<34} {n / t:>10,.0f} img/s")
    first, ours = MEDIANS.get("render:dsprites_first_cut"), MEDIANS.get("render:dsprites_procedural")
    if first and ours:
        out.append(f"  dsprites_procedural renders a batch {first / ours:,.0f}x faster than the first-cut renderer")
    return out
