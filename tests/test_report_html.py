"""``genbench report``: one self-contained page (or a Markdown folder) with genbench table's numbers, charts,
curves and every cell's figures; bad input gives one line, damaged runs a report that says what is missing."""

from __future__ import annotations

import html
import io
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from genbench.cli import main
from genbench.reporting.make import write_report
from genbench.reporting.table import load_table
from genbench.results import RESULTS_CSV

MB = 1_000_000


def html_of(*runs: Path, tmp: Path) -> str:
    out = tmp / "report.html"
    write_report(list(runs), out)
    return out.read_text(encoding="utf-8")


def test_the_page_is_self_contained(digits_run: Path, tmp_path: Path) -> None:
    page = html_of(digits_run, tmp=tmp_path)
    assert "default-src 'none'" in page  # the browser itself refuses any request the page would make
    sources = re.findall(r'\ssrc="([^"]*)"', page)
    assert sources and all(s.startswith(("data:image/png;base64,", "data:image/gif;base64,")) for s in sources)
    assert all(h.startswith("#") for h in re.findall(r'\shref="([^"]*)"', page))
    assert "<link" not in page and "url(" not in page and "@import" not in page and "@font-face" not in page
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg\")", page)  # the SVG namespace is a name, not a request


def test_the_table_is_genbench_tables(digits_run: Path, tmp_path: Path) -> None:
    page = html_of(digits_run, tmp=tmp_path)
    table = load_table(digits_run)
    assert table.seeds == 2 and table.intervals  # two seeds: mean ± std and the 95% CI
    for i, row in enumerate(table.rows):
        for j, text in enumerate(row):
            shown = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            if (i, j) in table.best:
                assert f'<span class="best">{shown}</span>' in page
            elif (i, j) in table.ties:
                assert f'<span class="tie">{shown} ≈</span>' in page
            elif j in table.metric_columns:
                assert f">{shown}<" in page
            if (i, j) in table.intervals:
                assert f'<span class="ci">{table.intervals[(i, j)]}</span>' in page
    assert all(html.escape(line) in page for line in table.legend) and html.escape(table.protocol) in page
    assert page.count('<table class="cmp sortable"') == 1


def test_charts_curves_scatter_and_a_section_per_cell(digits_run: Path, tmp_path: Path) -> None:
    page = html_of(digits_run, tmp=tmp_path)
    rows = pd.read_csv(digits_run / RESULTS_CSV)
    assert page.count('<details class="cell"') == len(rows) == 12
    metrics = page.split('id="metrics"')[1].split('id="quality"')[0]
    assert "FID (domain) vs z_dim" in metrics and "error bars: 95% CI over seeds" in metrics
    quality = page.split('id="quality"')[1].split('id="scatter"')[0]
    assert "fid_domain over training" in quality
    assert "precision vs recall (domain)" in page.split('id="scatter"')[1]
    assert page.count("RuntimeError: boom in train_step") >= 4  # every failed cell says why
    ae = page.split('<span class="title">ae · z_dim=2 · seed 0</span>')[1].split("</details>")[0]
    for title in ("Samples", "Samples over training (animation)", "Reconstructions", "Latent interpolations",
                  "Latent map", "losses", "quality: fid_domain"):  # fmt: skip
        assert title in ae, title


def test_markdown_report_is_a_folder_that_renders_with_relative_links(digits_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "md"
    readme = write_report([digits_run], out, "markdown")
    text = readme.read_text(encoding="utf-8")
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert headings[:2] == ["# genbench report", "## Comparison"]  # the table first
    table_start = text.index("| model |")
    assert table_start < text.index("### Metrics against the grid") < text.index("### Cells")
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert len(links) > 40
    for link in links:
        assert not link.startswith(("/", "http")) and ".." not in link, link
        assert (out / link).is_file(), link
    assert any(link.startswith("thumbs/") for link in links) and any(link.endswith(".gif") for link in links)
    assert any(link.startswith("charts/") and link.endswith(".svg") for link in links)
    write_report([digits_run], out, "markdown")  # writing it again over its own README is fine


def _copy(run: Path, to: Path) -> Path:
    shutil.copytree(run, to)
    return to


def _fifty_cells(run: Path, to: Path, noise: bool) -> Path:
    """A run of 50 cells made of copies of one real ae cell (``noise``: each picture replaced by random pixels,
    which compress to nothing: the worst case for the page's size)."""
    to.mkdir()
    shutil.copy(run / "run.json", to / "run.json")
    frame = pd.read_csv(run / RESULTS_CSV)
    source = frame[(frame["model"] == "ae") & (frame["status"] == "ok")].iloc[0]
    record = json.loads((run / "cells" / source["cell"] / "record.json").read_text())
    rows = []
    for i in range(50):
        cell = f"ae_z_dim={i + 1}_{i:010d}_s0"
        folder = to / "cells" / cell
        shutil.copytree(run / "cells" / source["cell"], folder)
        new = json.loads(json.dumps(record).replace(source["cell"], cell))
        new["hyper"]["z_dim"] = i + 1
        if noise:
            import hashlib

            import numpy as np

            rng = np.random.default_rng(i)
            for name, rel in new["artifacts"].items():
                if rel.endswith(".png"):
                    buf = io.BytesIO()
                    Image.fromarray(rng.integers(0, 256, (400, 400, 3), dtype=np.uint8)).save(buf, format="PNG")
                    (to / rel).write_bytes(buf.getvalue())
                    new["checksums"][name] = {
                        "size": len(buf.getvalue()),
                        "sha256": hashlib.sha256(buf.getvalue()).hexdigest(),
                    }
        (folder / "record.json").write_text(json.dumps(new))
        rows.append({**source.to_dict(), "cell": cell, "z_dim": i + 1, "samples_png": f"cells/{cell}/samples.png"})
    pd.DataFrame(rows).to_csv(to / RESULTS_CSV, index=False)
    return to


@pytest.mark.parametrize("noise", [False, True], ids=["real-pictures", "incompressible-pictures"])
def test_a_50_cell_page_stays_under_10_mb(digits_run: Path, tmp_path: Path, noise: bool) -> None:
    run = _fifty_cells(digits_run, tmp_path / "fifty", noise)
    page = html_of(run, tmp=tmp_path)
    assert len(page.encode()) < 10 * MB
    assert page.count('<details class="cell"') == 50
    assert ("shown at reduced size to keep this page under 10 MB" in page) == noise


# -- bad input -----------------------------------------------------------------------------------------
def _not_a_run(tmp: Path, run: Path) -> list[str]:
    (tmp / "empty").mkdir()
    return ["report", str(tmp / "empty")]


def _twice(tmp: Path, run: Path) -> list[str]:
    return ["report", str(run), str(run / ".." / run.name)]


def _out_is_folder(tmp: Path, run: Path) -> list[str]:
    return ["report", str(run), "-o", str(tmp)]


def _no_cell_column(tmp: Path, run: Path) -> list[str]:
    bad = _copy(run, tmp / "run")
    pd.read_csv(bad / RESULTS_CSV).drop(columns=["cell"]).to_csv(bad / RESULTS_CSV, index=False)
    return ["report", str(bad), "-o", str(tmp / "r.html")]


def _no_rows(tmp: Path, run: Path) -> list[str]:
    bad = _copy(run, tmp / "run")
    (bad / RESULTS_CSV).write_text((run / RESULTS_CSV).read_text().splitlines()[0] + "\n")
    return ["report", str(bad), "-o", str(tmp / "r.html")]


def _garbage(tmp: Path, run: Path) -> list[str]:
    bad = _copy(run, tmp / "run")
    (bad / RESULTS_CSV).write_bytes(b"\xff\xfe\x00\x01garbage\x00" * 50)
    return ["report", str(bad), "-o", str(tmp / "r.html")]


def _markdown_into_a_file(tmp: Path, run: Path) -> list[str]:
    (tmp / "file.md").write_text("x")
    return ["report", str(run), "--format", "markdown", "-o", str(tmp / "file.md")]


def _foreign_readme(tmp: Path, run: Path) -> list[str]:
    (tmp / "notes").mkdir()
    (tmp / "notes" / "README.md").write_text("# my own notes\n")
    return ["report", str(run), "--format", "markdown", "-o", str(tmp / "notes")]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_not_a_run, "not a genbench run (no results.csv); pass a folder `genbench run --out` wrote"),
        (lambda tmp, run: ["report", str(tmp / "nowhere")], "no such folder"),
        (_twice, "given twice"),
        (_out_is_folder, "is a folder; give the page's file name"),
        (_no_cell_column, "results.csv: no 'cell' column; not a results table genbench wrote"),
        (_no_rows, "results.csv: a header and no rows (no cell was recorded)"),
        (_garbage, "results.csv: not a CSV table (binary data)"),
        (_markdown_into_a_file, "not a folder; --format markdown writes a folder"),
        (_foreign_readme, "holds a README.md that genbench did not write"),
        (lambda tmp, run: ["report", str(run), "--format", "pdf"], "Invalid value for '--format'"),
        (lambda tmp, run: ["report"], "Missing argument 'runs'"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    digits_run: Path,
    make: Callable[[Path, Path], list[str]],
    message: str,
) -> None:
    code = main(make(tmp_path, digits_run))
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


def _only_failed(tmp: Path, run: Path, toy: Path) -> tuple[list[Path], list[str]]:
    bad = _copy(run, tmp / "failed-only")
    frame = pd.read_csv(bad / RESULTS_CSV)
    frame[frame["status"] != "ok"].to_csv(bad / RESULTS_CSV, index=False)
    return [bad], ["no cell finished ok (4 cells, 0 ok, 4 failed): nothing to compare", "RuntimeError: boom"]


def _deleted_pictures(tmp: Path, run: Path, toy: Path) -> tuple[list[Path], list[str]]:
    bad = _copy(run, tmp / "deleted")
    cell = next(p for p in sorted((bad / "cells").iterdir()) if p.name.startswith("ae_"))
    (cell / "samples.png").unlink()
    (cell / "latent_map.png").unlink()
    return [bad], [
        f"cells/{cell.name}/samples.png: not on disk (the run wrote it; deleted since?)",
        f"cells/{cell.name}/latent_map.png: not on disk",
        "1 of 12 cells lack files the run wrote",
    ]


def _changed_picture(tmp: Path, run: Path, toy: Path) -> tuple[list[Path], list[str]]:
    bad = _copy(run, tmp / "changed")
    cell = next(p for p in sorted((bad / "cells").iterdir()) if p.name.startswith("gan_"))
    Image.new("L", (484, 484), 128).save(cell / "samples.png")
    return [bad], [f"cells/{cell.name}/samples.png: changed since the run wrote it"]


def _lost_record_and_manifest(tmp: Path, run: Path, toy: Path) -> tuple[list[Path], list[str]]:
    bad = _copy(run, tmp / "lost")
    (bad / "run.json").unlink()
    cell = next(p for p in sorted((bad / "cells").iterdir()) if p.name.startswith("gan_"))
    (cell / "record.json").unlink()
    return [bad], ["run.json is missing", f"cells/{cell.name}/record.json: missing or damaged"]


def _two_datasets(tmp: Path, run: Path, toy: Path) -> tuple[list[Path], list[str]]:
    return [run, toy], ["These runs use different datasets", "digits-run: digits; toy-run: toy2d", "GAN Lab views"]


@pytest.mark.parametrize(
    "make", [_only_failed, _deleted_pictures, _changed_picture, _lost_record_and_manifest, _two_datasets]
)
def test_a_damaged_or_odd_run_gives_a_report_that_says_what_is_missing(
    tmp_path: Path, digits_run: Path, toy_run: Path, make: Callable[[Path, Path, Path], tuple[list[Path], list[str]]]
) -> None:
    runs, phrases = make(tmp_path, digits_run, toy_run)
    page = html_of(*runs, tmp=tmp_path)
    for phrase in phrases:
        assert phrase in page, phrase
    for uri in re.findall(r'src="data:image/(?:png|gif);base64,([^"]+)"', page):  # every picture shown decodes
        import base64

        with Image.open(io.BytesIO(base64.b64decode(uri))) as img:
            img.verify()
