"""Helpers for the on-stage browser tests: a projector-sized page, measurements, QR decoding."""
from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import SCREENSHOTS, new_page, wait_idle, wait_parts

PROJECTOR = {"width": 1280, "height": 720}
MIN_TEXT_PX = 18
FOLD_PX = 720

# Polls every 50 ms whether Streamlit's "running" status widget is on screen (it appears only
# while a script runs, after a short delay, so a MutationObserver on attributes would miss it).
STATUS_WATCH = """
window.__statusSeen = 0;
setInterval(() => {
  const s = document.querySelector('[data-testid="stStatusWidget"]');
  if (s && s.getBoundingClientRect().width > 0 && getComputedStyle(s).visibility !== 'hidden') window.__statusSeen++;
}, 50);
"""

MEASURE = """() => {
  const box = (el) => { if (!el) return null; const r = el.getBoundingClientRect();
    return {x: r.x, y: r.y, width: r.width, height: r.height, right: r.right}; };
  const shown = (el) => !!el && el.getBoundingClientRect().width > 0 && getComputedStyle(el).display !== 'none'
    && getComputedStyle(el).visibility !== 'hidden';
  const sidebar = document.querySelector('[data-testid="stSidebar"]');
  const sr = sidebar ? sidebar.getBoundingClientRect() : null;
  const plots = [...document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot')];
  const texts = plots.flatMap((p) => [...p.querySelectorAll('.xtick text, .ytick text, .g-xtitle text, '
    + '.g-ytitle text, .legendtext, .cbaxis text, .gtitle, .annotation-text')]);
  const ticks = plots.flatMap((p) => [...p.querySelectorAll('.xtick text, .ytick text')]);
  const chart = document.querySelector('[data-testid="stMain"] [data-testid="stPlotlyChart"]');
  const h1 = document.querySelector('[data-testid="stMain"] h1');
  return {
    sidebarVisible: sr ? Math.max(0, Math.min(sr.right, innerWidth) - Math.max(sr.left, 0)) : 0,
    expand: box(document.querySelector('[data-testid="stExpandSidebarButton"]')),
    header: box(document.querySelector('[data-testid="stHeader"]')),
    mainMenu: shown(document.querySelector('[data-testid="stMainMenu"]')),
    chartTop: chart ? chart.getBoundingClientRect().top + scrollY : null,
    charts: plots.length,
    minText: texts.length ? Math.min(...texts.map((e) => parseFloat(getComputedStyle(e).fontSize))) : null,
    nTexts: texts.length,
    tickFills: [...new Set(ticks.map((e) => getComputedStyle(e).fill))],
    h1: h1 ? parseFloat(getComputedStyle(h1).fontSize) : null,
    h1Top: h1 ? h1.getBoundingClientRect().top + scrollY : null,
    padTop: parseFloat(getComputedStyle(document.querySelector('[data-testid="stMainBlockContainer"]')).paddingTop),
    openDetails: [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stExpander"] details')]
      .filter((d) => d.open).length,
  };
}"""


def projector_page(browser, **context_args):
    """A fresh session at 1280 × 720 that also watches the status widget."""
    page = new_page(browser, viewport=dict(PROJECTOR), **context_args)
    page.context.add_init_script(STATUS_WATCH)
    return page


def measure(page) -> dict:
    return page.evaluate(MEASURE)


def shot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=path)
    return path


def settle(page, seconds: float = 0.6) -> None:
    """Wait for the app to be idle with every heavy part filled in, and give the charts a moment to draw."""
    wait_parts(page)
    time.sleep(seconds)
    wait_idle(page)


def main_slider(page, label: str):
    """The range input of the main-area slider labelled ``label``."""
    widget = page.locator("[data-testid='stMain'] [data-testid='stSlider']").filter(
        has=page.locator("[data-testid='stWidgetLabel']", has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")))
    return widget.first.locator("input[type='range']").first


def tour_label(page) -> str:
    """The "Tour i/n" label of the tour banner ('' when no tour is on)."""
    strong = page.locator("[data-testid='stMain'] strong").filter(has_text=re.compile(r"(Tour|导览) \d+/\d+"))
    return strong.first.inner_text().strip() if strong.count() else ""


def share_dialog(page) -> str:
    """Open the share dialog (the header's button in presenter mode, else the sidebar's); return its link."""
    header = page.locator(".st-key-share_room_main button")
    button = header.first if header.count() else page.locator(".st-key-share_room button").first
    before = page.evaluate("window.__runs")
    button.click()
    page.wait_for_function(f"() => window.__runs > {before} && window.__state === 'notRunning'")
    page.wait_for_selector("[role='dialog'] .st-key-share_qr img")
    page.wait_for_function("() => [...document.querySelectorAll('[role=dialog] .st-key-share_qr img')]"
                           ".every((i) => i.complete && i.naturalWidth > 0)")
    return page.locator("[role='dialog'] .st-key-share_link code").inner_text().strip()


def decode_qr(page, name: str) -> str:
    """Screenshot the QR code as the room sees it and decode it with zbarimg."""
    zbarimg = shutil.which("zbarimg")
    if zbarimg is None:
        pytest.fail("zbarimg is missing: run scripts/ensure_chromium.sh (it installs zbar-tools)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}-qr.png"
    page.locator("[role='dialog'] .st-key-share_qr img").screenshot(path=path)
    out = subprocess.run([zbarimg, "--raw", "-q", str(path)], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip(), f"zbarimg could not read {path}: {out.stderr}"
    return out.stdout.strip()


def connection_state(page) -> str:
    return page.evaluate("document.querySelector('[data-testid=stApp]')?.getAttribute('data-test-connection-state')")
