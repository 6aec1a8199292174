"""What the commands that hand values to a job share: the mask list of everything the job holds."""

from __future__ import annotations

__all__ = ["masks_for"]

import logging

from ..redact import MaskList
from ..resolved import Resolution
from ..session import Session

log = logging.getLogger("jobsecrets")


def masks_for(session: Session, resolution: Resolution) -> MaskList:
    """Every value to mask: the variables, our login tokens, the CI identity tokens."""
    masks = MaskList(
        replacement=session.spec.redact.replacement,
        min_line_length=session.spec.redact.min_line_length,
    )
    for var in resolution.variables:
        masks.add(var.value, name=var.name)
    for record in session.ledger.tokens():
        # The child never gets our token, but mask it anyway: it is a credential.
        masks.add(record.token, name=f"{record.backend} token")
    for token in session.identity_tokens():
        # The CI identity token signs anyone in as this job until it expires: a credential too.
        masks.add(token, name="CI identity token")
    for warning in masks.warnings:
        log.warning("%s", warning)
    return masks
