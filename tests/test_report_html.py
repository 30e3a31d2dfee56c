"""report.html renders in a real browser: every table and every embedded image (headless Chromium)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from semgan.compare import compare
from semgan.config import apply_overrides, get_preset

CHROMIUM = Path("/usr/bin/chromium")  # Debian's `chromium` package

# Appended to a copy of the report (the report itself carries no script): after the load event, which waits
# for every image, it writes what rendered into the DOM, where --dump-dom shows it.
PROBE = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const loaded = images.filter(im => im.complete && im.naturalWidth > 0 && im.getBoundingClientRect().width > 0);
  const probe = document.createElement("pre");
  probe.id = "probe";
  probe.textContent = JSON.stringify({
    images: images.length,
    loaded: loaded.length,
    broken: images.filter(im => !loaded.includes(im)).map(im => im.alt),
    alts: images.map(im => im.alt),
    widths: Object.fromEntries(images.map(im => [im.alt, im.naturalWidth])),
    headings: Array.from(document.querySelectorAll("h2")).map(h => h.textContent),
    grid_columns: Array.from(document.querySelectorAll("table.grids thead th")).map(th => th.textContent),
    tables: document.querySelectorAll("table").length,
    rows: document.querySelectorAll("table tbody tr").length,
    first_table: Array.from(document.querySelectorAll("table:not(.grids)")[0].querySelectorAll("tbody tr"))
      .map(tr => tr.cells[0].textContent),
  });
  document.body.appendChild(probe);
});
</script>"""


def render_in_chromium(page: Path, profile: Path) -> dict[str, Any]:
    """Load ``page`` in headless Chromium and return what the probe script saw."""
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={profile}", "--virtual-time-budget=10000", "--dump-dom",
           page.as_uri()]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    match = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert match, f"the probe did not run (exit {done.returncode}): {done.stderr[-2000:]}"
    return dict(json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&")))


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.is_file(), reason="needs headless Chromium: apt-get install -y chromium")
def test_report_html_renders_tables_and_images(tmp_path: Path) -> None:
    cfg = apply_overrides(get_preset("tiny"), {"train.steps": 2, "train.device": "cpu", "eval.every": 1,
                                               "eval.n": 16, "eval.metrics": "swd,ms_ssim,semantic"})
    out = compare(cfg, tmp_path / "cmp", progress=False)
    html = (out / "report.html").read_text()
    assert re.findall(r'<img src="([a-z]+):', html) == ["data"] * html.count("<img"), "images are inlined"

    # A copy elsewhere: the page must render with no folder beside it.
    alone = tmp_path / "alone"
    alone.mkdir()
    page = alone / "report.html"
    page.write_text(html.replace("</body>", PROBE + "</body>"))
    seen = render_in_chromium(page, tmp_path / "chromium-profile")
    assert seen["loaded"] == seen["images"], f"images that did not render: {seen['broken']}"
    # Samples first: SemGAN, GAN and real maps side by side, then the class colours, then the numbers.
    assert seen["headings"][:2] == ["Samples", "Results"]
    assert seen["grid_columns"] == ["", "SemGAN", "GAN", "Real data"]
    assert seen["alts"][:3] == ["semgan-s0 latest samples", "gan-s0 latest samples", "real maps"]
    assert seen["alts"][6] == "class colours"
    assert seen["images"] == 11, "2 grids per model and the real grid per row, the legend, 4 plots"
    plots = [alt for alt in seen["alts"] if "against" in alt or "losses" in alt or "shares" in alt]
    assert len(plots) == 4 and all(seen["widths"][alt] == 800 for alt in plots), "plots read at 800 px"
    assert seen["first_table"] == ["SemGAN", "GAN", "GAN, snapped to palette", "Real data"]
    assert seen["tables"] >= 6 and seen["rows"] >= 20
    assert "FID is not computed" in html and "<th>FID</th>" not in html, "no column of dashes, a note why"
