"""The hvac adapter the Vault client sends with: answers parsed with numbers as the store wrote them.

hvac's ``JSONAdapter`` parses an answer with requests' ``Response.json()``: a KV field holding
``1.50`` reached the variable as ``1.5``, ``1e400`` as ``inf``, and a field of 5,000 digits made
the whole answer "not JSON" (no data). This adapter parses with :func:`jobsecrets.jsonsafe.loads`
instead: a number keeps its text (:class:`~jobsecrets.jsonsafe.Number`), an ordinary integer (a
TTL, a version) is still an ``int``.

Imported when the client is built, never at module level of the backend: it pulls hvac in.
"""

from __future__ import annotations

__all__ = ["ExactJSONAdapter"]

from typing import Any

import hvac.adapters

from ... import jsonsafe


class ExactJSONAdapter(hvac.adapters.JSONAdapter):  # type: ignore[misc]  # hvac is untyped
    """hvac's ``JSONAdapter`` (a dict for a 200 answer with a JSON body, else the response),
    reading numbers exactly. An answer nested too deeply to read raises
    :class:`~jobsecrets.jsonsafe.NestedTooDeeply` (hvac's parser raised ``RecursionError``)."""

    def request(self, *args: Any, **kwargs: Any) -> Any:
        """Send as hvac's ``RawAdapter`` does; parse a 200 answer's JSON body."""
        response = hvac.adapters.RawAdapter.request(self, *args, **kwargs)
        if response.status_code == 200:
            # What Response.json() reads: the text in the charset the answer names (UTF-8
            # for application/json), else the bytes, whose UTF flavour json detects.
            body = response.text if response.encoding else response.content
            try:
                return jsonsafe.loads(body)
            except jsonsafe.NestedTooDeeply:
                raise
            except ValueError:
                pass
        return response
