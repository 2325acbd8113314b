"""docker-compose.yml is valid YAML with the services, health checks and GPU reservation we document."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_and_health_checks() -> None:
    services = _compose()["services"]
    assert set(services) == {"web", "worker", "db", "redis"}
    for name, service in services.items():
        assert "test" in service["healthcheck"], name


def test_web_serves_asgi_and_worker_consumes_both_queues() -> None:
    services = _compose()["services"]
    assert "daphne" in services["web"]["command"] and "lusweb.asgi:application" in services["web"]["command"]
    assert services["worker"]["command"].startswith("celery -A lusweb worker -Q gpu,cpu")


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


def test_docker_compose_config_when_client_present(tmp_path: Path) -> None:
    """`docker compose config` validates the file fully when the client exists (no engine needed)."""
    docker = shutil.which("docker")
    if docker is None:
        return
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
    if probe.returncode != 0:
        return
    env = tmp_path / ".env"
    env.write_text((ROOT / ".env.example").read_text())
    out = subprocess.run(
        [docker, "compose", "-f", str(ROOT / "docker-compose.yml"), "--env-file", str(env), "--project-directory",
         str(ROOT), "config", "--quiet"], capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr
