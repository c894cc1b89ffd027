"""Cluster profiles (``slurm/profiles/*.yaml``): where and how a cluster runs jobs."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from gmgbench.harness.errors import UserError, check_keys
from gmgbench.harness.fileio import load_yaml

__all__ = ["Profile", "ProfileError", "load_profile", "parse_profile", "check_resources", "check_section",
           "resource_keys"]


class ProfileError(UserError, ValueError):
    """The cluster profile is invalid; the message names the file and the key."""


_PROFILE_KEYS = {
    "resources": "submitit AutoExecutor parameters for every run (timeout_min, gpus_per_node, slurm_partition, ...)",
    "limits": "the cluster's maxima of numeric resources (cpus_per_task, mem_gb, timeout_min, ...): a study's "
              "or method's larger request is capped to them, and the launcher says so",
    "array_parallelism": "at most this many tasks of one array run at once (Slurm's --array=...%N)",
    "max_array_size": "largest array to submit: an int, or 'auto' to read MaxArraySize from `scontrol show config`",
    "max_num_timeout": "how many times a run may hit the time limit and be requeued (submitit's max_num_timeout)",
    "python": "python command on the compute nodes (default: this interpreter)",
    "step_seconds": "measured seconds per beta-VAE step (batch 64) on this cluster, for --dry-run's time estimate",
    "description": "free text",
}
SUBMITIT_TESTED = ("1.5", "1.6")  # pyproject.toml caps submitit to this range too
# Set by the launcher itself, per array: not for profiles or specs.
_RESERVED = {"name", "slurm_job_name", "slurm_array_parallelism", "slurm_map_count"}


def resource_keys() -> set[str]:
    """Valid resource names: AutoExecutor's generic ones and ``slurm_<sbatch parameter>``."""
    # late: submitit (0.2 s) is needed to check resource names, not to read a spec (`gmgbench status`)
    import submitit

    from gmgbench.metrics.validation import require_version

    require_version("submitit", *SUBMITIT_TESTED, why="the launcher reads resource names from its private "
                    "_valid_parameters()")
    generic = set(submitit.AutoExecutor._valid_parameters())
    specific = {f"slurm_{k}" for k in submitit.SlurmExecutor._valid_parameters()}
    return (generic | specific) - _RESERVED


def check_resources(where: str, key: str, resources: Mapping[str, Any]) -> None:
    if not isinstance(resources, Mapping):
        raise ProfileError(f"{where}: {key}: resources are a mapping of submitit parameters, got {type(resources).__name__}")
    valid = resource_keys()
    for name in resources:
        if name in _RESERVED:
            raise ProfileError(f"{where}: {key}.{name}: set by the launcher (use array_parallelism in the profile)")
    check_keys(f"{where}: {key}.", resources, valid, error=ProfileError, what="submitit parameter")


def check_section(where: str, raw: Any, spec, full: bool) -> None:
    """The study spec's ``resources:`` and each method's, as it loads (a
    :class:`gmgbench.harness.spec.SectionCheck`): submitit's parameter names, with ``full`` only
    (they come from submitit). The spec keeps the blocks as written."""
    if full:
        check_resources(where, "resources", spec.resources)
        for i, m in enumerate(spec.methods):
            check_resources(where, f"methods[{i}].resources", m.resources)


@dataclass(frozen=True)
class Profile:
    """Where and how a cluster runs jobs; see slurm/profiles/template.yaml."""

    resources: dict[str, Any] = field(default_factory=dict)
    array_parallelism: int = 64
    max_array_size: int | None = None  # None: ask the cluster
    max_num_timeout: int = 3
    python: str | None = None
    step_seconds: float | None = None
    path: Path | None = None
    limits: dict[str, float] = field(default_factory=dict)

    def cap(self, resources: dict[str, Any]) -> tuple[dict[str, Any], dict[str, tuple[Any, Any]]]:
        """``resources`` with every numeric value above the profile's ``limits`` lowered to
        it, and ``{name: (asked, given)}`` for each one that was."""
        out, capped = dict(resources), {}
        for name, limit in self.limits.items():
            value = out.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > limit:
                out[name] = type(value)(limit)
                capped[name] = (value, out[name])
        return out, capped


def parse_profile(raw: Any, path: Path | None = None) -> Profile:
    where = str(path) if path else "<profile>"
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ProfileError(f"{where}: a profile is a YAML mapping, got {type(raw).__name__}")
    check_keys(f"{where}: ", raw, _PROFILE_KEYS, error=ProfileError)
    resources = dict(raw.get("resources") or {})
    check_resources(where, "resources", resources)
    limits = raw.get("limits") or {}
    check_resources(where, "limits", limits)
    for name, value in limits.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            raise ProfileError(f"{where}: limits.{name}: a limit is a positive number, got {value!r}")

    def positive_int(key: str, default: int) -> int:
        value = raw.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ProfileError(f"{where}: {key}: expected a positive integer, got {value!r}")
        return value

    mas = raw.get("max_array_size", "auto")
    if mas != "auto" and (not isinstance(mas, int) or isinstance(mas, bool) or mas <= 0):
        raise ProfileError(f"{where}: max_array_size: expected a positive integer or 'auto', got {mas!r}")
    python = raw.get("python")
    if python is not None and not isinstance(python, str):
        raise ProfileError(f"{where}: python: expected a command string, got {python!r}")
    step_seconds = raw.get("step_seconds")
    if step_seconds is not None and (not isinstance(step_seconds, (int, float)) or isinstance(step_seconds, bool)
                                     or step_seconds <= 0):
        raise ProfileError(f"{where}: step_seconds: expected a positive number of seconds, got {step_seconds!r}")
    return Profile(resources=resources, array_parallelism=positive_int("array_parallelism", 64),
                   max_array_size=None if mas == "auto" else mas,
                   max_num_timeout=positive_int("max_num_timeout", 3), python=python,
                   step_seconds=None if step_seconds is None else float(step_seconds), path=path,
                   limits=dict(limits))


def load_profile(path: str | Path) -> Profile:
    path = Path(path)
    raw = load_yaml(path, what="profile", error=ProfileError, hint="see slurm/profiles/template.yaml")
    return parse_profile(raw, path)
