"""botocore's data loader, without listing every service it has a model for on each client.

Before it loads a service's model, botocore's ``Loader.load_service_model`` checks the service
exists by listing every service it knows (``list_available_services``: ``os.listdir`` of ~445
model directories and a ``stat`` in each, once per model type). A Secrets Manager client after an
STS one loads two types, so that is ~900 directory listings and ~2,700 ``stat`` calls, 18-21 ms of
a 2-core runner, on the AWS side's critical path, to learn that ``sts`` and ``secretsmanager``
exist. :class:`KnownServicesLoader` answers "is this service known?" by looking in that service's
own directories only (what botocore's own ``list_api_versions`` does), and gives the whole list, as
botocore builds it, to whoever iterates it (an unknown service's error message names them all).

Imported only where a botocore session is made: it imports botocore.
"""

from __future__ import annotations

__all__ = ["KnownServicesLoader", "register_loader"]

import os
import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

from botocore.exceptions import DataNotFoundError
from botocore.loaders import Loader

if TYPE_CHECKING:
    import botocore.session

#: A service name as botocore's model directories spell them; any other name (a path, say) is
#: looked up in the full list instead.
_SERVICE_NAME = re.compile(r"[a-z0-9][a-z0-9-]*\Z")


class _ServiceNames(Sequence[str]):
    """The services that have a model of one type: membership checked per service, the sorted
    list (botocore's own) built only if something iterates or indexes it."""

    def __init__(self, loader: KnownServicesLoader, type_name: str) -> None:
        self._loader = loader
        self._type_name = type_name
        self._all: list[str] | None = None

    def _names(self) -> list[str]:
        if self._all is None:
            self._all = self._loader.all_services(self._type_name)
        return self._all

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str) or not _SERVICE_NAME.fullmatch(name):
            return name in self._names()
        try:
            self._loader.list_api_versions(name, self._type_name)
        except DataNotFoundError:
            return False
        return True

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return self._names()[index]

    def __len__(self) -> int:
        return len(self._names())

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())


class KnownServicesLoader(Loader):
    """botocore's ``Loader`` whose service list checks one service without listing them all."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Not botocore's instance_cache: its key is the method's name, which the full listing
        # (the base class's method, cached under that name) uses.
        self._service_names: dict[str, _ServiceNames] = {}

    # A Sequence, not botocore's list: what load_service_model does with it (``in``, and ``join``
    # for its error) a Sequence does the same way, without the listing until it is iterated.
    def list_available_services(self, type_name: str) -> Sequence[str]:  # type: ignore[override]
        """The services with a ``type_name`` model, as botocore's list, checked lazily."""
        names = self._service_names.get(type_name)
        if names is None:
            names = self._service_names[type_name] = _ServiceNames(self, type_name)
        return names

    def all_services(self, type_name: str) -> list[str]:
        """Every service with a ``type_name`` model, sorted: botocore's own listing."""
        names: list[str] = Loader.list_available_services(self, type_name)
        return names


def register_loader(session: botocore.session.Session) -> None:
    """Make ``session``'s data loader a :class:`KnownServicesLoader`, created when first used.

    Its search path is botocore's (``create_loader``): the ``data_path`` setting
    (``AWS_DATA_PATH``), its entries expanded, before the models botocore ships. Read when the
    loader is first needed, as botocore does, so nothing is read from the configuration here.
    """

    def create() -> Any:
        setting = session.get_config_variable("data_path")
        if setting is None:
            return KnownServicesLoader()
        paths = [os.path.expanduser(os.path.expandvars(p)) for p in setting.split(os.pathsep)]
        return KnownServicesLoader(extra_search_paths=paths)

    session.lazy_register_component("data_loader", create)
