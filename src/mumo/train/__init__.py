"""The training engine: one plain loop, checkpoints, optimiser schedule, logging."""
