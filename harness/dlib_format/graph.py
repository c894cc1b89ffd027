"""Our torch VAE as a TensorFlow graph: the same ops, the same weights, NHWC like dlib.

Each layer of ``VAE.encoder`` / ``VAE.decoder`` (an ``nn.Sequential``) becomes the TF op
computing the same function; torch is NCHW and dlib's modules are NHWC, so kernels are
transposed and the two reshapes (``Flatten``, ``Unflatten``) go through NCHW order, which is
what makes the dense layers' weights carry over unchanged. Variables are named after the
torch parameters (``encoder/0/kernel`` for ``encoder.0.weight``). A layer type without a
translation here is an error naming it, never a silently different graph.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["tf_variables", "build_signatures", "LAYERS"]

LAYERS = ("Conv2d", "ConvTranspose2d", "Linear", "ReLU", "Flatten", "Unflatten")


def _layers(model) -> list[tuple[str, Any]]:
    out = []
    for part in ("encoder", "decoder"):
        for idx, layer in enumerate(getattr(model, part)):
            kind = type(layer).__name__
            if kind not in LAYERS:
                raise ValueError(f"{part}.{idx}: layer {kind} has no TensorFlow translation (known: {', '.join(LAYERS)})")
            out.append((f"{part}/{idx}", layer))
    return out


def tf_variables(model) -> dict[str, np.ndarray]:
    """``{variable name: value}`` in TF layouts: conv kernels HWIO, transposed-conv HWOI, dense IO."""
    values = {}
    for name, layer in _layers(model):
        kind = type(layer).__name__
        if kind in ("Conv2d", "ConvTranspose2d"):
            _check_conv(name, layer)
            # torch Conv2d [out, in, kh, kw] -> [kh, kw, in, out]; ConvTranspose2d
            # [in, out, kh, kw] -> [kh, kw, out, in], which is tf.nn.conv2d_transpose's layout.
            values[f"{name}/kernel"] = layer.weight.detach().cpu().numpy().transpose(2, 3, 1, 0)
        elif kind == "Linear":
            values[f"{name}/kernel"] = layer.weight.detach().cpu().numpy().T
        else:
            continue
        values[f"{name}/bias"] = layer.bias.detach().cpu().numpy()
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in values.items()}


def _check_conv(name: str, layer) -> None:
    if layer.groups != 1 or tuple(layer.dilation) != (1, 1) or layer.padding_mode != "zeros" or \
            tuple(getattr(layer, "output_padding", (0, 0))) != (0, 0) or layer.bias is None:
        raise ValueError(f"{name}: only ungrouped, undilated, zero-padded convolutions with bias translate")


def build_signatures(model, observation_shape: tuple[int, int, int], is_training: bool = False) -> dict:
    """dlib's three signatures on the current default graph (see the module docstring).

    ``gaussian_encoder``: images [B, H, W, C] → mean, logvar [B, D];
    ``reconstructions``: images → images (Bernoulli logits of a decoded posterior sample);
    ``decoder``: latent_vectors [B, D] → images (logits). dlib's decoders output logits too.
    ``is_training`` is accepted for dlib's two tag sets; the VAE has no dropout or batch norm,
    so both graphs are the same.
    """
    from gmgbench.harness.dlib_format._tf import tensorflow

    tf = tensorflow()
    v1 = tf.compat.v1
    layers = dict(_layers(model))
    weights = {}

    def var(name: str, value_shape) -> Any:
        if name not in weights:
            weights[name] = v1.get_variable(name, shape=value_shape, dtype=tf.float32,
                                            initializer=v1.zeros_initializer())
        return weights[name]

    shapes = {k: v.shape for k, v in tf_variables(model).items()}

    def run(part: str, x):
        for idx in range(len(getattr(model, part))):
            name = f"{part}/{idx}"
            layer = layers[name]
            kind = type(layer).__name__
            if kind == "Conv2d":
                (ph, pw), (sh, sw) = layer.padding, layer.stride
                x = tf.nn.conv2d(x, var(f"{name}/kernel", shapes[f"{name}/kernel"]), strides=[1, sh, sw, 1],
                                 padding=[[0, 0], [ph, ph], [pw, pw], [0, 0]])
                x = tf.nn.bias_add(x, var(f"{name}/bias", shapes[f"{name}/bias"]))
            elif kind == "ConvTranspose2d":
                (ph, pw), (sh, sw), (kh, kw) = layer.padding, layer.stride, layer.kernel_size
                h, w = x.shape[1], x.shape[2]
                out_h, out_w = (h - 1) * sh - 2 * ph + kh, (w - 1) * sw - 2 * pw + kw
                out_shape = tf.stack([tf.shape(x)[0], out_h, out_w, layer.out_channels])
                x = tf.nn.conv2d_transpose(x, var(f"{name}/kernel", shapes[f"{name}/kernel"]), out_shape,
                                           strides=[1, sh, sw, 1], padding=[[0, 0], [ph, ph], [pw, pw], [0, 0]])
                x = tf.nn.bias_add(x, var(f"{name}/bias", shapes[f"{name}/bias"]))
            elif kind == "Linear":
                x = tf.matmul(x, var(f"{name}/kernel", shapes[f"{name}/kernel"]))
                x = tf.nn.bias_add(x, var(f"{name}/bias", shapes[f"{name}/bias"]))
            elif kind == "ReLU":
                x = tf.nn.relu(x)
            elif kind == "Flatten":
                # torch flattens C, H, W in that order.
                x = tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [-1, int(np.prod(x.shape[1:]))])
            elif kind == "Unflatten":
                c, h, w = layer.unflattened_size
                x = tf.transpose(tf.reshape(x, [-1, c, h, w]), [0, 2, 3, 1])
        return x

    latent = model.latent_dim
    with v1.variable_scope("", reuse=v1.AUTO_REUSE):
        images = v1.placeholder(tf.float32, shape=[None, *observation_shape], name="images")
        stats = run("encoder", images)
        mean, logvar = tf.identity(stats[:, :latent], name="mean"), tf.identity(stats[:, latent:], name="logvar")
        # dlib's sample_from_latent_distribution: mean + exp(logvar / 2) · N(0, 1).
        sample = mean + tf.exp(logvar / 2) * tf.random.normal(tf.shape(mean), 0, 1)
        reconstructions = run("decoder", sample)
        latent_vectors = v1.placeholder(tf.float32, shape=[None, latent], name="latent_vectors")
        decoded = run("decoder", latent_vectors)
    return {
        "gaussian_encoder": ({"images": images}, {"mean": mean, "logvar": logvar}),
        "reconstructions": ({"images": images}, {"images": reconstructions}),
        "decoder": ({"latent_vectors": latent_vectors}, {"images": decoded}),
    }


def build_representation(model, observation_shape: tuple[int, int, int], is_training: bool = False) -> dict:
    """dlib's postprocessed module for ``postprocess_fn = @mean_representation``: one
    ``representation`` signature, images → ``default`` (the posterior mean)."""
    sigs = build_signatures(model, observation_shape, is_training)
    (inputs, outputs) = sigs["gaussian_encoder"]
    return {"representation": (inputs, {"default": outputs["mean"]})}
