"""A real headless browser for the tests of pages: Chromium on the command line, no driver.

``dump_dom`` prints the DOM after the page's scripts ran, ``screenshot`` takes a picture. Pages
that need interaction take their state from the URL fragment, or carry a test script that sends
events to their elements; either way the page's own event handlers run. Without a Chromium the
tests that need one skip, saying why (``.ci/run`` installs Debian's ``chromium`` package).
"""
import html.parser
import os
import pathlib
import shutil
import subprocess
import tempfile

import pytest

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# offline machines refuse the connections a browser makes at start: ask for none
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--mute-audio", "--hide-scrollbars")


def find_chromium():
    """The browser's path: $CHROMIUM when set, else the first of NAMES on PATH; None when absent."""
    named = os.environ.get("CHROMIUM")
    if named:
        return shutil.which(named) or (named if os.access(named, os.X_OK) else None)
    return next((path for path in map(shutil.which, NAMES) if path), None)


CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium on this machine (apt-get install chromium; .ci/run installs it)")


def _run(url, *extra, timeout=120):
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        out = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, url],
                             capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"chromium exited with {out.returncode}: {out.stderr[-2000:]}")
    return out.stdout


def url_of(path, fragment=""):
    return pathlib.Path(path).resolve().as_uri() + (f"#{fragment}" if fragment else "")


def dump_dom(path, fragment="", budget_ms=5000):
    """The page's DOM as HTML text once its scripts ran. With a budget, virtual time lets timers
    finish too; None leaves the clock real (for timing the page)."""
    budget = [f"--virtual-time-budget={budget_ms}"] if budget_ms is not None else []
    return _run(url_of(path, fragment), *budget, "--dump-dom")


def screenshot(path, png, fragment="", size=(1200, 900)):
    """Save a PNG of the page as the browser draws it; returns the PNG's path."""
    _run(url_of(path, fragment), f"--window-size={size[0]},{size[1]}", f"--screenshot={png}")
    if not pathlib.Path(png).is_file():
        raise RuntimeError(f"chromium wrote no screenshot to {png}")
    return pathlib.Path(png)


class Elements(html.parser.HTMLParser):
    """Every start tag of a document as (tag, {attribute: value}), and the text inside each id'd element."""

    def __init__(self, text):
        super().__init__()
        self.tags, self.text_of, self._open = [], {}, []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if "id" in attrs:
            self._open.append((tag, attrs["id"]))
            self.text_of[attrs["id"]] = ""

    def handle_endtag(self, tag):
        if self._open and self._open[-1][0] == tag:
            self._open.pop()

    def handle_data(self, data):
        for _, ident in self._open:
            self.text_of[ident] += data

    def find(self, tag=None, cls=None, **attrs):
        """The attribute dicts of the elements with this tag, class and attribute values."""
        return [a for t, a in self.tags
                if (tag is None or t == tag) and (cls is None or cls in a.get("class", "").split())
                and all(a.get(k.replace("_", "-")) == str(v) for k, v in attrs.items())]
