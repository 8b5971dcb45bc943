"""Open a `cm report` HTML page in headless Chromium, as a reader would: every figure loads, nothing overflows.

    python benchmarks/render_report.py REPORT_DIR_OR_HTML [--screenshot PNG] [--chromium PATH] [--install]
    python benchmarks/render_report.py --demo [--screenshot PNG]   # build a synthetic study report first

Two Chromium runs on a copy of the page with a small script appended: ``--dump-dom``
after the script has decoded every <img> and written, into a marker element, how many
images are complete with a natural width above zero; then ``--screenshot`` of the top
of the page. The script also measures the layout at the window's width: whether the page
scrolls sideways, and which captions, paragraphs, table boxes or figures end beyond the
page's right edge (a wide table may scroll inside its own box, the box may not). Prints
one JSON line and exits 0 only if every figure loaded and nothing overflows. Chromium
is the Debian package (``/usr/bin/chromium``); ``--install`` runs
``apt-get install -y chromium`` when it is missing (never done unless asked).
"""

from __future__ import annotations

import argparse
import html as html_lib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--mute-audio",
)
MARKER = "CM-IMG-CHECK"
# after the load event, writes {"total", "loaded", "failed": [alt…], "sizes": [[w, h]…]} into #cm-img-check
CHECK_SCRIPT = """
<script>
(function () {
  function report() {
    var imgs = Array.prototype.slice.call(document.images);
    var ok = imgs.filter(function (img) { return img.complete && img.naturalWidth > 0; });
    var failed = imgs.filter(function (img) { return !(img.complete && img.naturalWidth > 0); })
                     .map(function (img) { return img.alt || img.src.slice(0, 60); });
    var out = document.createElement("pre");
    out.id = "cm-img-check";
    var edge = document.documentElement.clientWidth;
    var boxes = document.querySelectorAll("p, h1, h2, h3, h4, figure, figure img, figcaption, caption, .table-wrap, "
                                          + "body > table, nav, pre");
    var overflowing = Array.prototype.slice.call(boxes).filter(function (el) {
      return el.getBoundingClientRect().right > edge + 1;
    }).map(function (el) {
      return el.tagName.toLowerCase() + (el.className ? "." + el.className : "")
             + ": " + (el.alt || el.textContent || "").slice(0, 60);
    });
    out.textContent = "%(marker)s" + JSON.stringify({
      total: imgs.length, loaded: ok.length, failed: failed,
      sizes: ok.map(function (img) { return [img.naturalWidth, img.naturalHeight]; }),
      page_width: edge, scroll_width: document.documentElement.scrollWidth, overflowing: overflowing
    }) + "%(marker)s";
    document.body.appendChild(out);
  }
  // the load event fires only after every image has been fetched and decoded (or failed)
  if (document.readyState === "complete") { report(); } else { window.addEventListener("load", report); }
})();
</script>
""" % {"marker": MARKER}


def find_chromium(explicit: str | None, install: bool) -> str:
    candidates = [explicit] if explicit else ["/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"]
    for candidate in candidates:
        found = shutil.which(candidate) if candidate else None
        if found:
            return found
    if install:
        subprocess.run(["apt-get", "install", "-y", "chromium"], check=True)
        found = shutil.which("chromium")
        if found:
            return found
    sys.exit(
        "chromium not found: install the Debian package (apt-get install -y chromium) or pass --install/--chromium"
    )


def run_chromium(chromium: str, args: list[str], profile: Path, timeout: float) -> subprocess.CompletedProcess:
    command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def check_page(html: Path, *, chromium: str, screenshot: Path, width: int, height: int, timeout: float) -> dict:
    page = html.read_text(encoding="utf-8")
    n_tags = len(re.findall(r"<img\b", page))
    with tempfile.TemporaryDirectory(prefix="cm-chromium-") as tmp:
        tmp_dir = Path(tmp)
        probe = tmp_dir / "page.html"
        probe.write_text(page.replace("</body>", CHECK_SCRIPT + "</body>"), encoding="utf-8")
        start = time.perf_counter()
        dom = run_chromium(
            chromium,
            [f"--window-size={width},{height}", "--virtual-time-budget=15000", "--dump-dom", probe.as_uri()],
            tmp_dir / "p1",
            timeout,
        )
        dom_seconds = time.perf_counter() - start
        match = re.search(f'<pre id="cm-img-check">{MARKER}(.*?){MARKER}</pre>', dom.stdout, re.S)
        result = json.loads(html_lib.unescape(match.group(1))) if match else None
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        shot = run_chromium(
            chromium,
            [
                f"--screenshot={screenshot.resolve()}",
                f"--window-size={width},{height}",
                "--virtual-time-budget=15000",
                html.resolve().as_uri(),
            ],
            tmp_dir / "p2",
            timeout,
        )
        shot_seconds = time.perf_counter() - start
    summary = {
        "html": str(html),
        "img_tags": n_tags,
        "images_total": result["total"] if result else None,
        "images_loaded": result["loaded"] if result else None,
        "failed": result["failed"] if result else None,
        "smallest_image": min(result["sizes"], key=lambda s: s[0] * s[1]) if result and result["sizes"] else None,
        "all_loaded": bool(result and result["total"] == n_tags and result["loaded"] == result["total"] and n_tags > 0),
        "page_scrolls_sideways": bool(result and result["scroll_width"] > result["page_width"] + 1),
        "overflowing": result["overflowing"] if result else None,
        "screenshot": str(screenshot) if screenshot.is_file() else None,
        "dom_seconds": round(dom_seconds, 2),
        "screenshot_seconds": round(shot_seconds, 2),
    }
    if not result:
        summary["chromium_stderr"] = dom.stderr[-2000:]
    if not screenshot.is_file():
        summary["screenshot_stderr"] = shot.stderr[-2000:]
    return summary


def build_demo_report(out: Path) -> Path:
    """A report of the synthetic study used by the tests (two runs, sweeps, all analyses)."""
    repo = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(repo))
    from cm_cli.report.render import build_report
    from tests.report.synth import make_study

    study = make_study(out / "study")
    return build_report([study], out / "report", latex=True, title="Synthetic ERM vs DANN study").html


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", nargs="?", type=Path, help="report.html or the directory holding it")
    parser.add_argument("--demo", action="store_true", help="build a synthetic study report in a temp dir and check it")
    parser.add_argument("--screenshot", type=Path, default=None, help="PNG to write (default: next to report.html)")
    parser.add_argument("--chromium", default=None, help="browser binary (default: /usr/bin/chromium)")
    parser.add_argument("--install", action="store_true", help="apt-get install -y chromium if it is missing")
    parser.add_argument("--width", type=int, default=1280, help="window width in px (try 800 for a laptop half-screen)")
    parser.add_argument("--height", type=int, default=2400)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    chromium = find_chromium(args.chromium, args.install)
    if args.demo:
        html = build_demo_report(Path(tempfile.mkdtemp(prefix="cm-report-demo-")))
    elif args.report is None:
        parser.error("give REPORT_DIR_OR_HTML or --demo")
    else:
        html = args.report / "report.html" if args.report.is_dir() else args.report
    if not html.is_file():
        sys.exit(f"{html}: no such file")
    screenshot = args.screenshot or html.with_name("report_screenshot.png")
    summary = check_page(
        html, chromium=chromium, screenshot=screenshot, width=args.width, height=args.height, timeout=args.timeout
    )
    print(json.dumps(summary))
    laid_out = summary["overflowing"] == [] and not summary["page_scrolls_sideways"]
    print(
        f"figures loaded: {summary['images_loaded']}/{summary['img_tags']}; overflowing the page at "
        f"{args.width} px: {len(summary['overflowing'] or [])} -> "
        f"{'OK' if summary['all_loaded'] and laid_out else 'FAILED'}",
        file=sys.stderr,
    )
    sys.exit(0 if summary["all_loaded"] and laid_out else 1)


if __name__ == "__main__":
    main()
