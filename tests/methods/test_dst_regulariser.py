"""DST: the formula, its invariances, and which map each side judges."""
from __future__ import annotations

import pytest
import torch

from gmgbench.methods import ot, registry
from gmgbench.methods.architectures import VAE
from gmgbench.methods.regularisers.geometric import map_pairs

torch.set_num_threads(1)


def test_dst_is_half_the_mean_squared_cost_difference_by_brute_force():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(10, 5, generator=g), torch.randn(10, 3, generator=g)
    want = 0.0
    for i in range(10):
        for j in range(10):
            want += 0.5 * (float((x[i] - x[j]).pow(2).sum()) - float((y[i] - y[j]).pow(2).sum())) ** 2
    got = float(ot.distortion(ot.pairwise_cost(x, "l2sq"), ot.pairwise_cost(y, "l2sq")))
    assert got == pytest.approx(want / 100, rel=1e-4)


def test_dst_invariances():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(16, 4, generator=g)
    q, _ = torch.linalg.qr(torch.randn(4, 4, generator=g))
    cx = {c: ot.pairwise_cost(x, c) for c in ot.COSTS}
    assert float(ot.distortion(cx["l2sq"], ot.pairwise_cost(x @ q + 3.0, "l2sq"))) < 1e-8
    assert float(ot.distortion(cx["scl2sq"], ot.pairwise_cost(2.5 * x @ q, "scl2sq"))) < 1e-10
    assert float(ot.distortion(cx["cos"], ot.pairwise_cost(0.3 * x @ q, "cos"))) < 1e-10
    assert float(ot.distortion(cx["l2sq"], ot.pairwise_cost(2.5 * x, "l2sq"))) > 1


class CountingVAE(VAE):
    decodes = 0

    def decode(self, z):
        self.decodes += 1
        return super().decode(z)


@pytest.mark.parametrize("use_mean", [True, False])
def test_sides_judge_the_right_map(use_mean):
    torch.manual_seed(0)
    model = CountingVAE(latent_dim=3)
    x = torch.rand(6, 1, 64, 64)
    out = model(x, generator=torch.Generator().manual_seed(0))
    code = out.mu if use_mean else out.z
    src, img = map_pairs(out, "encoder", use_mean)
    assert torch.equal(src, x.flatten(1)) and torch.equal(img, code)
    before = model.decodes
    src, img = map_pairs(out, "decoder", use_mean)
    assert torch.equal(src, code)
    assert torch.allclose(img, torch.sigmoid(model.decode(code)).flatten(1), atol=1e-6)
    # The sample's decoding is reused; only the posterior mean costs another decoder pass.
    assert model.decodes - before == (2 if use_mean else 1)


def test_regulariser_value_and_gradient():
    torch.manual_seed(0)
    model = VAE(latent_dim=3)
    x = torch.rand(8, 1, 64, 64)
    out = model(x, generator=torch.Generator().manual_seed(0))
    reg = registry.build("dst", "regulariser", {"cost": "l2sq", "side": "encoder"})
    loss, logs = reg(out)
    want = ot.distortion(ot.pairwise_cost(x.flatten(1), "l2sq"), ot.pairwise_cost(out.mu, "l2sq"))
    assert float(loss.detach()) == pytest.approx(float(want), rel=1e-5) and logs["dst"] == pytest.approx(float(want), rel=1e-5)
    loss.backward()
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in model.encoder.parameters())
    assert registry.get("dst", "regulariser").parameters() == {"weight": 1.0, "cost": "cos", "side": "decoder", "use_mean": None}
