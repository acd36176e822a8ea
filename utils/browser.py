"""Headless Chromium for the page's end-to-end test and the README screenshot (Debian's `chromium` and
`chromium-driver` packages, driven by Selenium; nothing is downloaded: Selenium Manager is skipped because the
driver's path is given).

    with chromium(width=1400, height=1000) as browser:
        browser.get("http://127.0.0.1:7860")
"""
import contextlib
import os
import shutil
import socket
import tempfile

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
DRIVER_NAMES = ("chromedriver",)

# Quiet and offline: without the background-networking flags Chromium opens connections (updates, sync,
# component downloads) that are refused here, many at a time.
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--disable-extensions", "--disable-default-apps", "--mute-audio",
         "--hide-scrollbars")


def _which(names, env):
    if os.environ.get(env):
        return os.environ[env] if os.access(os.environ[env], os.X_OK) else None
    return next((p for p in map(shutil.which, names) if p), None)


def find_chromium():
    """(browser path, driver path), or (None, why not). GANIMATION_CHROMIUM / GANIMATION_CHROMEDRIVER override."""
    browser = _which(CHROMIUM_NAMES, "GANIMATION_CHROMIUM")
    driver = _which(DRIVER_NAMES, "GANIMATION_CHROMEDRIVER")
    if not browser or not driver:
        missing = " and ".join(n for n, p in (("chromium", browser), ("chromedriver", driver)) if not p)
        return None, f"{missing} not found (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return None, "the selenium package is not installed (pip install -r requirements.txt)"
    return browser, driver


@contextlib.contextmanager
def chromium(width=1400, height=1000):
    """A headless Chromium WebDriver with a fresh profile, closed (and its profile removed) afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    browser, driver = find_chromium()
    if browser is None:
        raise RuntimeError(driver)
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in FLAGS + (f"--window-size={width},{height}", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    web = webdriver.Chrome(service=Service(driver), options=options)
    try:
        yield web
    finally:
        web.quit()
        shutil.rmtree(profile, ignore_errors=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def screenshot_full_page(web, path, width=None):
    """Save the whole page (not just the window) as a PNG: the window is made as tall as the page first."""
    size = web.get_window_size()
    for _ in range(3):  # the page may lay itself out again at the new size
        height = web.execute_script(  # the lowest element: the page's own panels may scroll inside it
            "return Math.ceil(Math.max(document.documentElement.scrollHeight, ...[...document.querySelectorAll("
            "'body *')].map(e => e.getBoundingClientRect().bottom + window.scrollY)))")
        frame = web.execute_script("return window.outerHeight - window.innerHeight")  # the window's own bars
        web.set_window_size(width or size["width"], height + frame + 20)
    try:
        web.save_screenshot(path)
    finally:
        web.set_window_size(size["width"], size["height"])
