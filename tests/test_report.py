"""aigc report: one self-contained HTML file per run, for both families, also while a run is in progress."""

import dataclasses
import shutil
import sys
from html.parser import HTMLParser

import pytest
from tests.conftest import tiny_gan
from tests.training.test_checkpoint import TINY

from aigc.cli import main as aigc
from aigc.core.errors import UserError
from aigc.report import write_report
from aigc.runs import train


class Page(HTMLParser):
    """The <img> sources and the text of an HTML page."""

    def __init__(self, text: str):
        super().__init__()
        self.images, self.text = [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def diffusion_report_run(tmp_path_factory):
    """Long enough to log training metrics (every 62 steps of 16) with two in-loop evaluations, three snapshots."""
    train_config = dataclasses.replace(TINY.train, budget=1200, snapshot_every=400, eval_every=600, eval_n=50)
    run_dir = tmp_path_factory.mktemp("report") / "diffusion"
    train(dataclasses.replace(TINY, train=train_config), run_dir, progress=False)
    return run_dir


@pytest.fixture(scope="module")
def gan_report_run(tmp_path_factory):
    config = tiny_gan("stable")
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, budget=1200, snapshot_every=600))
    run_dir = tmp_path_factory.mktemp("report") / "gan"
    train(config, run_dir, progress=False)
    return run_dir


def test_a_diffusion_report_embeds_curves_and_every_snapshot(diffusion_report_run):
    assert aigc(["report", str(diffusion_report_run)]) == 0
    page = Page((diffusion_report_run / "report.html").read_text())
    snapshots = len(list((diffusion_report_run / "samples").glob("*.png")))
    assert snapshots == 3
    curves = 4  # losses, learning rate, images/s, FID with class entropy
    assert len(page.images) == curves + snapshots
    assert all(src.startswith("data:image/png;base64,") for src in page.images)  # self-contained
    text = " ".join(page.text)
    assert "diffusion on digits, 8px" in text and "best fid" in text and "torch_threads" in text
    assert '"family": "diffusion"' in text


def test_a_gan_report_and_one_of_a_run_in_progress(gan_report_run, tmp_path):
    running = tmp_path / "running"
    shutil.copytree(gan_report_run, running)
    with open(running / "metrics.jsonl", "a") as f:
        f.write('{"step": 80, "loss_d": 0.5')  # the line the trainer is writing right now
    page = Page(write_report(running).read_text())
    assert len(page.images) == 3 + 2  # losses (D, G, R1), learning rate, images/s; two snapshots
    assert "gan (stable recipe)" in " ".join(page.text)


def test_without_matplotlib_the_report_says_what_to_install(diffusion_report_run, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(UserError, match=r"pip install 'aigc\[report\]'"):
        write_report(diffusion_report_run, tmp_path / "r.html")
    with pytest.raises(UserError, match="not a run directory"):
        write_report(tmp_path)


def test_reports_render_in_a_browser_and_the_slider_walks_the_snapshots(
    browser, artifacts, diffusion_report_run, gan_report_run
):
    for name, run in (("diffusion", diffusion_report_run), ("gan", gan_report_run)):
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(write_report(run, run / "report.html").as_uri())
        visible = "[...document.querySelectorAll('img.snap')].filter(g => !g.hidden).map(g => g.dataset.step)"
        last = sorted(p.stem for p in (run / "samples").glob("*.png"))[-1]
        assert page.evaluate(visible) == [str(int(last))]
        page.fill("#snapshot", "0")  # a range input: moves the slider and fires 'input'
        first = sorted(p.stem for p in (run / "samples").glob("*.png"))[0]
        assert page.evaluate(visible) == [str(int(first))]
        assert page.inner_text("#snapshot-label").startswith(f"step {int(first)} (")
        assert page.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
        page.screenshot(path=artifacts / f"report-{name}.png", full_page=True)
