"""KnownServicesLoader: botocore's answers about service models, without listing every service."""

from __future__ import annotations

import json
from pathlib import Path

import botocore.session
import pytest
from botocore.exceptions import UnknownServiceError
from botocore.loaders import Loader

from jobsecrets.backends.aws.backend import _new_session
from jobsecrets.backends.aws.models import KnownServicesLoader, register_loader

TYPES = ("service-2", "endpoint-rule-set-1", "paginators-1", "waiters-2")


@pytest.mark.parametrize("type_name", TYPES)
def test_membership_is_botocores_for_every_service_and_odd_names(type_name: str) -> None:
    botocore_names = Loader().list_available_services(type_name)
    ours = KnownServicesLoader().list_available_services(type_name)
    # Every service botocore ships a model directory for, whatever the type, and names that are
    # not services: each answered as botocore's own list answers it.
    candidates = set(Loader().list_available_services("service-2")) | {
        "no-such-service",
        "",
        "..",
        ".",
        "../botocore",
        "sts/../secretsmanager",
        "STS",
        "sts ",
        "-",
    }
    expected = {name for name in candidates if name in botocore_names}
    assert {name for name in candidates if name in ours} == expected
    # Both answers occur, so the comparison can fail either way.
    assert expected and expected != candidates
    assert 42 not in ours


def test_iterating_gives_botocores_sorted_list() -> None:
    ours = KnownServicesLoader().list_available_services("service-2")
    theirs = Loader().list_available_services("service-2")
    assert list(ours) == theirs
    assert len(ours) == len(theirs) > 300
    assert ours[0] == theirs[0] and list(ours[-3:]) == theirs[-3:]


def test_a_client_is_made_without_listing_the_model_directories(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listed: list[str] = []
    original = Loader.list_available_services

    def counting(self: Loader, type_name: str) -> list[str]:
        listed.append(type_name)
        names: list[str] = original(self, type_name)
        return names

    monkeypatch.setattr(Loader, "list_available_services", counting)
    session = _new_session(region="us-east-1", credentials=("AKIDEXAMPLE", "secret", None))
    for service in ("sts", "secretsmanager"):
        session.create_client(service, endpoint_url="http://127.0.0.1:9")
    assert isinstance(session.get_component("data_loader"), KnownServicesLoader)
    assert listed == []

    # Without it (botocore's own loader), the same two clients list every service per model type.
    plain = botocore.session.Session()
    plain.set_config_variable("region", "us-east-1")
    plain.set_credentials("AKIDEXAMPLE", "secret")
    for service in ("sts", "secretsmanager"):
        plain.create_client(service, endpoint_url="http://127.0.0.1:9")
    assert listed != []


def test_an_unknown_service_is_botocores_error_naming_the_known_ones() -> None:
    session = botocore.session.Session()
    register_loader(session)
    with pytest.raises(UnknownServiceError) as caught:
        session.create_client("no-such-service", region_name="us-east-1")
    assert "secretsmanager" in str(caught.value) and "sts" in str(caught.value)


def test_aws_data_path_models_are_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A model directory named by AWS_DATA_PATH (botocore's data_path) is searched first."""
    model = {
        "version": "2.0",
        "metadata": {
            "apiVersion": "2024-01-01",
            "endpointPrefix": "madeup",
            "protocol": "json",
            "jsonVersion": "1.1",
            "serviceId": "Madeup",
            "signatureVersion": "v4",
            "targetPrefix": "Madeup",
            "uid": "madeup-2024-01-01",
        },
        "operations": {},
        "shapes": {},
    }
    directory = tmp_path / "models" / "madeup" / "2024-01-01"
    directory.mkdir(parents=True)
    (directory / "service-2.json").write_text(json.dumps(model))
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path / "models"))
    session = botocore.session.Session()
    register_loader(session)
    loader = session.get_component("data_loader")
    assert isinstance(loader, KnownServicesLoader)
    assert "madeup" in loader.list_available_services("service-2")
    assert session.get_service_model("madeup").service_name == "madeup"
    # botocore's own loader agrees.
    plain = botocore.session.Session()
    assert "madeup" in plain.get_component("data_loader").list_available_services("service-2")
