"""Headless Chromium for the UI tests: Debian's /usr/bin/chromium driven by the Python `playwright`
package (`playwright install` is never needed), and the tab each test gets, with numbered step
screenshots under ARTIFACTS/<test>/ (CENSUS_UI_ARTIFACTS)."""

import os
from dataclasses import dataclass
from pathlib import Path

from census_assets_tests.harness.processes import REPO_ROOT

ARTIFACTS = Path(os.environ.get("CENSUS_UI_ARTIFACTS", REPO_ROOT / "test-artifacts" / "ui"))
CHROMIUM = os.environ.get("CENSUS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # root in CI containers
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 2400, "height": 1200}  # the census chain, source included, renders as full asset nodes
EXPECT_TIMEOUT_MS = 30_000  # Playwright's 5 s default is flaky on 2 busy cores


@dataclass
class UIPage:
    """A browser tab and the folder its numbered step screenshots go to."""

    page: object  # playwright.sync_api.Page
    folder: Path
    count: int = 0

    def shot(self, step: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{step}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path
