"""Training (``usedge train``): the FMC-UIA / phantom data as mixed-task batches, per-kind losses, the loop with
resume and validation, distributed data parallel, evaluation of a torch model. Checkpoints are written by
:mod:`usedge.models.checkpoint`. Needs the ``train`` extra."""
