"""Look at the built site as a reader would: headless Chromium renders pages of site/, and we check that

* each screenshot is a page, not a blank (white or one-colour) image;
* the math was typeset by the bundled KaTeX (the rendered DOM has KaTeX nodes and no KaTeX error), offline.

Usage: python .ci/check_site.py SITE_DIR OUT_DIR  (needs `chromium`, pillow and numpy).
"""

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

PAGES = {"home": "index.html", "api-optim": "api/optim/index.html", "api-cluster": "api/cluster/index.html"}
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--virtual-time-budget=8000",
]


def chromium(*args: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        run = subprocess.run(
            ["chromium", *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=180,
            check=True,
        )
    return run.stdout


def check_png(path: Path) -> str:
    img = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
    ink = float((img < 200).mean())  # share of pixels darker than the white background
    levels = len(np.unique(img.astype(np.uint8)))
    if img.std() < 5 or ink < 0.01 or levels < 16:
        raise SystemExit(f"{path}: blank page (std {img.std():.1f}, ink {ink:.2%}, {levels} grey levels)")
    return f"std {img.std():.1f}, ink {ink:.1%}, {levels} grey levels"


def main() -> None:
    site, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for name, page in PAGES.items():
        url = (site / page).as_uri()
        png = out / f"{name}.png"
        chromium("--window-size=1280,1000", f"--screenshot={png}", url)
        stats = check_png(png)
        dom = chromium("--dump-dom", url)
        katex = dom.count('class="katex"')
        if katex == 0 or "katex-error" in dom:
            raise SystemExit(
                f"{page}: math not rendered ({katex} KaTeX nodes, {dom.count('katex-error')} KaTeX errors)"
            )
        print(f"{page}: screenshot {png.name} ({stats}); {katex} formulas typeset")


if __name__ == "__main__":
    main()
