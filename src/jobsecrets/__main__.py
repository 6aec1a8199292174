"""``python -m jobsecrets``."""

from ._entry import main

main()
