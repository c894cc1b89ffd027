"""HFS (Hausdorff factorised support): its defining properties and an independent loop."""
from __future__ import annotations

import itertools

import pytest
import torch

from gmgbench.methods import registry
from gmgbench.methods.base import ForwardPass, call_checked
from gmgbench.methods.regularisers.hfs import HFS, hausdorff_factorized_support, latent_pairs


def _reference(z: torch.Tensor, pairs) -> float:
    """The definition, written as loops: Σ_pairs max_{i,j} min_k squared distance."""
    total = 0.0
    zz = z.tolist()
    for a, b in pairs:
        worst = 0.0
        for i, j in itertools.product(range(len(zz)), repeat=2):
            point = (zz[i][a], zz[j][b])
            nearest = min((point[0] - zk[a]) ** 2 + (point[1] - zk[b]) ** 2 for zk in zz)
            worst = max(worst, nearest)
        total += worst
    return total


def _all_pairs(d: int) -> torch.Tensor:
    return latent_pairs(d, 0)


def test_zero_for_a_factorised_support():
    # codes on a full product grid: every combination of per-latent values occurs jointly
    grid = torch.tensor(list(itertools.product((0.0, 1.0), (-1.0, 2.0, 2.5), (0.5, 3.0))))
    perm = torch.randperm(len(grid), generator=torch.Generator().manual_seed(0))
    assert hausdorff_factorized_support(grid[perm], _all_pairs(3)).item() == 0.0


def test_positive_for_a_correlated_support_with_the_analytic_value():
    # z2 = z1 on {0, .25, .5, .75, 1}: the worst product point is a corner, (0, 1), whose
    # nearest code on the diagonal is (.5, .5): squared distance .25 + .25.
    t = torch.linspace(0, 1, 5)
    assert hausdorff_factorized_support(torch.stack([t, t], 1), _all_pairs(2)).item() == pytest.approx(0.5)


def test_matches_the_loop_definition_on_random_codes():
    z = torch.randn(9, 4, generator=torch.Generator().manual_seed(1))
    pairs = _all_pairs(4)
    assert hausdorff_factorized_support(z, pairs).item() == pytest.approx(_reference(z, pairs.tolist()), rel=1e-5)


def test_correlated_codes_score_higher_than_independent_ones():
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(64, generator=g), torch.randn(64, generator=g)
    independent = hausdorff_factorized_support(torch.stack([a, b], 1), _all_pairs(2))
    correlated = hausdorff_factorized_support(torch.stack([a, 0.9 * a + 0.1 * b], 1), _all_pairs(2))
    assert correlated > 5 * independent > 0


def test_invariances_and_scaling():
    z = torch.randn(12, 3, generator=torch.Generator().manual_seed(3))
    pairs = _all_pairs(3)
    base = hausdorff_factorized_support(z, pairs)
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(4))
    assert hausdorff_factorized_support(z[perm], pairs).item() == pytest.approx(base.item(), rel=1e-6)
    assert hausdorff_factorized_support(z + torch.tensor([5.0, -2.0, 1.0]), pairs).item() == pytest.approx(base.item(), rel=1e-4)
    assert hausdorff_factorized_support(3 * z, pairs).item() == pytest.approx(9 * base.item(), rel=1e-5)


def test_pairs_are_subsampled_from_the_run_generator():
    assert len(latent_pairs(10, 0)) == 45 and len(latent_pairs(10, 100)) == 45
    a = latent_pairs(10, 25, torch.Generator().manual_seed(7))
    b = latent_pairs(10, 25, torch.Generator().manual_seed(7))
    c = latent_pairs(10, 25, torch.Generator().manual_seed(8))
    assert a.shape == (25, 2) and torch.equal(a, b) and not torch.equal(a, c)
    assert len({tuple(p) for p in a.tolist()}) == 25 and all(i < j for i, j in a.tolist())
    assert latent_pairs(1, 0).shape == (0, 2)


def _out(mu: torch.Tensor, z: torch.Tensor | None = None) -> ForwardPass:
    b = mu.shape[0]
    return ForwardPass(x=torch.zeros(b, 1, 2, 2), mu=mu, logvar=torch.zeros_like(mu), z=mu if z is None else z,
                       logits=torch.zeros(b, 1, 2, 2), model=torch.nn.Identity(), dataset_size=100,
                       generator=torch.Generator().manual_seed(0))


def test_regulariser_uses_the_posterior_mean_and_differentiates_it():
    mu = torch.randn(16, 5, generator=torch.Generator().manual_seed(5), requires_grad=True)
    sample = torch.randn(16, 5, generator=torch.Generator().manual_seed(6), requires_grad=True)
    reg = registry.build("hfs", "regulariser", {"num_pairs": 0})
    value, logs = call_checked(reg, _out(mu, sample))
    assert logs == {"pairs": 10.0}
    assert value.item() == pytest.approx(hausdorff_factorized_support(mu.detach(), _all_pairs(5)).item())
    value.backward()
    assert mu.grad is not None and mu.grad.abs().sum() > 0 and sample.grad is None
    on_sample, _ = call_checked(registry.build("hfs", "regulariser", {"use_mean": False, "num_pairs": 0}), _out(mu, sample))
    assert on_sample.item() == pytest.approx(hausdorff_factorized_support(sample.detach(), _all_pairs(5)).item())


def test_config_defaults_and_checks():
    assert HFS.parameters() == {"weight": 1.0, "num_pairs": 25, "use_mean": True}
    for bad, match in [({"num_pairs": -1}, "num_pairs"), ({"num_pairs": 2.5}, "num_pairs must be an int"), ({"use_mean": "yes"}, "use_mean"), ({"weight": -1.0}, "weight")]:
        with pytest.raises(ValueError, match=match):
            registry.build("hfs", "regulariser", bad)


def test_gradient_equals_autograd_through_the_full_max_min():
    # The implementation differentiates only the attained (i, j, k); autograd through the
    # whole [B, B, B, P] max-min must give the same gradient (no ties on random codes).
    z = torch.randn(10, 4, generator=torch.Generator().manual_seed(9), dtype=torch.float64, requires_grad=True)
    pairs = _all_pairs(4)
    hausdorff_factorized_support(z, pairs).backward()
    ours = z.grad.clone()
    z.grad = None
    za, zb = z[:, pairs[:, 0]], z[:, pairs[:, 1]]
    d = (za.unsqueeze(1) - za.unsqueeze(0)).pow(2).unsqueeze(1) + (zb.unsqueeze(1) - zb.unsqueeze(0)).pow(2).unsqueeze(0)
    d.min(dim=2).values.flatten(0, 1).max(dim=0).values.sum().backward()
    assert torch.allclose(ours, z.grad) and ours.abs().sum() > 0
