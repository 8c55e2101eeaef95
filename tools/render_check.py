"""Check that an HTML report renders in a real headless browser, offline, and save a screenshot.

    .venv/bin/python tools/render_check.py REPORT.html SCREENSHOT.png

Runs Debian's `chromium` headless with networking disabled (proving the page needs no CDN),
then checks the screenshot is a non-blank PNG. Look at the PNG to judge the layout. This is a
manual/script check, not part of the test suite (it needs chromium installed).
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys

from PIL import Image, ImageStat


def screenshot(html_path: str, png_path: str, *, height: int = 3000) -> None:
    """Render `html_path` in headless chromium into `png_path`; SystemExit with a reason on failure."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        raise SystemExit("chromium not found (apt-get install -y chromium)")
    url = pathlib.Path(html_path).resolve().as_uri()
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--proxy-server=127.0.0.1:9",
            "--proxy-bypass-list=<-loopback>",  # no network: offline proof
            f"--window-size=1200,{height}",
            f"--screenshot={png_path}",
            url,
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    with Image.open(png_path) as image:
        if ImageStat.Stat(image.convert("L")).stddev[0] < 2.5:  # one colour, give or take
            raise SystemExit(f"{png_path} is blank: the page did not render")
        print(f"rendered {url} -> {png_path} ({image.width}x{image.height})")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    screenshot(sys.argv[1], sys.argv[2])
