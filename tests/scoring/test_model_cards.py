"""Model cards: every signed-in user can read how far the scores were checked."""
from __future__ import annotations

import re

import pytest
from django.test import Client
from rest_framework.test import APIClient

from scoring import services
from scoring.models import ModelVersion
from scoring.selectors import model_card
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_card_of_the_default_weights_shows_their_own_figures() -> None:
    version = services.model_version_register(activate=True)
    cv = version.metadata["cv"]
    card = model_card(version=version)
    assert card["active"] and card["training_patients"] == 42 and card["training_clips"] == 235
    metrics = {m["key"]: m for m in card["cv"]["metrics"]}
    assert list(metrics)[:3] == ["accuracy", "within1", "spearman"]
    assert metrics["accuracy"]["mean"] == cv["accuracy"]["mean"] and len(metrics["qwk"]["per_seed"]) == 3
    assert "ece" in metrics and "brier" in metrics
    assert [row["score"] for row in card["confusion"]] == ["0", "1", "2", "3"]
    assert sum(sum(row["counts"]) for row in card["confusion"]) == 235
    assert card["per_class"][0]["sensitivity"] == cv["sensitivity_seed0"][0]
    assert card["domain_check"]["components"] == 10

    web = Client()
    web.force_login(UserFactory())
    html = web.get("/models/").content.decode()
    assert version.version in html and "active" in html
    row = re.search(r'data-metric="accuracy"><td>[^<]+</td><td class="num">([0-9.]+)</td>', html)
    assert row is not None and float(row.group(1)) == pytest.approx(cv["accuracy"]["mean"], abs=5e-4)
    assert f"above {version.metadata['domain_check']['threshold']:.2f}" in html


def test_weights_without_validation_say_so() -> None:
    ModelVersion.objects.create(version="bare-1", weights="/tmp/bare.pt", metadata={})
    card = model_card(version=ModelVersion.objects.get(version="bare-1"))
    assert card["cv"] is None and card["domain_check"] is None and card["confusion"] is None
    web = Client()
    web.force_login(UserFactory())
    html = web.get("/models/").content.decode()
    assert "carry no cross-validation" in html and "no out-of-domain check" in html


def test_api_lists_cards_and_needs_a_login() -> None:
    services.model_version_register(activate=True)
    ModelVersion.objects.create(version="older-1", weights="x", metadata={})
    assert APIClient().get("/api/v1/models/").status_code in (401, 403)
    assert Client().get("/models/").status_code == 302  # to the login page
    api = APIClient()
    api.force_authenticate(UserFactory())
    cards = api.get("/api/v1/models/").json()
    assert [c["active"] for c in cards] == [True, False] and cards[1]["version"] == "older-1"
    assert cards[0]["cv"]["patients"] == 42 and isinstance(cards[0]["registered_at"], str)
