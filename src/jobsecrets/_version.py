"""The package version, kept apart so ``jobsecrets --version`` imports nothing else."""

__version__ = "0.1.0"
