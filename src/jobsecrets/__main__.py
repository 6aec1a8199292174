"""``python -m jobsecrets``."""

from .cli import main

main()
