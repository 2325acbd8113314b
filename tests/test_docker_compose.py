"""docker-compose.yml follows the Compose Specification and has the services, health checks and
GPU reservation we document."""
from __future__ import annotations

import copy
import importlib.resources
import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema.validators import validator_for

from tests.conftest import require

ROOT = Path(__file__).resolve().parent.parent


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_and_health_checks() -> None:
    services = _compose()["services"]
    assert set(services) == {"web", "worker", "dicom", "db", "redis"}
    for name, service in services.items():
        assert "test" in service["healthcheck"], name


def test_web_serves_asgi_and_worker_consumes_both_queues() -> None:
    services = _compose()["services"]
    web = services["web"]["command"]
    # Several server processes: one slow request must not hold up every other user.
    assert "uvicorn lusweb.asgi:application" in web and "--workers $${LUSWEB_WEB_WORKERS:-4}" in web
    assert services["worker"]["command"].startswith("celery -A lusweb worker -Q ingest,gpu,cpu")


def test_dicom_receiver_runs_the_scp_on_the_app_image() -> None:
    """The DICOM receiver (issue 18): the same image, settings and media as web and worker, port 11112."""
    services = _compose()["services"]
    dicom = services["dicom"]
    assert dicom["command"] == "python manage.py lus_dicom_scp"
    assert dicom["image"] == services["web"]["image"] == services["worker"]["image"]
    assert dicom["ports"] == ["${LUSWEB_DICOM_PORT:-11112}:${LUSWEB_DICOM_PORT:-11112}"]
    assert "media:/data/media" in dicom["volumes"] and dicom["env_file"] == ".env"
    assert dicom["environment"]["LUSWEB_REDIS_URL"] == "redis://redis:6379/0"
    assert dicom["environment"]["DJANGO_SETTINGS_MODULE"] == "lusweb.settings.production"
    assert dicom["depends_on"]["db"]["condition"] == "service_healthy"


def test_worker_reserves_an_nvidia_gpu() -> None:
    devices = _compose()["services"]["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]


def test_media_volume_and_env_file() -> None:
    compose = _compose()
    assert "media" in compose["volumes"]
    for name in ("web", "worker"):
        service = compose["services"][name]
        assert "media:/data/media" in service["volumes"]
        assert service["env_file"] == ".env"
        assert service["environment"]["LUSWEB_REDIS_URL"] == "redis://redis:6379/0"
        assert service["environment"]["DJANGO_SETTINGS_MODULE"] == "lusweb.settings.production"
    example = (ROOT / ".env.example").read_text()
    assert "LUSWEB_SECRET_KEY=" in example and "POSTGRES_PASSWORD=" in example


def _compose_spec() -> dict[str, Any]:
    """The Compose Specification's JSON schema, as shipped inside check-jsonschema (a dev dependency)."""
    require(importlib.util.find_spec("check_jsonschema") is not None,
            "check-jsonschema (a dev dependency: it ships the Compose Specification schema) is not installed")
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads(vendor.joinpath("compose-spec.json").read_text())  # type: ignore[no-any-return]


def _spec_errors(compose: dict[str, Any]) -> list[str]:
    schema = _compose_spec()
    validator = validator_for(schema)  # the draft the schema declares in its own $schema
    validator.check_schema(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(schema).iter_errors(compose)]


def test_docker_compose_follows_the_compose_specification() -> None:
    """What ``docker compose config`` checks without Docker: the file against the Compose
    Specification (services, health checks, the GPU reservation, volumes, env files)."""
    assert _spec_errors(_compose()) == []


@pytest.mark.parametrize("break_it, words", [
    (lambda c: c["services"]["web"].update(imagee="lusweb:latest"), "'imagee' was unexpected"),
    (lambda c: c["services"]["web"].update(ports=8000), "8000 is not of type 'array'"),
    (lambda c: c["services"]["worker"]["deploy"]["resources"]["reservations"].update(devices="gpu"),
     "'gpu' is not of type 'array'"),
])
def test_a_broken_compose_file_fails_the_specification(break_it: Callable[[dict[str, Any]], None], words: str) -> None:
    compose = copy.deepcopy(_compose())
    break_it(compose)
    errors = _spec_errors(compose)
    assert any(words in e for e in errors), errors
