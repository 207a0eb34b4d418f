"""Shared test fixtures: a private data folder per test, the real recorded fixtures, users."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent
# Real recorded X API data (see its README): test fixtures only, never published, so they are not
# in this repository. They sit in the team's shared folder beside the checkout, or where
# DNFLOW_REAL_DATA points.
REAL_DATA = Path(os.environ.get("DNFLOW_REAL_DATA") or PROJECT_DIR.parent / "shared" / "data" / "real")


def pytest_sessionstart(session) -> None:
    if not (REAL_DATA / "v2-pages-twarc-network.jsonl").is_file():
        raise pytest.UsageError(
            f"The recorded X API fixtures are missing from {REAL_DATA}. Put the team's shared/ folder "
            "beside this checkout, or set DNFLOW_REAL_DATA to the folder that holds them."
        )


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path) -> Path:
    """Every test writes its outputs into its own folder, never the project's data/."""
    path = tmp_path / "data"
    path.mkdir()
    settings.DNFLOW_DATA_DIR = path
    return path


@pytest.fixture
def real_data() -> Path:
    if not REAL_DATA.is_dir():
        pytest.fail(f"The real fixtures are missing: expected them in {REAL_DATA}")
    return REAL_DATA


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_user("alice", password="alice-password-1")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user("bob", password="bob-password-1")


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user("carol", password="carol-password-1", is_staff=True, is_superuser=True)
