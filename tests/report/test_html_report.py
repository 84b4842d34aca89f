"""report.html: one self-contained file whose every plot renders in headless Chromium."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from lrscout.report.html import render_compare, render_select
from lrscout.selection import CompareEntry, CompareResult, SelectResult, select
from lrscout.task import Task

TASK = Task(dataset="digits", model="simplecnn", optimizer="adam", batch_size=32, limit=300)
IMG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


@pytest.fixture(scope="module")
def result() -> SelectResult:
    return select(TASK, epochs=4, budget=4.0, find_kwargs={"num_iter": 20})


@pytest.fixture(scope="module")
def compared(result: SelectResult) -> CompareResult:
    entry = CompareEntry("adam", "constant", result.lr, result.score, result.val_loss, result.cost_runs,
                         select=result)
    return CompareResult((entry,), result.cost_runs, 1.0, {"task": TASK.to_json(), "epochs": 4})


def images(page: str) -> list[Image.Image]:
    return [Image.open(io.BytesIO(base64.b64decode(b))) for b in IMG.findall(page)]


def test_select_page_is_self_contained_with_four_plots(result: SelectResult) -> None:
    page = render_select(result)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing to fetch
    imgs = images(page)
    assert len(imgs) == 4 and all(im.format == "PNG" and im.width > 300 and im.height > 150 for im in imgs)
    assert f"{result.lr:.4g}" in page and "Recommended learning rate" in page
    assert page.count("<tr") == len(result.candidates) + 1 + len(result.plan.rungs) + 2  # both tables


def test_compare_page_is_self_contained_with_two_plots(compared: CompareResult) -> None:
    page = render_compare(compared)
    assert "<script" not in page and len(images(page)) == 2
    assert "adam-constant/report.html" in page


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--enable-logging=stderr", "--v=0"]
#: Run in the test's copy only: after load, put the count of fully decoded images in the title.
PROBE = ("<script>window.addEventListener('load', () => { const im = [...document.images]; "
         "const ok = im.filter(i => i.complete && i.naturalWidth > 0).length; "
         "document.title = 'IMAGES ' + ok + '/' + im.length; });</script>")


def chromium(page: Path, profile: Path) -> tuple[str, str]:
    proc = subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, proc.stderr


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_reports_render_in_headless_chromium_with_every_plot_and_no_console_error(
        result: SelectResult, compared: CompareResult, tmp_path: Path) -> None:
    for name, page, n_img in (("select", render_select(result), 4), ("compare", render_compare(compared), 2)):
        path = tmp_path / f"{name}.html"
        path.write_text(page, encoding="utf-8")
        dom, stderr = chromium(path, tmp_path / f"profile-{name}")
        assert console_messages(stderr) == [], name
        assert dom.count("<img") == n_img
        probe = tmp_path / f"{name}-probe.html"
        probe.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
        dom, _ = chromium(probe, tmp_path / f"profile-{name}-probe")
        assert f"<title>IMAGES {n_img}/{n_img}</title>" in dom, name
    # the check can fail: a page that logs an error is caught
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><script>console.error('boom')</script></body></html>")
    _, stderr = chromium(bad, tmp_path / "profile-bad")
    assert any("boom" in line for line in console_messages(stderr))


def test_one_entry_point_writes_any_result_s_files(result: SelectResult, compared: CompareResult,
                                                   tmp_path: Path) -> None:
    import json

    import numpy as np

    from lrscout.errors import ConfigError
    from lrscout.report import save
    from lrscout.training import diagnose

    written = {kind: save(obj, tmp_path / kind) for kind, obj in [
        ("select", result), ("compare", compared), ("find", result.find),
        ("diagnosis", diagnose(np.arange(200), np.exp(-np.arange(200) / 50) + 0.1))]}
    assert {k: sorted(p.name for p in v) for k, v in written.items()} == {
        "select": ["model.pt", "report.html", "select.json"], "compare": ["compare.json", "report.html"],
        "find": ["find.json", "find.png"], "diagnosis": ["diagnosis.json", "diagnosis.png"]}
    back = SelectResult.from_json(json.loads((tmp_path / "select" / "select.json").read_text()))
    assert back.lr == result.lr and back.model is None  # read back, it has no network: no model.pt
    assert sorted(p.name for p in save(back, tmp_path / "back")) == ["report.html", "select.json"]
    with pytest.raises(ConfigError, match="no files for a dict"):
        save({}, tmp_path)
