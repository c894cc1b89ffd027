"""disentanglement_lib's own TF1 code, run in its own environment (.venv-dlib, `make venv-dlib`).

Called by the interop tests as ``<dlib python> dlib_side.py COMMAND ...``; prints nothing
but errors, writes its answers to files. Commands:

  build MODEL_DIR --channels C --latent D --size S --seed N --dataset NAME
        train nothing, but build a model exactly as dlib's ``train`` exports one: dlib's
        conv_encoder / deconv_decoder in a GaussianEncoderModel, variables from a TF
        checkpoint, written by dlib's ``gaussian_encoder_model.export_as_tf_hub`` (which
        calls ``hub.create_module_spec`` with tags {train} and {}); plus results/gin/train.gin.
  represent MODULE_DIR SIGNATURE OUTPUT IMAGES.npy OUT.npy
        dlib's loading path: ``hub.eval_function_for_module(MODULE_DIR)`` applied to the
        images, the named output saved.
  evaluate MODEL_DIR OUT_DIR GIN_BINDING...
        dlib's ``evaluate.evaluate_with_gin(MODEL_DIR, OUT_DIR, gin_bindings=...)``.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

# Run as a script (sys.path[0] is this folder): the gin shim it shares with the tests is one up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gin_compat import patch_configurable  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # as gmgbench's side: plain kernels


def build(model_dir: str, channels: int, latent: int, size: int, seed: int, dataset: str) -> None:
    import gin
    import numpy as np
    import tensorflow.compat.v1 as tf

    from disentanglement_lib.methods.shared import architectures
    from disentanglement_lib.methods.unsupervised import gaussian_encoder_model

    gin.bind_parameter("encoder.num_latent", latent)
    gin.bind_parameter("encoder.encoder_fn", architectures.conv_encoder)
    gin.bind_parameter("decoder.decoder_fn", architectures.deconv_decoder)

    class Model(gaussian_encoder_model.GaussianEncoderModel):
        """dlib's BaseVAE encode/decode (vae.py imports tf.contrib, gone in TF 2)."""

        def gaussian_encoder(self, input_tensor, is_training):
            return architectures.make_gaussian_encoder(input_tensor, is_training=is_training)

        def decode(self, latent_tensor, observation_shape, is_training):
            return architectures.make_decoder(latent_tensor, observation_shape, is_training=is_training)

        def sample_from_latent_distribution(self, z_mean, z_logvar):
            return tf.add(z_mean, tf.exp(z_logvar / 2) * tf.random_normal(tf.shape(z_mean), 0, 1), name="sampled")

    shape = [size, size, channels]
    model = Model()
    ckpt_dir = os.path.join(model_dir, "tf_checkpoint")
    os.makedirs(ckpt_dir)
    with tf.Graph().as_default():
        tf.set_random_seed(seed)
        images = tf.placeholder(tf.float32, [None, *shape])
        with tf.variable_scope(tf.get_variable_scope(), reuse=tf.AUTO_REUSE):
            mean, logvar = model.gaussian_encoder(images, is_training=True)
            model.decode(model.sample_from_latent_distribution(mean, logvar), shape, is_training=True)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            # Make the biases non-zero too, so that a transposed or dropped bias shows.
            rng = np.random.RandomState(seed)
            for v in tf.global_variables():
                if v.op.name.endswith("bias"):
                    v.load(rng.normal(0, 0.1, v.shape.as_list()).astype(np.float32), sess)
            ckpt = tf.train.Saver().save(sess, os.path.join(ckpt_dir, "model.ckpt"))
    gaussian_encoder_model.export_as_tf_hub(model, shape, ckpt, os.path.join(model_dir, "tfhub"))
    os.makedirs(os.path.join(model_dir, "results", "gin"))
    with open(os.path.join(model_dir, "results", "gin", "train.gin"), "w") as f:
        f.write(f"dataset.name = '{dataset}'\nencoder.encoder_fn = @conv_encoder\nencoder.num_latent = {latent}\n"
                f"model.model = @vae()\nmodel.random_seed = {seed}\n")


def represent(module_dir: str, signature: str, output: str, images: str, out: str) -> None:
    import numpy as np
    import tensorflow_hub as hub

    x = np.load(images)
    with hub.eval_function_for_module(module_dir) as f:
        result = f(dict(images=x), signature=signature, as_dict=True)
    np.save(out, np.asarray(result[output]))


def evaluate(model_dir: str, out_dir: str, bindings: list[str]) -> None:
    from disentanglement_lib.evaluation import evaluate as dlib_evaluate

    dlib_evaluate.evaluate_with_gin(model_dir, out_dir, gin_bindings=bindings)


def main(argv: list[str]) -> None:
    cmd, args = argv[0], argv[1:]
    patch_configurable()
    if cmd == "build":
        import argparse

        p = argparse.ArgumentParser()
        p.add_argument("model_dir")
        for key, default in (("channels", 1), ("latent", 10), ("size", 64), ("seed", 0)):
            p.add_argument(f"--{key}", type=int, default=default)
        p.add_argument("--dataset", default="dsprites_procedural")
        a = p.parse_args(args)
        build(a.model_dir, a.channels, a.latent, a.size, a.seed, a.dataset)
    elif cmd == "represent":
        represent(*args)
    elif cmd == "evaluate":
        evaluate(args[0], args[1], args[2:])
    else:
        sys.exit(f"unknown command {cmd!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
