"""app.py's page in a real browser: headless Chromium (Debian's chromium and chromium-driver) driven by Selenium.

The page is served in-process on a free port with the tiny untrained export. Waits are on what the page shows,
with generous limits (a slow, shared 2-core machine), never fixed sleeps."""
import os
import urllib.request

import cv2
import numpy as np
import pytest
import skimage.data

from utils.browser import chromium, find_chromium, free_port

_browser, _why = find_chromium()
# Skipped only where there is no browser; on CI (.ci/run installs it) a missing browser is a failure.
pytestmark = [pytest.mark.skipif(_browser is None and os.environ.get("CI") != "true",
                               reason=f"no headless browser: {_why}"), pytest.mark.browser, pytest.mark.slow]

WAIT = 180  # seconds: the first upload starts MTCNN in the server


@pytest.fixture(scope="module")
def server(export):
    if _browser is None:
        pytest.fail(f"CI=true but no headless browser: {_why}")
    import app
    from inference.edit import load_model
    page = app.build_app(load_model(export), "tiny export")
    port = free_port()
    app.launch(page, "127.0.0.1", port, block=False)
    yield f"http://127.0.0.1:{port}/"
    page.close()


@pytest.fixture(scope="module")
def web(server):
    from selenium.webdriver.support.ui import WebDriverWait
    with chromium(width=1400, height=1000) as browser:
        browser.get(server)
        browser.wait = WebDriverWait(browser, WAIT)
        yield browser


def css(web, selector):
    from selenium.webdriver.common.by import By
    return web.find_element(By.CSS_SELECTOR, selector)


def status(web):
    return css(web, "#status").text


def upload(web, path, expect):
    """Upload a file through the page's file input; wait for the status line to contain `expect`."""
    web.wait.until(lambda d: css(d, "#upload input[type=file]")).send_keys(path)
    web.wait.until(lambda d: expect in status(d), message=f"status never said {expect!r}")


def image_src(web, element_id):
    from selenium.common.exceptions import NoSuchElementException
    try:
        return css(web, f"#{element_id} img").get_attribute("src") or None
    except NoSuchElementException:
        return None


def fetch_image(url):
    with urllib.request.urlopen(url, timeout=60) as response:
        return cv2.imdecode(np.frombuffer(response.read(), np.uint8), cv2.IMREAD_UNCHANGED)


def test_page_loads_nothing_from_the_network(web, server):
    web.wait.until(lambda d: "No photo yet" in status(d))
    outside = web.execute_script("return performance.getEntriesByType('resource').map(e => e.name)"
                                 ".filter(n => !n.startsWith(arguments[0]) && !n.startsWith('data:'))", server)
    assert outside == []
    labels = web.execute_script("return [...document.querySelectorAll('[id^=au-] label, [id^=au-] span')]"
                                ".map(e => e.textContent)")
    assert any("AU12 lip corner puller" in text for text in labels)
    assert len(web.execute_script("return document.querySelectorAll('[id^=au-] input[type=range]')")) == 17


def test_upload_a_photo_move_a_slider_and_animate(web, tmp_path):
    from selenium.webdriver.common.keys import Keys
    photo = np.ascontiguousarray(skimage.data.astronaut())
    path = str(tmp_path / "astronaut.png")
    cv2.imwrite(path, photo[:, :, ::-1])
    upload(web, path, "astronaut.png: 512 x 512, 1 face found")
    assert image_src(web, "detected")
    before = web.wait.until(lambda d: image_src(d, "edited"))
    assert fetch_image(before).shape == photo.shape
    attention = fetch_image(web.wait.until(lambda d: image_src(d, "attention")))
    assert attention.shape[:2] == photo.shape[:2]

    slider = css(web, "#au-AU12 input[type=range]")
    start = float(slider.get_attribute("value"))
    slider.send_keys(Keys.END)  # to 5, as a user does with the keyboard
    web.wait.until(lambda d: image_src(d, "edited") != before, message="the edited photo did not change")
    assert float(slider.get_attribute("value")) == 5.0 != start
    after = fetch_image(image_src(web, "edited"))
    assert after.shape == photo.shape and (after != fetch_image(before)).any()

    css(web, "#animate").click()
    gif = web.wait.until(lambda d: image_src(d, "gif"), message="no animation appeared")
    assert gif.endswith("astronaut_animation.gif")
    names = web.wait.until(lambda d: css(d, "#files").text)
    assert "astronaut_animation" in names and ".mp4" in names


def test_bad_uploads_show_a_message_and_the_server_goes_on(web, tmp_path):
    (tmp_path / "notes.txt").write_text("this is not a photo")
    upload(web, str(tmp_path / "notes.txt"), "notes.txt: is not a readable image")
    assert status(web).startswith("Error: notes.txt")
    cv2.imwrite(str(tmp_path / "coffee.jpg"), skimage.data.coffee()[:, :, ::-1])
    upload(web, str(tmp_path / "coffee.jpg"), "coffee.jpg: no face found in this 600 x 400 image")
    with open(tmp_path / "huge.jpg", "wb") as f:
        f.truncate(26 * 2 ** 20)  # over the page's 25 MB: the page refuses it before uploading
    css(web, "#upload input[type=file]").send_keys(str(tmp_path / "huge.jpg"))
    web.wait.until(lambda d: 'exceed the maximum allowed size of 25.0 Mb: "huge.jpg"' in
                   d.execute_script("return document.body.innerText"), message="no message for a huge file")
    css(web, "#builtin").click()  # the server still answers
    web.wait.until(lambda d: "built-in face 1: 32 x 32" in status(d))
    assert os.environ.get("GRADIO_ANALYTICS_ENABLED") == "False"
