"""Headless Debian Chromium for the page tests (the `browser` marker): a page opened from a
file with every request that leaves the machine recorded and refused."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}
browser = pytest.mark.browser
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="no /usr/bin/chromium (`make browser` installs Debian's chromium)"
)


def is_local(url: str) -> bool:
    """A file, inline data, or this machine's loopback."""
    parts = urlsplit(url)
    return parts.scheme in ("file", "data", "blob", "about") or (parts.hostname or "") in LOCAL_HOSTS


@contextmanager
def open_page(path: Path, width: int = 1280, ready: str | None = None) -> Iterator[tuple[Any, list[str]]]:
    """The file opened in headless Chromium; yields (page, requests that tried to leave the
    machine: recorded, then aborted). The page is taken as drawn when the network is idle,
    or, given `ready` (a JavaScript expression), once loaded with `ready` true and its fonts
    in: Chromium does not always call a file:// page with many scripts idle."""
    from playwright.sync_api import sync_playwright

    outside: list[str] = []

    def guard(route: Any) -> None:
        url = route.request.url
        if is_local(url):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            page = b.new_page(viewport={"width": width, "height": 900})
            page.route("**/*", guard)
            if ready is None:
                page.goto(path.as_uri())
                page.wait_for_load_state("networkidle")
            else:
                page.goto(path.as_uri(), wait_until="load")
                page.wait_for_function(f"({ready}) && document.fonts.status === 'loaded'")
            yield page, outside
        finally:
            b.close()
