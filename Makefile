# Everything a fresh machine needs, from the project's own files. `make demo` and
# `make test` are the README's two commands; both create .venv on first use and are
# quick no-ops on a rerun (the stamp depends on the files that pin the environment).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export XLA_PYTHON_CLIENT_PREALLOCATE := false
export POT_BACKEND_DISABLE_PYTORCH := 1
export POT_BACKEND_DISABLE_JAX := 1
export POT_BACKEND_DISABLE_TENSORFLOW := 1
export POT_BACKEND_DISABLE_CUPY := 1

.PHONY: venv venv-dlib demo test test-avx2 test-fast bench clean-venv

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[test,tensorboard,tf]"
	$(BIN)/python -m pip install -q --no-deps "disentanglement-lib==1.5"
	touch $(STAMP)

venv: $(STAMP)

# disentanglement_lib's own TF1 code (hub.Module, its evaluate) needs TensorFlow 2.15 with
# tensorflow-hub 0.15 and NumPy 1: a separate environment, used by the interop tests to score
# our exports with dlib's evaluation and to build modules with dlib's export code.
DLIB_VENV := .venv-dlib
DLIB_STAMP := $(DLIB_VENV)/.installed
$(DLIB_STAMP): tests/dlib_format/dlib-env.txt
	test -x $(DLIB_VENV)/bin/python || $(PY) -m venv $(DLIB_VENV)
	$(DLIB_VENV)/bin/python -m pip install -q --upgrade "pip>=24"
	$(DLIB_VENV)/bin/python -m pip install -q -r tests/dlib_format/dlib-env.txt
	$(DLIB_VENV)/bin/python -m pip install -q --no-deps "disentanglement-lib==1.5"
	touch $(DLIB_STAMP)

venv-dlib: $(DLIB_STAMP)

demo: $(STAMP)
	$(BIN)/gmgbench demo

# The numerics that depend on the CPU's kernels run a second time with every runtime
# instruction-set cap that torch, oneDNN, MKL, XLA and NumPy honour set to AVX2, so a machine
# with AVX-512 cannot hide a tolerance that holds only on its own kernels (docs/testing.md).
AVX2_CAPS := ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 ATEN_CPU_CAPABILITY=avx2 \
	XLA_FLAGS=--xla_cpu_max_isa=AVX2 NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL AVX512_SPR"
NUMERICS_TESTS := tests/harness/test_train.py tests/harness/test_health.py tests/harness/test_gmg_estimators.py \
	tests/methods tests/metrics tests/dlib_format

# The whole suite, slow tests and the real local Slurm cluster included; then the numerics
# again under the AVX2 caps.
test: $(STAMP) $(DLIB_STAMP)
	$(BIN)/python -m pytest -v -p no:cacheprovider
	$(MAKE) --no-print-directory test-avx2

test-avx2: $(STAMP) $(DLIB_STAMP)
	env $(AVX2_CAPS) $(BIN)/python -m pytest -v -p no:cacheprovider -m "not benchmark_side_by_side" $(NUMERICS_TESTS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not slurm"

# Speed comparisons, side by side in one run; ratios are printed, never asserted.
bench: $(STAMP)
	$(BIN)/python -m pytest tests -m benchmark_side_by_side --benchmark-enable --benchmark-columns=median,iqr,rounds -p no:cacheprovider

clean-venv:
	rm -rf $(VENV) $(DLIB_VENV)
