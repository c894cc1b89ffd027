"""disentanglement_lib's method zoo: FactorVAE, DIP-VAE-I/II, AnnealedVAE, β-TCVAE's HFS matrix.

Each loss is checked on a fixed batch against dlib's formulas re-derived in NumPy (float64,
nothing shared with the torch code), its gradients are finite, and a short training run
lowers it. FactorVAE, the one method with a module and optimiser of its own, is also killed
mid-training in a child process and resumed in another: the result must be bit for bit an
uninterrupted run's.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from gmgbench.harness.spec import load_spec
from gmgbench.harness.train import Interrupted, train_run
from gmgbench.methods import registry
from gmgbench.methods.architectures import VAE
from gmgbench.methods.base import ForwardPass, call_checked, update_checked
from gmgbench.methods.beta_tcvae import kl_decomposition
from gmgbench.methods.factor_vae import FactorVAE

ROOT = Path(__file__).resolve().parents[2]
ZOO = ["factor_vae", "dip_vae_i", "dip_vae_ii", "annealed_vae"]


# -- a fixed batch, and dlib's formulas in NumPy ---------------------------------------------
def _batch(b=16, d=5, seed=0, step=0, dtype=torch.float64) -> ForwardPass:
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(b, 1, 64, 64, generator=g, dtype=dtype) < 0.3).to(dtype)
    mu = torch.randn(b, d, generator=g, dtype=dtype)
    logvar = 0.5 * torch.randn(b, d, generator=g, dtype=dtype) - 1.0
    z = mu + torch.randn(b, d, generator=g, dtype=dtype) * torch.exp(0.5 * logvar)
    logits = 2.0 * torch.randn(b, 1, 64, 64, generator=g, dtype=dtype)
    return ForwardPass(x=x, mu=mu, logvar=logvar, z=z, logits=logits, model=None, dataset_size=1000,  # type: ignore[arg-type]
                       generator=torch.Generator().manual_seed(seed + 1), step=step)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float64)


def np_recon(out) -> float:
    """dlib's bernoulli_loss: sigmoid cross-entropy with logits, summed per image, batch mean."""
    lg, x = _np(out.logits).reshape(out.batch_size, -1), _np(out.x).reshape(out.batch_size, -1)
    return float(np.mean(np.sum(np.maximum(lg, 0) - lg * x + np.log1p(np.exp(-np.abs(lg))), axis=1)))


def np_kl(out) -> float:
    mu, lv = _np(out.mu), _np(out.logvar)
    return float(np.mean(0.5 * np.sum(mu**2 + np.exp(lv) - lv - 1, axis=1)))


def np_dip(cov: np.ndarray, lambda_od: float, lambda_d: float) -> float:
    diag = np.diag(cov)
    return float(lambda_od * np.sum((cov - np.diag(diag)) ** 2) + lambda_d * np.sum((diag - 1) ** 2))


def np_mlp(weights: list[tuple[np.ndarray, np.ndarray]], z: np.ndarray) -> np.ndarray:
    h = z
    for i, (w, b) in enumerate(weights):
        h = h @ w.T + b
        if i < len(weights) - 1:
            h = np.where(h > 0, h, 0.2 * h)  # tf.nn.leaky_relu's default alpha
    return h


def np_softmax_clipped(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(1, keepdims=True))
    return np.clip(e / e.sum(1, keepdims=True), 1e-6, 1 - 1e-6)


def _disc_weights(method: FactorVAE) -> list[tuple[np.ndarray, np.ndarray]]:
    layers = [m for m in method.discriminator.net if isinstance(m, torch.nn.Linear)]
    return [(_np(m.weight), _np(m.bias)) for m in layers]


# -- loss values on a fixed batch ---------------------------------------------------------------
@pytest.mark.parametrize("gamma", [0.0, 10.0, 40.0])
def test_factor_vae_loss_matches_numpy(gamma):
    out = _batch()
    method = registry.build("factor_vae", "objective", {"gamma": gamma, "discriminator_hidden": 32})
    torch.manual_seed(0)
    method.setup(5, torch.device("cpu"))
    method.discriminator.double()
    loss, logs = call_checked(method, out)
    logits = np_mlp(_disc_weights(method), _np(out.z))
    tc = float(np.mean(logits[:, 0] - logits[:, 1]))
    assert abs(tc) > 1e-3  # a random discriminator already says something: the test can fail
    expected = np_recon(out) + np_kl(out) + gamma * tc
    assert loss.item() == pytest.approx(expected, rel=1e-10, abs=1e-8)
    assert logs["tc"] == pytest.approx(tc, rel=1e-10)


def test_factor_vae_discriminator_step_matches_numpy_and_keeps_vae_out_of_it():
    out = _batch()
    method = registry.build("factor_vae", "objective", {"discriminator_hidden": 32})
    torch.manual_seed(1)
    method.setup(5, torch.device("cpu"))
    method.discriminator.double()
    weights = _disc_weights(method)
    # The permutation update() will draw: each column ordered by one uniform draw per entry.
    twin = torch.Generator().manual_seed(0 + 1)  # _batch(seed=0) draws from seed + 1
    order = _np(torch.rand(out.z.shape, generator=twin, dtype=torch.float32).argsort(dim=0)).astype(int)
    z = _np(out.z)
    z_perm = np.take_along_axis(z, order, axis=0)
    assert not np.allclose(z_perm, z) and np.allclose(np.sort(z_perm, 0), np.sort(z, 0))
    p_z = np_softmax_clipped(np_mlp(weights, z))
    p_perm = np_softmax_clipped(np_mlp(weights, z_perm))
    expected = -(0.5 * np.mean(np.log(p_z[:, 0])) + 0.5 * np.mean(np.log(p_perm[:, 1])))

    loss, _ = call_checked(method, out)
    assert all(p.grad is None for p in method.discriminator.parameters())  # the VAE's loss leaves D alone
    logs = update_checked(method, out)
    assert logs["discriminator_loss"] == pytest.approx(expected, rel=1e-10)
    assert 0.0 <= logs["discriminator_accuracy"] <= 1.0
    moved = [not np.array_equal(w, _np(m.weight)) for (w, _), m in
             zip(weights, [m for m in method.discriminator.net if isinstance(m, torch.nn.Linear)])]
    assert all(moved)  # D's own Adam stepped every layer


@pytest.mark.parametrize("name, lambda_od, factor", [("dip_vae_i", 10.0, 10.0), ("dip_vae_i", 2.0, None),
                                                     ("dip_vae_ii", 5.0, 1.0), ("dip_vae_ii", 20.0, None)])
def test_dip_vae_loss_matches_numpy(name, lambda_od, factor):
    out = _batch(seed=3)
    params = {"lambda_od": lambda_od} | ({} if factor is None else {"lambda_d_factor": factor})
    method = registry.build(name, "objective", params)
    loss, logs = call_checked(method, out)
    mu, lv = _np(out.mu), _np(out.logvar)
    cov = np.cov(mu, rowvar=False, bias=True)  # numpy's own covariance, 1/B as dlib's
    if name == "dip_vae_ii":
        cov = cov + np.diag(np.exp(lv).mean(0))
    lambda_d = method.cfg.lambda_d_factor * lambda_od
    assert method.cfg.lambda_d_factor == (10.0 if name == "dip_vae_i" else 1.0)  # dlib's study values
    expected = np_recon(out) + np_kl(out) + np_dip(cov, lambda_od, lambda_d)
    assert loss.item() == pytest.approx(expected, rel=1e-10)
    assert logs["dip"] == pytest.approx(np_dip(cov, lambda_od, lambda_d), rel=1e-10)


def test_dip_vae_ii_differs_from_i_by_the_encoder_variance():
    out = _batch(seed=4)
    one = registry.build("dip_vae_i", "objective", {"lambda_d_factor": 1.0})
    two = registry.build("dip_vae_ii", "objective", {})
    assert call_checked(one, out)[0].item() != pytest.approx(call_checked(two, out)[0].item(), rel=1e-3)


@pytest.mark.parametrize("step, expected_c", [(0, 0.0), (1, 0.00025), (50_000, 12.5), (100_000, 25.0), (250_000, 25.0)])
def test_annealed_vae_loss_matches_numpy(step, expected_c):
    out = _batch(seed=5, step=step)
    method = registry.build("annealed_vae", "objective", {})  # γ 1000, C_max 25, threshold 100000
    loss, logs = call_checked(method, out)
    c = min(25.0, 25.0 * step / 100_000)
    assert c == pytest.approx(expected_c) and logs["capacity"] == pytest.approx(c)
    expected = np_recon(out) + 1000.0 * abs(np_kl(out) - c)
    assert loss.item() == pytest.approx(expected, rel=1e-10)


def np_hfs_log_weights(b: int, n: int) -> np.ndarray:
    """The HFS code's matrix as described in docs/methods.md, built entry by entry."""
    k = b - 1
    s = (n - k) / (n * k)
    w = np.empty((b, b))
    for i in range(b):
        for j in range(b):
            w[i, j] = 1 / n if j == 0 else s if j == 1 else 1 / k
    w[k - 1, 0] = s
    return np.log(w.astype(np.float32)).astype(np.float64)


def np_tc_parts(z, mu, lv, logw) -> dict[str, float]:
    cross = -0.5 * (np.log(2 * np.pi) + lv[None] + (z[:, None] - mu[None]) ** 2 * np.exp(-lv[None]))
    def lse(a, axis):
        m = a.max(axis, keepdims=True)
        return np.squeeze(m, axis) + np.log(np.exp(a - m).sum(axis))
    log_qz = lse(logw + cross.sum(2), 1)
    log_prod = lse(logw[:, :, None] + cross, 1).sum(1)
    log_qzx = np.einsum("iid->i", cross)
    log_pz = (-0.5 * (np.log(2 * np.pi) + z**2)).sum(1)
    return {"mi": np.mean(log_qzx - log_qz), "tc": np.mean(log_qz - log_prod), "dim_kl": np.mean(log_prod - log_pz)}


@pytest.mark.parametrize("b", [2, 3, 16])
def test_hfs_estimator_matches_the_described_matrix(b):
    out = _batch(b=b, seed=6)
    ours = kl_decomposition(out.z, out.mu, out.logvar, 1000, "hfs")
    ref = np_tc_parts(_np(out.z), _np(out.mu), _np(out.logvar), np_hfs_log_weights(b, 1000))
    for key in ref:
        assert ours[key].item() == pytest.approx(ref[key], rel=1e-9, abs=1e-9), key
    with pytest.raises(ValueError, match="at least 2"):
        kl_decomposition(out.z[:1], out.mu[:1], out.logvar[:1], 1000, "hfs")


def _docs_batch():
    """The fixed batch of docs/methods.md's measured offset (M = 64, D = 10, seed 0)."""
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(64, 10, generator=g)
    logvar = torch.randn(64, 10, generator=g) * 0.5 - 1
    z = mu + torch.randn(64, 10, generator=g) * torch.exp(0.5 * logvar)
    return z, mu, logvar


def test_hfs_estimator_offset_on_a_fixed_batch():
    """The figures docs/methods.md quotes, recomputed; the two estimators disagree in sign."""
    z, mu, logvar = _docs_batch()
    mss = {k: v.item() for k, v in kl_decomposition(z, mu, logvar, 737280, "mss").items()}
    hfs = {k: v.item() for k, v in kl_decomposition(z, mu, logvar, 737280, "hfs").items()}
    page = (ROOT / "docs" / "methods.md").read_text()
    quoted = re.search(r"TC \*\*(−?[\d.]+)\*\* nats with `mss`, \*\*\+?([\d.]+)\*\* with `hfs` \(offset \+([\d.]+) nats\)", page)
    assert quoted, "docs/methods.md no longer quotes the measured offset"
    tc_mss, tc_hfs, offset = (float(v.replace("−", "-")) for v in quoted.groups())
    assert round(mss["tc"], 3) == tc_mss and round(hfs["tc"], 3) == tc_hfs
    assert round(hfs["tc"] - mss["tc"], 2) == offset
    assert mss["tc"] < 0 < hfs["tc"]
    assert sum(mss.values()) == pytest.approx(sum(hfs.values()), rel=1e-5)  # same Monte-Carlo KL


def test_beta_tcvae_accepts_the_hfs_estimator():
    method = registry.build("beta_tcvae", "objective", {"estimator": "hfs"})
    loss, logs = call_checked(method, _batch(seed=7, dtype=torch.float32))
    assert torch.isfinite(loss) and set(logs) >= {"mi", "tc", "dim_kl"}
    with pytest.raises(ValueError, match="estimator must be one of mss, mws, hfs"):
        registry.build("beta_tcvae", "objective", {"estimator": "hfs_mss"})


def np_dlib_tc(z, mu, lv) -> float:
    """dlib's total_correlation: constants dropped, log q(z) and the marginals by plain logsumexp."""
    cross = -0.5 * (lv[None] + (z[:, None] - mu[None]) ** 2 * np.exp(-lv[None]) + np.log(2 * np.pi))

    def lse(a, axis):
        m = a.max(axis, keepdims=True)
        return np.squeeze(m, axis) + np.log(np.exp(a - m).sum(axis))

    return float(np.mean(lse(cross.sum(2), 1) - lse(cross, 1).sum(1)))


@pytest.mark.parametrize("beta", [1.0, 6.0])
def test_beta_tcvae_dlib_form_matches_numpy(beta):
    out = _batch(seed=8)
    method = registry.build("beta_tcvae", "objective", {"beta": beta, "estimator": "mws", "form": "dlib"})
    loss, _ = call_checked(method, out)
    expected = np_recon(out) + np_kl(out) + (beta - 1) * np_dlib_tc(_np(out.z), _np(out.mu), _np(out.logvar))
    assert loss.item() == pytest.approx(expected, rel=1e-10)
    for bad in ({"estimator": "mss"}, {"estimator": "mws", "alpha": 0.5}):
        with pytest.raises(ValueError, match="form 'dlib'.*needs estimator 'mws'"):
            registry.build("beta_tcvae", "objective", {"form": "dlib", **bad})


@pytest.mark.parametrize("name, params", [
    ("factor_vae", {"gamma": -1.0}), ("factor_vae", {"discriminator_beta1": 1.0}),
    ("factor_vae", {"discriminator_layers": 0}), ("dip_vae_i", {"lambda_od": -1.0}),
    ("dip_vae_ii", {"lambda_d_factor": -0.5}), ("annealed_vae", {"iteration_threshold": 0}),
    ("annealed_vae", {"c_max": -5.0}),
])
def test_bad_parameters_fail_when_the_spec_loads(name, params):
    with pytest.raises(ValueError, match=next(iter(params))):
        registry.build(name, "objective", params)


@pytest.mark.parametrize("rho, tc_true", [(0.0, 0.0), (0.9, -0.5 * np.log(1 - 0.9**2))])
def test_factor_vae_discriminator_learns_the_total_correlation(rho, tc_true):
    """The density-ratio trick at work: trained by update() alone on codes with a known TC
    (2-D Gaussian, correlation ρ: TC = −½ log(1 − ρ²)), the mean logit difference finds it."""
    torch.manual_seed(0)
    method = registry.build("factor_vae", "objective", {"discriminator_hidden": 64, "discriminator_layers": 2,
                                                        "discriminator_lr": 1e-3})
    method.setup(2, torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    chol = torch.linalg.cholesky(torch.tensor([[1.0, rho], [rho, 1.0]]))

    def codes(n):
        z = torch.randn(n, 2, generator=g) @ chol.T
        return ForwardPass(x=None, mu=z, logvar=torch.zeros_like(z), z=z, logits=None, model=None,  # type: ignore[arg-type]
                           dataset_size=10**6, generator=g)

    accuracy = []
    for _ in range(600):
        accuracy.append(update_checked(method, codes(256))["discriminator_accuracy"])
    with torch.no_grad():
        logits = method.discriminator(codes(20000).z)
    tc = (logits[:, 0] - logits[:, 1]).mean().item()
    assert tc == pytest.approx(tc_true, abs=0.2), (tc, tc_true)
    if rho:
        assert np.mean(accuracy[-100:]) > 0.6  # it tells joint from permuted codes


# -- gradients and a short training run ---------------------------------------------------------
def _params(name):
    return ({"discriminator_hidden": 64} if name == "factor_vae"
            else {"c_max": 5.0, "iteration_threshold": 400} if name == "annealed_vae" else {})


@pytest.mark.parametrize("name", ZOO)
def test_gradients_are_finite_and_reach_the_encoder(name):
    torch.manual_seed(0)
    model = VAE(num_channels=1, latent_dim=6)
    method = registry.build(name, "objective", _params(name))
    method.setup(6, torch.device("cpu"))
    x = (torch.rand(12, 1, 64, 64) < 0.2).float()
    out = model(x, generator=torch.Generator().manual_seed(0), dataset_size=500)
    out.step = 10
    loss, _ = call_checked(method, out)
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.encoder[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ZOO)
def test_a_short_training_run_lowers_the_loss(name):
    """40 Adam steps on one fixed dSprites-like batch: the method's own loss must fall."""
    from gmgbench.harness import data

    torch.manual_seed(0)
    ds = data.load("dsprites_procedural")
    rs = np.random.RandomState(0)
    x = ds.training_batch(ds.sample_factors(16, rs), rs)
    model = VAE(num_channels=1, latent_dim=6)
    method = registry.build(name, "objective", _params(name))
    method.setup(6, torch.device("cpu"))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    noise = torch.Generator().manual_seed(0)
    losses, logs = [], {}
    for step in range(40):
        out = model(x, generator=noise, dataset_size=ds.dataset_size)
        out.step = step
        loss, logs = call_checked(method, out)
        opt.zero_grad()
        loss.backward()
        opt.step()
        logs.update(update_checked(method, out))
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5]), losses
    if name == "factor_vae":
        assert "discriminator_loss" in logs
    if name == "annealed_vae":
        assert logs["capacity"] == pytest.approx(5.0 * 39 / 400)  # the capacity grew with the step


# -- FactorVAE: killed mid-training, resumed in a new process, bit for bit -----------------------
@pytest.fixture
def factor_run(tmp_path):
    import yaml

    spec = {
        "name": "fvae-resume",
        "datasets": ["dsprites_procedural"],
        "methods": [{"label": "fvae", "objective": "factor_vae", "params": {"gamma": 20.0, "discriminator_hidden": 64}}],
        "seeds": 1,
        "train": {"steps": 6, "batch_size": 8, "checkpoint_every": 2, "log_every": 1, "num_threads": 1},
        "evaluation": {"metrics": {"mig": {"num_train": 64, "batch_size": 16}}},
        "leaderboard": {"selection": "mig.discrete_mig"},
    }
    path = tmp_path / "fvae.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


_CHILD = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    import torch
    torch.set_num_threads(1)
    from gmgbench.harness.spec import load_spec
    from gmgbench.harness.train import train_run
    spec, workdir, kill_at = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    run = load_spec(spec).runs()[0]
    def on_step(step):
        if step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)  # no clean-up: as a preempted node dies
    train_run(run, workdir, progress=False, on_step=on_step if kill_at else None)
""")


def _child(spec: Path, workdir: Path, kill_at: int) -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-c", _CHILD, str(spec), str(workdir), str(kill_at)],
                          env=env, cwd=ROOT, timeout=600).returncode


def _final_state(workdir: Path):
    model = torch.load(workdir / "model.pt", weights_only=True)["model"]
    methods = torch.load(workdir / "checkpoint.pt", weights_only=True)["methods"]
    return model, methods


def _assert_same(a, b, where="state"):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_factor_vae_killed_mid_training_resumes_bit_for_bit(tmp_path, factor_run):
    run = load_spec(factor_run).runs()[0]
    straight = train_run(run, tmp_path / "straight", progress=False)
    # Killed at step 5, after the checkpoint of step 4: steps 5.. are lost and redone.
    assert _child(factor_run, tmp_path / "killed", kill_at=5) == -signal.SIGKILL
    assert not (tmp_path / "killed" / "model.pt").exists()
    assert torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)["step"] == 4
    assert _child(factor_run, tmp_path / "killed", kill_at=0) == 0
    model_a, methods_a = _final_state(tmp_path / "straight")
    model_b, methods_b = _final_state(tmp_path / "killed")
    _assert_same(model_a, model_b, "model")
    _assert_same(methods_a, methods_b, "methods")
    assert methods_a[0]["optimizer"]["state"], "the discriminator's Adam state is checkpointed"
    assert straight["steps"] == 6 and "discriminator_loss" in straight["final"]


def test_factor_vae_resume_needs_its_discriminator_state(tmp_path, factor_run):
    """Without the discriminator's state a resume would silently diverge; it must differ."""
    run = load_spec(factor_run).runs()[0]
    train_run(run, tmp_path / "a", progress=False)
    with pytest.raises(Interrupted):
        train_run(run, tmp_path / "b", progress=False, stop_after=3)
    ckpt = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    ckpt["methods"] = [{}]  # as if the loop had not saved it
    torch.save(ckpt, tmp_path / "b" / "checkpoint.pt")
    train_run(run, tmp_path / "b", progress=False)
    a = torch.load(tmp_path / "a" / "model.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / "model.pt", weights_only=True)["model"]
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_a_method_without_state_refuses_a_checkpoint_with_state():
    method = registry.build("beta_vae", "objective", {})
    assert method.state_dict() == {}
    method.load_state_dict({})
    with pytest.raises(ValueError, match="beta_vae.*keeps no state"):
        method.load_state_dict({"discriminator": {}})
