"""Slurm launcher: a study's missing runs as submitit job arrays.

``gmgbench launch STUDY --profile P`` groups the runs that have no result by resource set
(profile defaults, overridden by the study's ``resources:`` and each method's), cuts each
group into arrays no larger than the cluster's ``MaxArraySize`` and submits every array
task as a :class:`gmgbench.harness.slurm.job.TrainJob` — a Python callable that runs
:func:`gmgbench.harness.executors.execute`, the same unit of work as ``gmgbench run``.

Nothing is lost or run twice when the launcher dies at any point:

1. each array is first written to a launch journal (``<store>/launches/``) under a unique
   Slurm job name, then submitted **held** (``sbatch --hold``);
2. once submitit has placed the task pickles, the journal and every run's
   ``jobs/<run_id>.json`` get the job ids;
3. only then is the array released (``scontrol release``).

A later ``launch`` first finishes what a dead one left: an array Slurm knows under a
journal's name is adopted when its pickles are in place and cancelled (never having run)
otherwise; a held array whose ids were recorded is released. A run whose recorded job is
pending or running in Slurm is never submitted again, and a failed run only with
``--retry-failed``. Preemption and time limits are handled by submitit: the job
requeues itself and training resumes from its last checkpoint (see docs/slurm.md).

Modules: :mod:`~gmgbench.harness.slurm.profile` (cluster profiles), :mod:`~gmgbench.harness.slurm.plan`
(runs → arrays), :mod:`~gmgbench.harness.slurm.cluster` (squeue/sacct/scontrol),
:mod:`~gmgbench.harness.slurm.journal` (the launch journal and recovery), :mod:`~gmgbench.harness.slurm.job`
(the array task), :mod:`~gmgbench.harness.slurm.launch` (the submit sequence above),
:mod:`~gmgbench.harness.slurm.states` (each run's state, local runs included: what ``launch``
submits by and ``gmgbench status`` reports).
"""
