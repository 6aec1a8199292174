"""``jobsecrets import``: vault-action, aws-secretsmanager-get-secrets, GitLab ``secrets:`` and vals
references turned into a jobsecrets spec, rewritten steps/jobs, and a report with file:line.

One module per source (:mod:`.vault_action`, :mod:`.aws_action`, :mod:`.gitlab`, :mod:`.vals`),
the model they fill (:mod:`.model`), the spec writer (:mod:`.specwriter`), the workflow step
rewriter (:mod:`.workflow`), the round-trip YAML reader/writer (:mod:`.yamlio`, the only user of
ruamel.yaml) and the command (:mod:`.command`). Imported only by the ``import`` command.
"""

from __future__ import annotations

__all__: list[str] = []
