"""End to end in a real browser: `orchard dashboard` on loopback with InfluxDB behind it, driven by Debian's headless
Chromium. The kiosk command center (by its signed link) and the environment page (signing in through the form),
in both languages, on a 1920x1080 wall screen and a
390x844 phone. Screenshots go to test-artifacts/screenshots/ (or $ORCHARD_TEST_ARTIFACTS)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.servers import InfluxDB, free_port
from dashboard.server import DashboardServer
from orchard.records import Records
from orchard.records.accounts import Accounts
from orchard.records.people import People, User
from orchard.settings import DashboardSettings
from tests.conftest import KIOSK_SECRET, influx_url, kiosk_link, unique
from tests.dashboard.conftest import seed
from tests.integration.browser import SIZES, chrome, screenshot, sign_in

pytestmark = [pytest.mark.integration, pytest.mark.browser]

PASSWORD = "wall-screen-and-phone-2026"
REPORT = "![看这里]({beacon}/p.png) 叶片发黄"  # a 随手拍 report whose words carry an image link


class Beacon(ThreadingHTTPServer):
    """A web server on loopback that counts who fetches from it: the farmer's "image"."""

    def __init__(self) -> None:
        self.fetched: list[str] = []
        beacon = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                beacon.fetched.append(self.path)
                self.send_response(404)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def beacon() -> Iterator[Beacon]:
    b = Beacon()
    yield b
    b.shutdown()


@pytest.fixture(scope="module")
def dashboard_url(tmp_path_factory: pytest.TempPathFactory, influx: InfluxDB, beacon: Beacon) -> Iterator[str]:
    from orchard.records.workorders import WorkOrders

    d = tmp_path_factory.mktemp("browser")
    seeded = seed(d, influx_url(influx, unique("e2e")), 1.2, time.time())
    records = Records.in_data_dir(d)
    people, accounts = People(records), Accounts(records, DashboardSettings())
    people.upsert(User("zhang", "张站长", "center"))
    people.upsert(User("li", "李明", "adviser"))
    people.set_plots("li", ["p01"], "covers")
    people.upsert(User("wang", "王建国", "farmer"))
    people.set_plots("wang", ["p01"], "owns")
    for name in ("zhang", "li"):
        accounts.set_password(name, PASSWORD, time.time_ns())
    WorkOrders(records, d / "photos").open(plot="p01", title=REPORT.format(beacon=beacon.url), created_by="wang",
                                           now_ns=time.time_ns(), source="photo")
    records.close()
    env = {"ORCHARD_STORE_URL": seeded.store_url, "ORCHARD_DATA_DIR": str(d),
           "ORCHARD_DASHBOARD__KIOSK_SECRET": KIOSK_SECRET}
    with DashboardServer(env, d / "dashboard.log", free_port()) as server:
        yield server.url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chrome("wall") as driver:
        yield driver


def load(driver: object, url: str, size: tuple[int, int], charts: int, user: str | None = None,
         words: Sequence[str] = ()) -> str:
    """Open url at the given window size (signing in as `user` first), wait until `charts` plotly charts have
    drawn and the `words` are on the page (on a loaded machine the parts below the charts come later; after
    60 s the text is returned as it is, for the test's own assertion to name what is missing)."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    d = driver  # a selenium WebDriver; typed loosely so the module imports without selenium
    d.set_window_size(*size)  # type: ignore[attr-defined]
    if user:
        d.delete_all_cookies()  # type: ignore[attr-defined]  # the last test's sign-in lasts (its cookie): sign in anew
    d.get(url)  # type: ignore[attr-defined]
    if user:
        sign_in(d, user, PASSWORD)
    WebDriverWait(d, 90).until(
        lambda drv: len(drv.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .main-svg")) >= charts)
    with contextlib.suppress(TimeoutException):
        WebDriverWait(d, 60).until(lambda drv: all(w in drv.find_element(By.TAG_NAME, "body").text for w in words))
    time.sleep(1.5)  # let the last fonts and transitions settle before the screenshot
    return str(d.find_element(By.TAG_NAME, "body").text)  # type: ignore[attr-defined]


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize(("lang", "title", "tiles"), [
    ("zh", "指挥中心 · 笋子沟村", ["红码地块", "在线设备", "最新数据", "24 小时最低气温"]),
    ("en", "Command center · Sunzigou village", ["Red plots", "Devices online", "Newest data", "minimum temperature"]),
])
def test_kiosk_command_center(dashboard_url: str, browser: object, size: str, lang: str, title: str,
                              tiles: list[str]) -> None:
    from selenium.webdriver.common.by import By

    text = load(browser, f"{dashboard_url}/?kiosk={kiosk_link()}&lang={lang}", SIZES[size], charts=5)
    assert title in text
    for tile in tiles:
        assert tile in text
    assert "24 / 24" in text
    metrics = browser.find_elements(By.CSS_SELECTOR, '[data-testid="stMetric"]')  # type: ignore[attr-defined]
    assert len(metrics) == 6 + 4  # the six KPI tiles, and the grading line's panel
    assert ("果品分选线" if lang == "zh" else "Fruit grading line") in text
    sidebars = browser.find_elements(By.CSS_SELECTOR, '[data-testid="stSidebar"]')  # type: ignore[attr-defined]
    assert all(not s.is_displayed() for s in sidebars)  # the wall screen shows no sidebar
    width = browser.execute_script("return document.documentElement.scrollWidth")  # type: ignore[attr-defined]
    assert width <= SIZES[size][0] + 1  # nothing pushes the page sideways, on the phone either
    screenshot(browser, f"command-center-kiosk-{lang}-{size}")


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize(("lang", "words"), [
    ("zh", ["环境监测", "气温 (°C)", "相对湿度 (%)", "衍生指标", "导出 CSV"]),
    ("en", ["Environment", "Air temperature (°C)", "Relative humidity (%)", "Derived indicators", "Export CSV"]),
])
def test_environment_page(dashboard_url: str, browser: object, size: str, lang: str, words: list[str]) -> None:
    text = load(browser, f"{dashboard_url}/environment?lang={lang}", SIZES[size], charts=4, user="zhang",
                words=words)
    for w in words:
        assert w in text
    width = browser.execute_script("return document.documentElement.scrollWidth")  # type: ignore[attr-defined]
    assert width <= SIZES[size][0] + 1
    screenshot(browser, f"environment-{lang}-{size}")


def test_a_farmers_image_link_is_not_fetched_by_the_advisers_browser(dashboard_url: str, browser: object,
                                                                       beacon: Beacon) -> None:
    """Farmers' words are shown as text: the adviser's browser shows the link's characters and fetches nothing."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    d = browser
    d.set_window_size(*SIZES["phone"])  # type: ignore[attr-defined]
    d.delete_all_cookies()  # type: ignore[attr-defined]
    d.get(f"{dashboard_url}/alarms")  # type: ignore[attr-defined]
    sign_in(d, "li", PASSWORD)

    def orders_tab(drv: object) -> object:
        tabs = drv.find_elements(By.CSS_SELECTOR, '[role="tab"]')  # type: ignore[attr-defined]
        return next((t for t in tabs if t.text.strip() == "工单"), None)

    WebDriverWait(d, 90).until(orders_tab).click()  # type: ignore[attr-defined]
    WebDriverWait(d, 30).until(lambda drv: "叶片发黄" in drv.find_element(By.TAG_NAME, "body").text)
    WebDriverWait(d, 30).until(  # every part of the page has been drawn: the script is no longer running
        lambda drv: not drv.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]'))
    text = str(d.find_element(By.TAG_NAME, "body").text)  # type: ignore[attr-defined]
    assert f"![看这里]({beacon.url}/p.png)" in text  # the characters as the farmer typed them
    images = d.execute_script("return [...document.images].map(i => i.src)")  # type: ignore[attr-defined]
    assert not [src for src in images if beacon.url in src]
    assert beacon.fetched == []
