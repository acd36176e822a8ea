"""The README's screenshot of the web page (docs/app.png), taken in headless Chromium as tests/test_app_browser.py
drives it: open a photo (or a built-in face), click an expression preset, make the animation, photograph the page.

  python docs/app_screenshot.py --model runs/RUN [--photo face.jpg | --builtin 3] [--preset happy] [--out docs/app.png]

Without --photo or --builtin: skimage's astronaut photo.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from utils.cli import ArgumentParser, run_main  # noqa: E402


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__)
    p.add_argument("--model", help="an export folder or a run folder (default: the newest export under runs/)")
    p.add_argument("--photo", help="the photo to upload (default: skimage's astronaut)")
    p.add_argument("--builtin", type=int, help="a built-in face number instead of a photo")
    p.add_argument("--preset", default="happy", help="the expression preset to click (default happy)")
    p.add_argument("--out", default=os.path.join("docs", "app.png"), help="the PNG to write (default docs/app.png)")
    p.add_argument("--width", type=int, default=1400, help="window width in pixels (default 1400)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from utils.browser import chromium, find_chromium, free_port, screenshot_full_page
    from utils.errors import UserError
    browser, why = find_chromium()
    if browser is None:
        raise UserError("chromium", why)
    from utils.cli import quiet_tensorflow
    quiet_tensorflow()
    import tempfile

    import cv2
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    import app
    from inference.edit import load_model, resolve_model_dir
    model_dir = resolve_model_dir(args.model)
    page = app.build_app(load_model(model_dir), model_dir)
    port = free_port()
    app.launch(page, "127.0.0.1", port, block=False)
    folder = tempfile.mkdtemp()
    try:
        with chromium(width=args.width, height=1000) as web:
            wait = WebDriverWait(web, 300)

            def css(selector):
                return web.find_element(By.CSS_SELECTOR, selector)

            def src(element_id):
                found = web.find_elements(By.CSS_SELECTOR, f"#{element_id} img")
                return found[0].get_attribute("src") if found else None

            web.get(f"http://127.0.0.1:{port}/")
            if args.builtin:
                wait.until(lambda d: css("#builtin-number input")).clear()
                css("#builtin-number input").send_keys(str(args.builtin))
                css("#builtin").click()
                expect = f"built-in face {args.builtin}"
            else:
                photo = args.photo
                if photo is None:
                    import skimage.data
                    photo = os.path.join(folder, "astronaut.png")
                    cv2.imwrite(photo, skimage.data.astronaut()[:, :, ::-1])
                wait.until(lambda d: css("#upload input[type=file]")).send_keys(os.path.abspath(photo))
                expect = os.path.basename(photo)
            wait.until(lambda d: expect in css("#status").text and src("edited"))
            before = src("edited")
            css(f"#preset-{args.preset}").click()
            wait.until(lambda d: src("edited") != before)
            css("#animate").click()
            wait.until(lambda d: src("gif"))
            web.execute_script("window.scrollTo(0, 0)")
            screenshot_full_page(web, args.out)
    finally:
        page.close()
    print(args.out)
    return 0


if __name__ == "__main__":
    run_main(main)
