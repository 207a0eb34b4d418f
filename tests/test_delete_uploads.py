"""Deleting a search deletes the archive it uploaded on the web form, and nothing else: not an
archive another search also uses, never an archive given on the server with run_search --archive."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from searches import services
from searches.models import Search, Source

from .hardening_helpers import small_archive

pytestmark = pytest.mark.django_db


def upload(client, tmp_path, name: str = "tweets.jsonl") -> Search:
    """An archive uploaded on the home page's form, as its owner does it."""
    body = small_archive(tmp_path / name).read_bytes()
    form = {"term": "", "source": "archive", "archive": SimpleUploadedFile(name, body)}
    response = client.post(reverse("home"), form)
    assert response.status_code == 302
    search = Search.objects.order_by("-pk").first()
    assert Path(search.archive_path).read_bytes() == body
    return search


def kept_uploads(data_dir: Path) -> list[str]:
    uploads = data_dir / "uploads"
    return sorted(str(path.relative_to(uploads)) for path in uploads.rglob("*")) if uploads.exists() else []


def test_a_search_uploaded_on_the_form_and_deleted_from_its_page_leaves_nothing_in_uploads(
    owner_client, data_dir, tmp_path
):
    search = upload(owner_client, tmp_path)
    assert kept_uploads(data_dir)

    response = owner_client.post(reverse("search_delete", args=[search.pk]), follow=True)

    assert f"Deleted {search}" in response.content.decode()
    assert not Search.objects.filter(pk=search.pk).exists()
    assert kept_uploads(data_dir) == []


@pytest.mark.parametrize("how", ["the delete action", "the delete page"])
def test_a_search_uploaded_on_the_form_and_deleted_in_the_admin_leaves_nothing_in_uploads(
    how, client, owner, staff_user, data_dir, tmp_path
):
    client.force_login(owner)
    search = upload(client, tmp_path)
    client.force_login(staff_user)

    if how == "the delete action":
        form = {"action": "delete_with_files", "_selected_action": [search.pk], "delete": "yes"}  # confirmed
        client.post(reverse("admin:searches_search_changelist"), form, follow=True)
    else:
        client.post(reverse("admin:searches_search_delete", args=[search.pk]), {"post": "yes"}, follow=True)

    assert not Search.objects.filter(pk=search.pk).exists()
    assert kept_uploads(data_dir) == []


def test_an_uploaded_archive_another_search_also_uses_stays_until_that_one_is_deleted(
    owner_client, owner, data_dir, tmp_path
):
    first = upload(owner_client, tmp_path)
    archive = Path(first.archive_path)
    body = archive.read_bytes()
    # The same file imported again: e.g. with run_search --archive, or the admin's add form.
    second = services.create_search(owner=owner, source=Source.ARCHIVE, archive_path=str(archive), enqueue=False)

    owner_client.post(reverse("search_delete", args=[first.pk]))
    assert archive.read_bytes() == body

    owner_client.post(reverse("search_delete", args=[second.pk]))
    assert kept_uploads(data_dir) == []


def test_an_archive_given_on_the_server_is_never_deleted(data_dir, tmp_path, empty_queue):
    server_files = tmp_path / "server"
    server_files.mkdir()
    single = small_archive(server_files / "one.jsonl")
    first, second = small_archive(server_files / "a.jsonl", 2), small_archive(server_files / "b.jsonl", 4)
    # One inside the data folder, beside the uploads, but not one of them.
    inside = small_archive(data_dir / "kept-here.jsonl")
    before = {path: path.read_bytes() for path in (single, first, second, inside)}

    ids = []
    for archives in ([single], [first, second], [inside]):
        out = StringIO()
        options = [arg for path in archives for arg in ("--archive", str(path))]
        call_command("run_search", *options, "--enqueue", stdout=out)
        ids.append(int(out.getvalue().split()[-1]))
    for search in Search.objects.filter(pk__in=ids):
        services.delete_search(search)

    assert not Search.objects.exists()
    assert {path: path.read_bytes() for path in before} == before
    # The folder of links that `--archive A --archive B` made in uploads/ went with its search.
    assert kept_uploads(data_dir) == []
