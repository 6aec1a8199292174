"""The commands behind the CLI, one module each: ``plan``, ``run``, ``export``, ``revoke``, ``redact``.

Each is what its command does apart from the click wiring (:mod:`jobsecrets.cli`), which imports
them lazily so that ``--help`` and ``--version`` stay light.
"""
