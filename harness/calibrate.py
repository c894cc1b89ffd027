"""λ calibration: which weight gives a geometric regulariser a gradient share of ~1 %, 10 %, 50 %?

The reconstruction term is a per-image sum (hundreds to thousands of nats), DST/GMG are
O(0.01–1), so a guessed λ is either inert or dominant. This trains the study's base objective
(no regulariser) with the study's train settings and, every ``--every`` steps, takes on the
same forward pass the gradient of each candidate term R (GMG and DST, each cost, each side),
unweighted and never added to the loss, on the parameters it shares with the objective. With
``r = ‖∇R‖ / ‖∇L_base‖`` the share at weight λ is ``λr / (λr + 1)`` (the definition of
:mod:`gmgbench.harness.health`), so the λ for a share s is ``s / (1 − s) / r``. Reported: the median
of r over the measured steps (and its quartiles), and λ for 1 %, 10 %, 50 %.

It is a calibration along the unregularised trajectory: with the term switched on the
trajectory moves and so does r; every run's own health record says what share it really had.

    python -m gmgbench.harness.calibrate studies/cpu-repro.yaml --steps 600 --out calibration.json
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gmgbench.harness import data as datasets
from gmgbench.harness.results import atomic_write_text
from gmgbench.harness.spec import load_spec
from gmgbench.methods import registry
from gmgbench.methods.base import call_checked

__all__ = ["CANDIDATES", "SHARES", "calibrate", "main"]

SHARES = (0.01, 0.10, 0.50)
#: (label, regulariser, params). Decoder side on the posterior sample (what the decoder is
#: applied to in the loss), encoder side on the mean; GMG with the plain estimator, whose
#: gradient ∇DST − ∇GW_ε is the method (a clipped one has the same gradient where it fires).
CANDIDATES = [
    (f"{reg}_{cost}_{side[:3]}", reg, {"cost": cost, "side": side, "use_mean": side == "encoder",
                                       **({"estimator": "plain"} if reg == "gmg" else {})})
    for reg in ("gmg", "dst") for cost in ("cos", "l2sq", "scl2sq") for side in ("decoder", "encoder")
]


def _grad_norms(loss_terms: list[torch.Tensor], params: list[torch.nn.Parameter]) -> list[list[torch.Tensor | None]]:
    return [list(torch.autograd.grad(t, params, retain_graph=True, allow_unused=True)) if t.requires_grad
            else [None] * len(params) for t in loss_terms]


def calibrate(run, *, steps: int, every: int, candidates=CANDIDATES, progress: bool = True) -> dict[str, Any]:
    """Train ``run``'s objective alone for ``steps`` steps, measuring each candidate's ratio r."""
    from gmgbench.harness.train import build_model

    cfg = run.train
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    dataset = datasets.load(run.dataset, run.dataset_root)
    torch.manual_seed(run.seed)
    model = build_model(run, dataset)
    objective = registry.build(run.objective, "objective", run.objective_params)
    terms = [(label, registry.build(name, "regulariser", {**params, "weight": 1.0})) for label, name, params in candidates]
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    noise = torch.Generator().manual_seed(run.seed)
    sampler = np.random.RandomState(run.seed)
    params = list(model.parameters())
    ratios: dict[str, list[float]] = {label: [] for label, _ in terms}
    values: dict[str, list[float]] = {label: [] for label, _ in terms}
    t0 = time.perf_counter()
    model.train()
    for step in range(steps + 1):
        x = dataset.training_batch(dataset.sample_factors(cfg.batch_size, sampler), sampler, "cpu")
        out = model(x, generator=noise, dataset_size=dataset.dataset_size)
        loss, _ = call_checked(objective, out)
        if step % every == 0 or step == steps:
            base = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
            for label, term in terms:
                value, _ = call_checked(term, out)
                values[label].append(float(value.detach()))
                (g,) = _grad_norms([value], params)
                shared = [i for i, gi in enumerate(g) if gi is not None and base[i] is not None]
                nr = float(torch.cat([g[i].flatten() for i in shared]).norm()) if shared else 0.0
                nb = float(torch.cat([base[i].flatten() for i in shared]).norm()) if shared else 0.0
                ratios[label].append(nr / nb if nb > 0 else float("nan"))
            if progress:
                print(f"  {run.dataset}: step {step}/{steps} ({time.perf_counter() - t0:.0f} s)", flush=True)
        if step == steps:
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    rows = {}
    for label, rs in ratios.items():
        r = np.asarray(rs, dtype=float)
        r = r[np.isfinite(r)]
        med = float(np.median(r)) if len(r) else float("nan")
        rows[label] = {
            "ratio_median": med,
            "ratio_q25": float(np.quantile(r, 0.25)) if len(r) else float("nan"),
            "ratio_q75": float(np.quantile(r, 0.75)) if len(r) else float("nan"),
            "value_median": float(np.median(values[label])),
            "lambda": {f"{int(round(100 * s))}%": (s / (1 - s) / med if med > 0 else float("inf")) for s in SHARES},
        }
    return {"dataset": run.dataset, "objective": run.objective, "objective_params": run.objective_params,
            "seed": run.seed, "steps": steps, "every": every, "batch_size": cfg.batch_size, "lr": cfg.lr,
            "seconds": time.perf_counter() - t0, "terms": rows}


def to_markdown(reports: list[dict[str, Any]]) -> str:
    lines = ["| dataset | term | median ‖∇R‖/‖∇L‖ (q25–q75) | median R | λ for 1 % | 10 % | 50 % |",
             "|---|---|---|---|---|---|---|"]
    for rep in reports:
        for label, row in rep["terms"].items():
            lam = row["lambda"]
            lines.append(f"| {rep['dataset']} | {label} | {row['ratio_median']:.3g} ({row['ratio_q25']:.3g}–{row['ratio_q75']:.3g})"
                         f" | {row['value_median']:.3g} | {lam['1%']:.3g} | {lam['10%']:.3g} | {lam['50%']:.3g} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gmgbench.harness.calibrate", description=__doc__.split("\n\n")[0])
    p.add_argument("study", type=Path, help="study spec whose datasets, base objective and train settings to use")
    p.add_argument("--steps", type=int, default=600, help="steps of the unregularised run (default 600)")
    p.add_argument("--every", type=int, default=50, help="measure every this many steps (default 50)")
    p.add_argument("--method", default=None, help="method label whose objective to train (default: the first)")
    p.add_argument("--dataset", action="append", default=None, help="only this dataset (repeatable)")
    p.add_argument("--terms", default=None,
                   help="comma-separated candidate labels (default: all: " + ", ".join(c[0] for c in CANDIDATES) + ")")
    p.add_argument("--out", type=Path, default=None, help="write the JSON here (and the table beside it as .md)")
    args = p.parse_args(argv)
    spec = load_spec(args.study)
    runs = [r for r in spec.runs() if r.seed == min(spec.seeds) and (args.method is None or r.method == args.method)]
    runs = [r for r in runs if not r.regularisers or args.method]
    seen, chosen = set(), []
    for r in runs:
        if r.dataset not in seen and (not args.dataset or r.dataset in args.dataset):
            seen.add(r.dataset)
            chosen.append(r)
    candidates = CANDIDATES
    if args.terms:
        wanted = [t.strip() for t in args.terms.split(",") if t.strip()]
        unknown = [t for t in wanted if t not in {c[0] for c in CANDIDATES}]
        if unknown:
            p.error(f"--terms: unknown label {unknown[0]!r}; valid: {', '.join(c[0] for c in CANDIDATES)}")
        candidates = [c for c in CANDIDATES if c[0] in wanted]
    reports = [calibrate(r, steps=args.steps, every=args.every, candidates=candidates) for r in chosen]
    table = to_markdown(reports)
    print(table)
    if args.out:
        atomic_write_text(args.out, json.dumps({"study": spec.name, "reports": reports}, indent=1) + "\n")
        atomic_write_text(args.out.with_suffix(".md"), table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
