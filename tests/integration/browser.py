"""Driving Debian's headless Chromium against a running dashboard: a browser per person (its own profile, so its
own cookies), the sign-in form filled in as a person does, waiting on what the page says, screenshots."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ARTIFACTS = Path(os.environ.get("ORCHARD_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))
SIZES = {"wall": (1920, 1080), "phone": (390, 844)}
# The in-app browsers a village's people open links in (their user agents as the apps send them).
DINGTALK_UA = ("Mozilla/5.0 (Linux; Android 13; V2196A Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like "
               "Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 AliApp(DingTalk/7.5.20) "
               "com.alibaba.android.rimet/37090580 Channel/212200 language/zh-Hans-CN UT4Aplus/0.2.25 "
               "colorScheme/light")
WECHAT_UA = ("Mozilla/5.0 (Linux; Android 13; PGT-AN10 Build/HONORPGT-AN10; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Version/4.0 Chrome/111.0.5563.116 Mobile Safari/537.36 XWEB/1110017 MMWEBSDK/20231002 MMWEBID/2585 "
             "MicroMessenger/8.0.43.2480(0x28002B51) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64")


def require_chromium() -> None:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        message = "Debian's chromium and chromium-driver are not installed (scripts/test installs them as root)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)


@contextlib.contextmanager
def chrome(size: str = "phone", user_agent: str | None = None, lang: str = "zh-CN") -> Iterator[Any]:
    """A fresh headless Chromium (a new profile: no cookies) at one of SIZES."""
    require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    # Without the background-networking flags Chromium keeps dialling Google on this closed network.
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--lang={lang}", "--enable-precise-memory-info"):
        opts.add_argument(flag)
    if user_agent:
        opts.add_argument(f"--user-agent={user_agent}")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    driver.set_window_size(*SIZES[size])
    try:
        yield driver
    finally:
        driver.quit()


def shown(driver: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By

    return next((e for e in driver.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()), None)


def text(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.TAG_NAME, "body").text)


def until(driver: Any, check: Callable[[Any], Any], timeout_s: float = 60, what: str = "") -> Any:
    """Wait until check(driver) is truthy; on timeout, fail naming what was awaited and what the page says."""
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout_s, ignored_exceptions=(StaleElementReferenceException,)).until(check)
    except TimeoutException:
        pytest.fail(f"waited {timeout_s:.0f} s for {what or check}; the page says:\n{text(driver)[:1500]}")


def says(driver: Any, *words: str, timeout_s: float = 60) -> str:
    """Wait until every word is on the page (and the script has finished drawing); the page's text."""
    until(driver, lambda d: all(w in text(d) for w in words), timeout_s, f"{words}")
    settled(driver)
    return text(driver)


def settled(driver: Any, timeout_s: float = 60) -> None:
    """The script run is over: Streamlit's running indicator is gone."""
    from selenium.webdriver.common.by import By

    until(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]'), timeout_s,
          "the page to finish drawing")
    time.sleep(0.3)


def button(driver: Any, label: str, timeout_s: float = 60) -> Any:
    """The visible button whose text is (or starts with) `label`."""
    from selenium.webdriver.common.by import By

    def find(d: Any) -> Any:
        return next((b for b in d.find_elements(By.CSS_SELECTOR, "button")
                     if b.is_displayed() and b.text.strip().startswith(label)), None)

    return until(driver, find, timeout_s, f"a button {label!r}")


def tap(driver: Any, label: str) -> None:
    b = button(driver, label)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", b)
    b.click()


def sign_in(driver: Any, user: str, password: str) -> None:
    """Fill in and send the sign-in form the way a person does."""
    until(driver, lambda d: shown(d, '[data-testid="stTextInput"] input[type="password"]'), 60, "the sign-in form")
    name = shown(driver, '[data-testid="stTextInput"] input:not([type="password"])')
    name.click()
    name.send_keys(user)
    shown(driver, '[data-testid="stTextInput"] input[type="password"]').send_keys(password)
    shown(driver, '[data-testid="stFormSubmitButton"] button').click()


def signed_out(driver: Any) -> bool:
    return shown(driver, '[data-testid="stTextInput"] input[type="password"]') is not None


def screenshot(driver: Any, name: str) -> Path:
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    driver.save_screenshot(str(path))
    return path
