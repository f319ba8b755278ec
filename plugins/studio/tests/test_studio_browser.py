"""The studio in a real browser: Debian's headless Chromium driven by Playwright.

Playwright never downloads a browser here: it launches ``/usr/bin/chromium``
(installed by ``.ci/install-browser``).  Outside CI the test is skipped, with the
reason, when that browser or Playwright is missing; under ``CI=true`` it fails.
``GANENC_STUDIO_SCREENSHOT=docs/studio.png`` also writes the page's screenshot there.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ganenc_studio.session import EXAMPLES_DIR as EXAMPLES

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _require_browser():
    missing = []
    if not Path(CHROMIUM).exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium, or run .ci/install-browser)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package (pip install 'plugins/studio[test]')")
    if missing:
        message = "the studio's browser test needs " + " and ".join(missing)
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)


def test_upload_invert_edit_and_download_in_chromium(studio, tmp_path):
    _require_browser()
    from playwright.sync_api import sync_playwright

    from ganenc.latents import read_latent_file
    from ganenc_studio.app import create_app
    from ganenc_studio.server import running

    with running(create_app(studio)) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a fresh user-data-dir
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            accept_downloads=True,
            viewport={"width": 1280, "height": 900},
        )
        try:
            page = browser.new_page()
            errors = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("requestfailed", lambda request: errors.append(request.url))
            page.goto(url + "/")
            page.wait_for_selector("body[data-ready='1']", timeout=20_000)
            assert page.locator("#examples img").count() == len(list(EXAMPLES.glob("*.png")))

            page.set_input_files("#upload", str(EXAMPLES / "1f973.png"))
            page.wait_for_selector("#recon-encoder[src^='data:image/png']", timeout=20_000)
            assert page.get_attribute("#original", "src").startswith("data:image/png")
            assert "PSNR" in page.inner_text("#caption-encoder")
            page.wait_for_function("document.querySelector('#download-png').href !== ''")
            page.wait_for_selector("#edited[src^='data:image/png']")
            before = page.get_attribute("#edited", "src")

            page.locator("#direction-sliders input[data-direction='smile']").fill("4")
            page.wait_for_function(
                "before => document.querySelector('#edited').src !== before", arg=before
            )
            assert page.get_attribute("#edited", "src") != before
            page.wait_for_function(
                "() => document.querySelector('#download-png').href.includes('%3A4')"
            )

            with page.expect_download() as png_download:
                page.click("#download-png")
            png_path = tmp_path / png_download.value.suggested_filename
            png_download.value.save_as(png_path)
            assert png_path.name == "1f973-edited.png"
            assert png_path.read_bytes().startswith(b"\x89PNG")

            with page.expect_download() as latents_download:
                page.click("#download-latents")
            latents_path = tmp_path / latents_download.value.suggested_filename
            latents_download.value.save_as(latents_path)
            payload = read_latent_file(latents_path)
            assert payload["edit"]["strengths"] == {"smile": 4.0, "age": 0.0}

            page.wait_for_selector("#sample-image[src^='data:image/png']")
            assert not errors, errors
            screenshot = os.environ.get("GANENC_STUDIO_SCREENSHOT")
            page.screenshot(path=screenshot or str(tmp_path / "studio.png"), full_page=True)
        finally:
            browser.close()
