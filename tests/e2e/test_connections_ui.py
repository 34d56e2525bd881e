"""The `neo` connection made in Airflow's own Connections UI, in a real browser: a real
`airflow api-server` (simple auth manager, SQLite, the provider installed) driven in Debian's
headless Chromium by Playwright, against the simulator. Screenshots of each filled form and
each Test result land in .test-artifacts/connections-ui/."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import Locator, Page, expect

from airflow_provider_neo.connection import FORM_FIELDS, UI_FIELD_BEHAVIOUR
from deploy.servers import free_port
from neo_simulator.auth import (
    DEFAULT_OAUTH_KEY,
    DEFAULT_OAUTH_SECRET,
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
)
from scripts.chromium import chromium
from tests.harness import TIMEZONE, RunningSimulator, basic_auth, start_simulator

REPOSITORY = Path(__file__).resolve().parents[2]
ARTIFACTS = REPOSITORY / ".test-artifacts" / "connections-ui"
ADMIN_PASSWORD = "admin-ui-test"
WRONG_PASSWORD = "not-the-password-4711"


@pytest.fixture(scope="module")
def neo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSimulator]:
    sim = start_simulator(tmp_path_factory.mktemp("ui-simulator"), customers=20)
    try:
        yield sim
    finally:
        sim.process.stop()


@pytest.fixture(scope="module")
def airflow_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real api-server on a free loopback port; yields its URL."""
    home = tmp_path_factory.mktemp("airflow-ui-home")
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({"admin": ADMIN_PASSWORD}))
    (home / "dags").mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__"))},
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run(
        [airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=180
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (home / "api-server.log").open("w")
    server = subprocess.Popen(
        [airflow, "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, (home / "api-server.log").read_text()[-3000:]
            try:
                if requests.get(f"{url}/api/v2/monitor/health", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "the api-server did not answer in 120 s"
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


@pytest.fixture(scope="module")
def page(airflow_ui: str) -> Iterator[Page]:
    """One signed-in browser page for the module."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1400, "height": 1100})
        context.set_default_timeout(20_000)
        page = context.new_page()
        page.goto(f"{airflow_ui}/")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(ADMIN_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{airflow_ui}/")
        yield page


def _open_connections(page: Page, airflow_ui: str) -> None:
    # Admin > Connections, as a user gets there.
    page.goto(f"{airflow_ui}/")
    page.get_by_role("button", name="Admin").click()
    page.get_by_role("menuitem", name="Connections").click()
    page.wait_for_url(f"{airflow_ui}/connections")


def _choose(dialog: Locator, label: str, option: str) -> None:
    """Pick `option` in one of the form's searchable selects."""
    select = dialog.get_by_label(label)
    select.focus()
    select.fill(option)
    select.press("Enter")


def _show_extra_fields(dialog: Locator) -> None:
    section = dialog.get_by_role("button", name="Extra Fields", exact=True)
    if section.get_attribute("aria-expanded") != "true":
        section.click()
    expect(section).to_have_attribute("aria-expanded", "true")


def _shoot_form(page: Page, dialog: Locator, name: str) -> None:
    """A screenshot of the whole dialog: the page made tall enough that nothing scrolls."""
    viewport = page.viewport_size
    page.set_viewport_size({"width": 1400, "height": 2600})
    dialog.screenshot(path=ARTIFACTS / name)
    if viewport:
        page.set_viewport_size(viewport)


def _extra(dialog: Locator, name: str) -> Locator:
    return dialog.locator(f'[name="element_{name}"]')


def _add_connection(
    page: Page, airflow_ui: str, conn_id: str, neo: RunningSimulator, shots: str, **fields: str
) -> Locator:
    """Fill Add Connection for a `neo` connection to `neo`; returns the dialog, unsaved."""
    _open_connections(page, airflow_ui)
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    dialog.locator('[name="connection_id"]').fill(conn_id)
    _choose(dialog, "Connection Type", "Capillary Neo")
    expect(dialog.get_by_text("Cluster host", exact=True)).to_be_visible()
    parts = urlsplit(neo.url)
    dialog.locator('[name="host"]').fill(str(parts.hostname))
    dialog.locator('[name="port"]').fill(str(parts.port))
    dialog.locator('[name="schema"]').fill("http")
    if "login" in fields:
        dialog.locator('[name="login"]').fill(fields.pop("login"))
        dialog.locator('[name="password"]').fill(fields.pop("password"))
    _shoot_form(page, dialog, f"{shots}-filled-standard-fields.png")
    _show_extra_fields(dialog)
    if fields.pop("auth_type", "basic") == "oauth":
        _choose(dialog, "Auth type", "oauth")
    for name, value in {"timezone": TIMEZONE, **fields}.items():
        _extra(dialog, name).fill(value)
    _shoot_form(page, dialog, f"{shots}-filled-extra-fields.png")
    return dialog


def _save(page: Page, dialog: Locator, conn_id: str) -> None:
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("row").filter(has_text=conn_id)).to_be_visible()


def _test(page: Page, conn_id: str, shot: str) -> str:
    """Press the row's Test button; returns the text of the result it shows."""
    results = page.get_by_role("status").filter(has_text="Test Connection")
    # An earlier Test's result must not be read for this one's.
    expect(results).to_have_count(0, timeout=30_000)
    row = page.get_by_role("row").filter(has_text=conn_id)
    row.get_by_role("button", name="Test Connection").click()
    result = results.first
    expect(result).to_be_visible()
    expect(results).to_have_count(1)
    text = result.inner_text()
    page.wait_for_timeout(1_500)  # the toast slides in
    page.screenshot(path=ARTIFACTS / shot)
    return text


def test_form_shows_the_neo_labels_and_hints(page: Page, airflow_ui: str) -> None:
    _open_connections(page, airflow_ui)
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    _choose(dialog, "Connection Type", "Capillary Neo")
    for label in UI_FIELD_BEHAVIOUR["relabeling"].values():
        expect(dialog.get_by_text(label, exact=True)).to_be_visible()
    _show_extra_fields(dialog)
    for f in FORM_FIELDS:
        expect(dialog.locator("label").filter(has_text=f.label).first).to_be_visible()
    for name, placeholder in UI_FIELD_BEHAVIOUR["placeholders"].items():
        expect(dialog.locator(f'[name="{name}"]')).to_have_attribute("placeholder", placeholder)
    # Not a masked value: the switch renamed from password_is_md5 starts off.
    expect(_extra(dialog, "md5_hashed_credential")).not_to_be_checked()
    for f in FORM_FIELDS:
        if f.example:
            field = _extra(dialog, f.name)
            options = dialog.locator(f"datalist#{field.get_attribute('list')} option")
            expect(options).to_have_count(1)
            expect(options.first).to_have_attribute("value", f.example)
            expect(dialog.get_by_text(f"For example: {f.example}")).to_be_visible()
    _shoot_form(page, dialog, "empty-form-extra-fields.png")
    dialog.get_by_role("button", name="Close").click()


def test_basic_auth_connection_is_saved_tests_and_keeps_its_secrets_on_edit(
    page: Page, airflow_ui: str, neo: RunningSimulator
) -> None:
    conn_id = "neo_ui_basic"
    dialog = _add_connection(
        page, airflow_ui, conn_id, neo, "basic", login=DEFAULT_USERNAME, password=DEFAULT_PASSWORD,
        test_variant_id="7a67e565-ad2a-498a-937b-fac8a63e828c",
    )  # fmt: skip
    _save(page, dialog, conn_id)
    result = _test(page, conn_id, "basic-test.png")
    assert "Test Connection Successful" in result
    assert f"Connected to Neo at {neo.url} (basic auth, scope global)" in result

    page.get_by_role("row").filter(has_text=conn_id).get_by_role(
        "button", name="Edit Connection"
    ).click()
    dialog = page.get_by_role("dialog")
    _show_extra_fields(dialog)
    parts = urlsplit(neo.url)
    expect(dialog.locator('[name="host"]')).to_have_value(str(parts.hostname))
    expect(dialog.locator('[name="port"]')).to_have_value(str(parts.port))
    expect(dialog.locator('[name="login"]')).to_have_value(DEFAULT_USERNAME)
    expect(_extra(dialog, "timezone")).to_have_value(TIMEZONE)
    expect(_extra(dialog, "test_variant_id")).to_have_value("7a67e565-ad2a-498a-937b-fac8a63e828c")
    expect(_extra(dialog, "md5_hashed_credential")).not_to_be_checked()
    _shoot_form(page, dialog, "basic-edit-extra-fields.png")
    dialog.get_by_role("button", name="Standard Fields").click()
    password = dialog.locator('[name="password"]')
    expect(password).to_have_attribute("type", "password")
    assert password.input_value() == "***", password.input_value()
    _shoot_form(page, dialog, "basic-edit-standard-fields.png")
    assert DEFAULT_PASSWORD not in page.content()
    _save(page, dialog, conn_id)
    result = _test(page, conn_id, "basic-test-after-edit.png")
    assert "Test Connection Successful" in result


def test_oauth_connection_is_saved_and_tests(
    page: Page, airflow_ui: str, neo: RunningSimulator
) -> None:
    conn_id = "neo_ui_oauth"
    dialog = _add_connection(
        page, airflow_ui, conn_id, neo, "oauth", auth_type="oauth",
        oauth_client_key=DEFAULT_OAUTH_KEY, oauth_client_secret=DEFAULT_OAUTH_SECRET,
    )  # fmt: skip
    expect(_extra(dialog, "oauth_client_secret")).to_have_attribute("type", "password")
    _save(page, dialog, conn_id)
    result = _test(page, conn_id, "oauth-test.png")
    assert "Test Connection Successful" in result
    assert "(oauth auth, scope global)" in result

    page.get_by_role("row").filter(has_text=conn_id).get_by_role(
        "button", name="Edit Connection"
    ).click()
    dialog = page.get_by_role("dialog")
    _show_extra_fields(dialog)
    expect(_extra(dialog, "oauth_client_key")).to_have_value(DEFAULT_OAUTH_KEY)
    assert _extra(dialog, "oauth_client_secret").input_value() == "***"
    assert DEFAULT_OAUTH_SECRET not in page.content()
    _save(page, dialog, conn_id)
    assert "Test Connection Successful" in _test(page, conn_id, "oauth-test-after-edit.png")


def test_wrong_password_fails_readably_with_no_secret_on_the_page(
    page: Page, airflow_ui: str, neo: RunningSimulator
) -> None:
    conn_id = "neo_ui_wrong"
    dialog = _add_connection(
        page,
        airflow_ui,
        conn_id,
        neo,
        "wrong-password",
        login=DEFAULT_USERNAME,
        password=WRONG_PASSWORD,
    )
    _save(page, dialog, conn_id)
    result = _test(page, conn_id, "wrong-password-test.png")
    assert "Test Connection Failed" in result
    assert f"Neo at {neo.url} refused the credentials: check the username and password" in result
    content = page.content()
    digest = hashlib.md5(WRONG_PASSWORD.encode()).hexdigest()
    header = basic_auth(DEFAULT_USERNAME, WRONG_PASSWORD).removeprefix("Basic ")
    for secret in (WRONG_PASSWORD, digest, header):
        assert secret not in content
