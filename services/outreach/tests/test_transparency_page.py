"""The residents' transparency page shows the latest record `proactive transparency`
wrote, from a configurable file, inside the service's own layout."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from outreach.entrypoints.transparency import REPOSITORY_RECORD, TransparencySettings

pytestmark = pytest.mark.integration
RECORD = """<!DOCTYPE html><html><head><title>x</title></head><body>
<!-- record:start -->
<h1 class="govuk-heading-xl">Proactive Support: algorithmic transparency record</h1>
<p class="govuk-body">Version one.</p>
<!-- record:end -->
</body></html>
"""


@pytest.fixture
def record_at(offline_app, tmp_path: Path):
    """Point the page at a record file for one test."""
    before = getattr(offline_app.state, "transparency_settings", None)

    def use(text: str | None) -> Path:
        path = tmp_path / "record.html"
        if text is not None:
            path.write_text(text)
            path.with_suffix(".json").write_text('{"tier_1": {"name": "Proactive Support"}}')
        offline_app.state.transparency_settings = TransparencySettings(
            transparency_record_path=path
        )
        return path

    yield use
    offline_app.state.transparency_settings = before


def test_the_page_shows_the_records_body_in_the_residents_layout(offline_app, record_at) -> None:
    record_at(RECORD)
    page = TestClient(offline_app).get("/transparency")
    assert page.status_code == 200
    assert "Version one." in page.text
    assert "<!DOCTYPE html><html><head><title>x" not in page.text  # only the marked body
    assert "How we use your information" in page.text  # the residents' footer
    assert TestClient(offline_app).get("/transparency.json").json()["tier_1"]["name"] == (
        "Proactive Support"
    )


def test_a_new_record_shows_at_once_without_a_restart(offline_app, record_at) -> None:
    path = record_at(RECORD)
    path.write_text(RECORD.replace("Version one.", "Version two."))
    assert "Version two." in TestClient(offline_app).get("/transparency").text


def test_with_no_record_published_the_page_says_so(offline_app, record_at) -> None:
    record_at(None)
    page = TestClient(offline_app).get("/transparency")
    assert page.status_code == 404
    assert "not published our transparency record" in page.text
    assert TestClient(offline_app).get("/transparency.json").status_code == 404


def test_how_we_use_your_information_links_to_the_record_by_default(offline_app) -> None:
    page = TestClient(offline_app).get("/how-we-use-your-information")
    assert 'href="/transparency"' in page.text


def test_by_default_the_page_reads_the_record_the_command_writes_in_the_repository() -> None:
    assert TransparencySettings().transparency_record_path == REPOSITORY_RECORD
    assert REPOSITORY_RECORD.is_file()
