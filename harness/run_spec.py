"""One run of a study: :class:`RunSpec` (what a worker trains) and its :class:`TrainSettings`.

:func:`gmgbench.harness.spec.expand` makes the runs of a study; :meth:`RunSpec.result_config`
is what a run's result depends on, hashed into its run id. A run carries its methods'
Configs as the spec built them, pickled with it (:meth:`RunSpec.method_configs`).
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from gmgbench.harness.sections import EvaluationSpec, FrozenMap
from gmgbench.harness.spec_values import as_int, as_mapping, as_number, check_spec_keys, fail

__all__ = ["TrainSettings", "RunSpec", "MEMORY_FORMATS"]


@dataclass(frozen=True)
class TrainSettings:
    """Training settings shared by every run of a study (overridable per method)."""

    steps: int = 300_000
    batch_size: int = 64
    lr: float = 1e-4
    latent_dim: int = 10
    checkpoint_every: int = 1000
    log_every: int = 100
    device: str = "auto"  # auto | cpu | cuda
    num_threads: int = 0  # torch threads per run; 0 keeps torch's default
    # The model's and batches' memory layout on CPU/GPU convolutions. channels_last is ~1.25x
    # faster per CPU step (docs/performance.md) but not bitwise equal to contiguous, so it
    # enters the run id when set, and the default stays contiguous: finished runs keep their
    # numbers.
    memory_format: str = "contiguous"  # contiguous | channels_last
    # Regulariser health (harness/health.py): measure each term's gradient share every this
    # many steps; 0 turns the measurement off. It never changes a run's numbers.
    health_every: int = 50

    def __post_init__(self):
        for key in ("steps", "batch_size", "latent_dim", "checkpoint_every", "log_every"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{key} must be > 0, got {getattr(self, key)}")
        if self.health_every < 0:
            raise ValueError(f"health_every must be >= 0, got {self.health_every}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.memory_format not in MEMORY_FORMATS:
            raise ValueError(f"memory_format must be contiguous or channels_last, got {self.memory_format!r}")

    @classmethod
    def check(cls, where: str, prefix: str, raw: Any) -> dict[str, Any]:
        """``raw`` (a ``train:`` block, possibly partial) with every value of its exact type;
        returned as written (the run id hashes the values as written)."""
        raw = as_mapping(where, prefix.rstrip("."), raw, "training settings")
        check_spec_keys(where, prefix, raw, [f.name for f in dataclasses.fields(cls)])
        for key, value in raw.items():
            if key == "lr":
                as_number(where, prefix + key, value, positive=True)
            elif key == "device":
                if value not in ("auto", "cpu", "cuda"):
                    raise fail(where, prefix + key, f"expected auto, cpu or cuda, got {value!r}")
            elif key == "memory_format":
                if value not in MEMORY_FORMATS:
                    raise fail(where, prefix + key, f"expected contiguous or channels_last, got {value!r}")
            else:
                as_int(where, prefix + key, value, 0 if key in ("num_threads", "health_every") else 1)
        return raw


# Only these affect a run's numbers; the rest (logging, checkpoints, device choice,
# threads) do not enter the run id, so changing them never orphans finished runs.
_RESULT_KEYS = ("steps", "batch_size", "lr", "latent_dim")
# These change a run's numbers only when set away from their default, so they enter the run
# id only then: adding one never moved the id of a run that does not use it.
_RESULT_KEYS_IF_SET = {"memory_format": "contiguous"}
MEMORY_FORMATS = ("contiguous", "channels_last")


@dataclass(frozen=True)
class RunSpec:
    """Everything one training run needs. Frozen and picklable (submitit ships it).

    The methods' Configs, built once when the spec loaded, ride along (:meth:`method_configs`)
    and travel in the pickle too, so a worker or a Slurm job uses them as built instead of
    building them again (see :meth:`__getstate__`). They are never serialised as data
    (:meth:`to_dict`): a run record holds the parameters."""

    study: str
    dataset: str
    dataset_root: str | None
    method: str  # the method's label in the leaderboard
    objective: str
    objective_params: dict[str, Any]
    regularisers: tuple[tuple[str, dict[str, Any]], ...]
    seed: int
    train: TrainSettings
    evaluation: EvaluationSpec  # both keys (metrics, seed), the settings as written
    resources: FrozenMap = field(default_factory=FrozenMap, compare=False)

    def result_config(self) -> dict[str, Any]:
        """The part of the config that determines the result (hashed into the run id)."""
        return {
            "dataset": self.dataset,
            "objective": {"name": self.objective, "params": self.objective_params},
            "regularisers": [{"name": n, "params": p} for n, p in self.regularisers],
            "seed": self.seed,
            "train": {**{k: getattr(self.train, k) for k in _RESULT_KEYS},
                      **{k: getattr(self.train, k) for k, default in _RESULT_KEYS_IF_SET.items()
                         if getattr(self.train, k) != default}},
            "evaluation": self.evaluation.to_dict(),
        }

    @property
    def run_id(self) -> str:
        blob = json.dumps(self.result_config(), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def method_configs(self) -> tuple[Any, tuple[Any, ...]]:
        """(the objective's Config, each regulariser's Config): built when the spec loaded
        (here after unpickling, as built), or built here, once per process, for a run made
        without them (:meth:`from_dict`, a hand-made RunSpec)."""
        cached = self.__dict__.get("_configs")
        if cached is None:
            from gmgbench.methods import registry  # late: methods import torch; reading a run needs neither

            carried = self.__dict__.get("_carried_configs") or [None] * (1 + len(self.regularisers))
            terms = [(self.objective, "objective", self.objective_params),
                     *((n, "regulariser", p) for n, p in self.regularisers)]
            built = []
            for (name, kind, params), values in zip(terms, carried):
                cls = registry.get(name, kind)
                config = _unpacked(cls, values) if values is not None else None
                built.append(config if config is not None else registry.make_config(cls, params))
            cached = (built[0], tuple(built[1:]))
            object.__setattr__(self, "_configs", cached)
        return cached

    def __getstate__(self) -> dict[str, Any]:
        # The Configs travel as their values, found again by the method's registered name
        # when first used: a plugin file's Config class cannot be imported where the run is
        # unpickled (a worker loads the study's plugin files only after it has the run).
        state = dict(self.__dict__)
        configs = state.pop("_configs", None)
        if configs is not None and all(hasattr(c, "__dict__") for c in (configs[0], *configs[1])):
            state["_carried_configs"] = [dict(vars(c)) for c in (configs[0], *configs[1])]
        # (a Config with __slots__ does not travel: the worker builds it from the parameters)
        return state

    @property
    def hyperparams(self) -> dict[str, Any]:
        """Flat ``{objective.param: v, reg.param: v}`` of every parameter of this run."""
        flat = {f"{self.objective}.{k}": v for k, v in self.objective_params.items()}
        for name, params in self.regularisers:
            flat.update({f"{name}.{k}": v for k, v in params.items()})
        return flat

    @property
    def setting(self) -> str:
        """Readable hyperparameter setting, e.g. ``beta=4,gmg.weight=10`` (no seed)."""
        parts = [f"{k.split('.', 1)[1] if k.startswith(self.objective + '.') else k}={v}" for k, v in sorted(self.hyperparams.items())]
        return ",".join(parts)

    @property
    def name(self) -> str:
        return f"{self.method}[{self.setting}]@{self.dataset}/seed={self.seed}"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (a run record's ``config``), in field order."""
        d = {f.name: copy.deepcopy(getattr(self, f.name)) for f in dataclasses.fields(self)}
        d["regularisers"] = [{"name": n, "params": copy.deepcopy(p)} for n, p in self.regularisers]
        d["train"] = dataclasses.asdict(self.train)
        d["evaluation"] = self.evaluation.to_dict()
        d["resources"] = self.resources.to_dict()
        d["run_id"] = self.run_id
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunSpec":
        d = dict(d)
        d.pop("run_id", None)
        d["train"] = TrainSettings(**d["train"])
        d["regularisers"] = tuple((r["name"], dict(r["params"])) for r in d["regularisers"])
        d["evaluation"] = EvaluationSpec(d["evaluation"])
        if "resources" in d:
            d["resources"] = FrozenMap(d["resources"])
        return cls(**d)


def _unpacked(cls: type, values: dict[str, Any]) -> Any:
    """``cls``'s Config as it was pickled (no ``__init__`` runs, as in pickle itself), or None
    when its fields changed since (a plugin file edited in between: build it anew)."""
    config_cls = cls.Config
    if {f.name for f in dataclasses.fields(config_cls)} - set(values):
        return None
    config = object.__new__(config_cls)
    config.__dict__.update(values)
    return config
