"""Training: data loading, per-kind losses, the loop, safetensors checkpoints. Needs the ``train`` extra."""
