"""A process whose DNFLOW_DATA_DIR is not the one the others share (a second machine set up by
hand): a finished run's folder is then not where it looks. The pages, the API and a worker starting
say so, instead of showing the run as an empty collection."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.web_helpers import make_search
from tests.worker_helpers import manage


def elsewhere(settings, tmp_path):
    """This process now looks in another data folder than the one the search's run was written to."""
    other = tmp_path / "another-machine-data"
    other.mkdir()
    settings.DNFLOW_DATA_DIR = other
    return other


@pytest.mark.django_db
def test_a_finished_run_whose_folder_is_not_here_is_said_missing_not_shown_empty(
    settings, tmp_path, owner_client, owner, admin_client
):
    search = make_search(owner, published=True)
    assert "Top hashtags" in owner_client.get(reverse("search_summary", args=[search.pk])).content.decode()
    other = elsewhere(settings, tmp_path)

    for client in (owner_client, admin_client):
        for url in (reverse("search_summary", args=[search.pk]), search.get_absolute_url()):
            page = client.get(url).content.decode()
            assert "but its files are not on this server, so its results cannot be shown" in page
            assert "None in this collection" not in page and "No files yet" not in page
    staff_page = admin_client.get(reverse("search_summary", args=[search.pk])).content.decode()
    assert str(other / search.results_run.folder) in staff_page and "DNFLOW_DATA_DIR" in staff_page
    owner_page = owner_client.get(reverse("search_summary", args=[search.pk])).content.decode()
    assert str(other) not in owner_page, "where the server keeps its data is the staff's to know"

    counts = owner_client.get(reverse("api_search_counts", args=[search.pk, "hashtags"]))
    assert counts.status_code == 503 and "not on this server" in counts.json()["error"]
    assert owner_client.get(reverse("api_search_detail", args=[search.pk])).json()["files_missing"] is True


@pytest.mark.django_db(transaction=True)
def test_a_worker_names_its_data_folder_and_warns_when_the_finished_runs_are_not_in_it(settings, tmp_path, owner):
    data = settings.DNFLOW_DATA_DIR
    make_search(owner)

    same = manage(data, "rqworker", "--burst")
    assert same.returncode == 0, same.stderr
    assert f"Data folder: {data}; Luigi scheduler: local, one in each job" in same.stdout
    assert "Warning" not in same.stderr

    other = tmp_path / "another-machine-data"
    apart = manage(other, "rqworker", "--burst", DNFLOW_LUIGI_SCHEDULER_URL="http://dnflow:secret@127.0.0.1:8082")
    assert apart.returncode == 0, apart.stderr
    assert f"Data folder: {other}; Luigi scheduler: http://127.0.0.1:8082" in apart.stdout
    assert "secret" not in apart.stdout + apart.stderr
    assert "Warning: none of the 1 newest finished runs has its folder in DNFLOW_DATA_DIR" in apart.stderr


@pytest.mark.django_db
def test_deleting_a_search_whose_folders_are_not_here_says_they_were_left(settings, tmp_path, owner_client, owner):
    search = make_search(owner)
    folder = search.results_dir
    elsewhere(settings, tmp_path)

    page = owner_client.post(reverse("search_delete", args=[search.pk]), follow=True).content.decode()

    assert "Deleted #" in page and "and its files" not in page
    assert f"the folder {folder.name} was not in this server&#x27;s DNFLOW_DATA_DIR" in page
    assert "remove them there" in page
    assert folder.is_dir(), "another machine's files are not this server's to reach"
