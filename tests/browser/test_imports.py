"""An admin moves a messy customer sheet in through the browser: uploads it, fixes a
column's mapping, previews, starts the import, watches the progress bar until the worker
has finished, downloads the error report and undoes the import."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from crm.models import Customer, FieldType
from imports import tasks
from imports.models import ImportJob, ImportStatus
from imports.readers import read_table

from ..factories import UserFactory, custom_field
from ..test_background import celery_worker
from .conftest import loads, screenshot, sign_in

pytestmark = pytest.mark.browser

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


@pytest.fixture
def admin(transactional_db):
    user = UserFactory(username="boss", name="系统管理员", is_superuser=True, is_staff=True)
    user.set_password("demo1234")
    user.save()
    # Labelled so that the sheet's header "身份证号" does not find it by itself.
    custom_field("id_number", FieldType.TEXT, label="证件号码", max_length=18)
    return user


def upload_and_map(page) -> None:
    sign_in(page, "boss")
    with loads(page):
        page.goto("/imports/?type=customer")
    page.locator("#id_file").set_input_files(SAMPLES / "customers_messy.xlsx")
    with loads(page, re.compile(r"/imports/\d+/$")):
        page.get_by_test_id("upload").click()
    expect(page.get_by_test_id("row-count")).to_contain_text("517")
    # The one column the headers did not map: the ID numbers, to the 证件号码 field.
    row = page.get_by_test_id("column-row").filter(has_text="身份证号")
    expect(row.locator("select")).to_have_value("")
    row.locator("select").select_option("cf_id_number")
    page.locator("#id_create_missing_items").check()


@pytest.mark.parametrize("page", ["desktop"], indirect=True)
def test_upload_map_preview_run_watch_download_and_undo(page, admin, tmp_path):
    upload_and_map(page)
    screenshot(page, "import-mapping")
    with loads(page, re.compile(r"/preview/$")):
        page.get_by_test_id("to-preview").click()
    created = int(page.get_by_test_id("count-create").inner_text())
    errors = int(page.get_by_test_id("count-error").inner_text())
    assert created > 400 and errors > 0
    expect(page.get_by_test_id("preview-rows")).to_contain_text("189 0060 2677")
    assert not Customer.objects.exists()  # the preview wrote nothing
    screenshot(page, "import-preview")

    # Started with no worker yet: the page shows the queued job's progress bar...
    with loads(page, re.compile(r"/imports/\d+/$")):
        page.get_by_test_id("start-import").click()
    expect(page.get_by_test_id("progress")).to_be_visible()
    expect(page.get_by_test_id("progress-poller")).to_be_visible()
    job = ImportJob.objects.get()
    assert job.status == ImportStatus.QUEUED, (job.status, job.message)
    # ...which a worker then moves to the end; the finished page shows the counts.
    (tmp_path / "worker").mkdir()
    with celery_worker(tmp_path / "worker"):
        # A worker starting on the test queue purges it: hand it the job again (a
        # second message for one job is harmless: one worker claims it).
        tasks.run_import.delay(job.pk)
        expect(page.get_by_test_id("created-count")).to_have_text(str(created), timeout=90_000)
        expect(page.get_by_test_id("error-count")).to_have_text(str(errors))
        assert Customer.objects.count() == created
        screenshot(page, "import-result")

        with page.expect_download() as download:
            page.get_by_test_id("error-report").click()
        with open(download.value.path(), "rb") as handle:
            report = read_table(handle, name="errors.xlsx")
        assert report.headers[-1] == "错误" and len(report.rows) == errors

        # The undo runs in the background too: the page waits for it, then says what
        # was taken back.
        with loads(page, re.compile(r"/undo/$")):
            page.get_by_test_id("undo").click()
        expect(page.get_by_test_id("undo-plan")).to_contain_text(str(created))
        with loads(page, re.compile(r"/imports/\d+/$")):
            page.get_by_test_id("confirm-undo").click()
        expect(page.get_by_test_id("undo-summary")).to_be_visible(timeout=90_000)
    assert not Customer.objects.exists()


@pytest.mark.parametrize("page", ["phone"], indirect=True)
def test_the_mapping_and_preview_on_a_phone(page, admin):
    upload_and_map(page)
    screenshot(page, "import-mapping")
    with loads(page, re.compile(r"/preview/$")):
        page.get_by_test_id("to-preview").click()
    expect(page.get_by_test_id("preview-counts")).to_be_visible()
    screenshot(page, "import-preview")
