"""`semgan compare` and `semgan report`: paired training, reuse of finished runs, the report's tables and files."""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semgan import compare as compare_mod
from semgan.cli import compare as compare_cli
from semgan.compare import COMPARE_FILE, compare, resolve_config
from semgan.config import apply_overrides, from_dict, get_preset, to_dict
from semgan.errors import SemGANError
from semgan.report import build_report

TINY_ARGS = ["--preset", "tiny", "--steps", "4", "--eval-every", "2", "--metrics", "swd,ms_ssim,semantic,structure",
             "--set", "eval.n=32", "--set", "train.device=cpu", "--no-progress"]  # fmt: skip


def run_cli(argv: list[str]) -> int:
    """The two subcommands behind a parser of their own, with the main CLI's error convention (exit 2)."""
    parser = argparse.ArgumentParser(prog="semgan")
    sub = parser.add_subparsers(dest="command", required=True)
    compare_cli.add_compare(sub)
    compare_cli.add_report(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except SemGANError as exc:
        print(f"semgan: error: {exc}")
        return 2


def md_table(md: str, caption_start: str) -> tuple[list[str], dict[str, list[str]]]:
    """Header and rows (by first cell) of the Markdown table whose caption starts with ``caption_start``."""
    for chunk in md.split("\n\n| ")[1:]:
        table, _, rest = chunk.partition("\n\n")
        if rest.startswith(f"*{caption_start}"):
            lines = ("| " + table).splitlines()
            cells = [[c.strip() for c in line.strip("|").split(" | ")] for line in lines]
            return cells[0], {row[0]: row[1:] for row in cells[2:]}
    raise AssertionError(f"no table captioned {caption_start!r}")


def mtimes(folder: Path) -> dict[str, int]:
    """Modification times of everything training writes that a reused run must leave alone."""
    files = [*folder.glob("*-s*/checkpoints/*.pt"), *folder.glob("*-s*/*.jsonl"), *folder.glob("*-s*/samples/*")]
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in files}


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished tiny comparison (4 steps, evaluated at 2 and 4), built through the CLI."""
    out = tmp_path_factory.mktemp("compare") / "cmp"
    assert run_cli(["compare", "--out", str(out), *TINY_ARGS]) == 0
    return out


def test_compare_trains_both_models_and_reports(compared: Path) -> None:
    doc = json.loads((compared / COMPARE_FILE).read_text())
    assert [r["name"] for r in doc["runs"]] == ["semgan-s0", "gan-s0"]
    cfg = from_dict(doc["config"])
    assert (cfg.train.steps, cfg.eval.every, cfg.eval.metrics) == (4, 2, ("swd", "ms_ssim", "semantic", "structure"))
    for run in doc["runs"]:
        (session,) = run["sessions"]
        assert (session["from_step"], session["to_step"]) == (0, 4) and session["wall_s"] > 0
        run_cfg = from_dict(json.loads((compared / run["name"] / "config.json").read_text())["config"])
        assert run_cfg.model.mode == run["mode"] and run_cfg.train.seed == 0
        assert to_dict(compare_mod.run_config(cfg, compare_mod.RunSpec("semgan", 0))) == {
            **to_dict(run_cfg), "model": {**to_dict(run_cfg)["model"], "mode": "semgan"}
        }, "the two runs differ in model.mode only"
    assert 0.0 < doc["real"]["ms_ssim"] < 1.0 and doc["real"]["n"] == 32
    floor = doc["real"]["swd_floor"]
    assert floor["n"] == 32 and floor["swd"]["avg"] > 0, "two disjoint halves of eval.n reals each"

    md = (compared / "report.md").read_text()
    header, rows = md_table(md, "Table 1.")
    assert header == ["Model", "MS-SSIM", "MS-SSIM gap", "SWD 16", "SWD 32", "SWD 64", "SWD avg"], "no FID column"
    assert "FID is not computed in this comparison (`eval.metrics` = swd,ms_ssim,semantic,structure)" in md
    assert set(rows) == {"SemGAN", "GAN", "GAN, snapped to palette", "Real data"}
    assert rows["Real data"][0] == f"{doc['real']['ms_ssim']:.4f}"
    assert rows["Real data"][2:] == [f"{floor['swd'][k]:.1f}" for k in ("16", "32", "64", "avg")], "SWD floor"
    assert not any(rows[m][0].startswith("**") for m in rows), "raw MS-SSIM is read against the reals, not ranked"
    for j in range(1, len(header) - 1):
        bold = [rows[m][j].startswith("**") for m in ("SemGAN", "GAN")]
        assert sum(bold) == 1, f"exactly one of SemGAN / GAN is bold in column {header[j + 1]}"
    # MS-SSIM: the best is the evaluation closest to the reals' value, and the raw value shown is that one's
    ms = [json.loads(x) for x in (compared / "gan-s0" / "metric-ms_ssim.jsonl").read_text().splitlines()]
    closest = min(ms, key=lambda x: x["ms_ssim_gap"])
    assert [c.strip("*") for c in rows["GAN"][0:2]] == [f"{closest['ms_ssim']:.4f}", f"{closest['ms_ssim_gap']:.4f}"]
    # The best-during-training SWD avg of a run is the minimum of its logged values.
    swd = [json.loads(x)["swd"]["avg"] for x in (compared / "gan-s0" / "metric-swd.jsonl").read_text().splitlines()]
    assert rows["GAN"][-1].strip("*") == f"{min(swd):.1f}"
    _, final = md_table(md, "Table 2.")
    assert final["GAN"][-1].strip("*") == f"{swd[-1]:.1f}"
    _, semantic = md_table(md, "Table 3.")
    assert semantic["SemGAN"][0] == "**1.0000**", "SemGAN draws palette colours only"
    assert "| background |" in md and "Hardware" in md and "wall time" in md
    header, structure = md_table(md, "Table 5.")
    assert header == ["Model", "count TV", "fragments", "one per class ↑", "rarest class ↑"]
    st = json.loads((compared / "semgan-s0" / "metric-structure.jsonl").read_text().splitlines()[-1])["structure"]
    assert structure["Real data"][1] == f"{st['fragments_real']:.3f}", "the reals' own values"
    assert structure["Real data"][3] == f"{st['presence_min_real']:.3f}"
    _, presence = md_table(md, "Share of maps containing each class")
    assert presence["background"][:2] == ["100.0%", f"{100 * st['presence'][0]:.1f}%"]

    for name in ("swd", "metrics", "losses", "class-shares"):
        with Image.open(compared / "plots" / f"{name}.png") as im:
            assert im.format == "PNG" and im.width > 300
    for run in ("semgan-s0", "gan-s0"):
        for kind in ("latest", "best-swd"):
            assert f"grids/{run}-{kind}.png" in md
            assert (compared / "grids" / f"{run}-{kind}.png").is_file()
    html = (compared / "report.html").read_text()
    # Samples first, each row beside the same 16 real maps; then the class colours.
    assert md.index("## Samples") < md.index("## Results")
    assert md.count("](grids/real.png)") == 2 and "![class colours](grids/legend.png)" in md
    with Image.open(compared / "grids" / "real.png") as im:
        assert im.size == (4 * 66 + 2, 4 * 66 + 2), "the sample grids' layout"
    assert html.count('src="data:image/png;base64,') == 11 and 'src="grids/' not in html, "self-contained"


def test_best_swd_grid_is_the_grid_training_wrote_at_that_step(compared: Path) -> None:
    md = (compared / "report.md").read_text()
    for run, label in (("semgan-s0", "SemGAN"), ("gan-s0", "GAN")):
        lines = [json.loads(x) for x in (compared / run / "metric-swd.jsonl").read_text().splitlines()]
        best = min(lines, key=lambda x: x["swd"]["avg"])["step"]
        assert f"{label}: best SWD avg, step {best}" in md, "rendered from checkpoints/best-swd.pt"
        sample = compared / run / "samples" / f"step-{best:06d}.png"
        if sample.is_file():  # tiny writes sample grids at steps 0 and 4 only
            rendered = np.asarray(Image.open(compared / "grids" / f"{run}-best-swd.png"))
            assert np.array_equal(rendered, np.asarray(Image.open(sample)))


def test_second_compare_reuses_finished_runs(compared: Path, tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    shutil.copytree(compared, out)
    before = mtimes(out)
    sessions = json.loads((out / COMPARE_FILE).read_text())["runs"]
    assert run_cli(["compare", "--out", str(out), *TINY_ARGS]) == 0
    assert mtimes(out) == before, "a finished run is not retrained"
    assert json.loads((out / COMPARE_FILE).read_text())["runs"] == sessions, "no new training session"
    # And `report` rebuilds the whole report from the runs alone.
    for path in ("report.md", "report.html", "plots", "grids"):
        shutil.rmtree(out / path) if (out / path).is_dir() else (out / path).unlink()
    assert run_cli(["report", str(out)]) == 0
    assert mtimes(out) == before
    assert (out / "report.md").read_text() == (compared / "report.md").read_text()
    assert (out / "plots" / "swd.png").is_file() and (out / "grids" / "gan-s0-best-swd.png").is_file()


def test_compare_extends_steps_and_keeps_the_schedule(compared: Path, tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    shutil.copytree(compared, out)
    # No --eval-every: the saved schedule (every 2) is kept rather than re-derived from the new step count.
    cfg = apply_overrides(get_preset("tiny"), {"train.steps": 6, "train.device": "cpu", "eval.n": 32,
                                               "eval.metrics": "swd,ms_ssim,semantic,structure"})
    compare(cfg, out, progress=False)
    doc = json.loads((out / COMPARE_FILE).read_text())
    assert from_dict(doc["config"]).eval.every == 2
    for run in doc["runs"]:
        assert [(s["from_step"], s["to_step"]) for s in run["sessions"]] == [(0, 4), (4, 6)]
        steps = [json.loads(x)["step"] for x in (out / run["name"] / "metric-swd.jsonl").read_text().splitlines()]
        assert steps == [2, 4, 6]
    _, rows = md_table((out / "report.md").read_text(), "Table 1.")
    assert set(rows) >= {"SemGAN", "GAN"}
    assert "Table 2. The same at the end of training (step 6" in (out / "report.md").read_text()


def test_compare_refuses_a_different_configuration(compared: Path, tmp_path: Path) -> None:
    base = apply_overrides(get_preset("tiny"), {"train.steps": 4, "train.device": "cpu", "eval.n": 32,
                                                "eval.every": 2, "eval.metrics": "swd,ms_ssim,semantic,structure"})
    with pytest.raises(SemGANError, match=r"train\.lr \(saved 0\.0002, now 0\.001\)"):
        compare(apply_overrides(base, {"train.lr": 1e-3}), compared, progress=False)
    with pytest.raises(SemGANError, match=r"eval\.n .*model\.ks|model\.ks .*eval\.n"):
        compare(apply_overrides(base, {"model.ks": 5, "eval.n": 16}), compared, progress=False)
    with pytest.raises(SemGANError, match="may only grow"):
        compare(apply_overrides(base, {"train.steps": 2}), compared, progress=False)
    with pytest.raises(SemGANError, match="training run folder"):
        compare(base, compared / "gan-s0", progress=False)
    with pytest.raises(SemGANError, match="at least 1"):
        compare(base, tmp_path / "new", seeds=0, progress=False)
    assert not (tmp_path / "new").exists()


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["compare", "--out", str(tmp_path / "x"), "--steps", "4"]) == 2
    assert "--preset is required" in capsys.readouterr().out
    assert run_cli(["compare", "--preset", "tiny", "--out", str(tmp_path / "x"), "--metrics", "swd,nope"]) == 2
    assert "unknown metric 'nope'" in capsys.readouterr().out
    assert run_cli(["compare", "--preset", "tiny", "--out", str(tmp_path / "x"), "--metrics", "swd,l1"]) == 2
    assert "metric 'l1' compares paired images" in capsys.readouterr().out
    assert run_cli(["report", str(tmp_path)]) == 2
    assert "not a compare folder" in capsys.readouterr().out
    assert not (tmp_path / "x").exists(), "nothing is written before the arguments are checked"


def test_resolve_config_defaults() -> None:
    tiny = get_preset("tiny")
    cfg = resolve_config(apply_overrides(tiny, {"model.mode": "gan", "train.steps": 200}))
    assert cfg.model.mode == "semgan" and cfg.eval.metrics == ("swd", "ms_ssim", "semantic", "structure")
    assert cfg.eval.every == 20
    assert resolve_config(apply_overrides(tiny, {"train.steps": 3})).eval.every == 1
    saved = apply_overrides(tiny, {"eval.every": 7, "eval.metrics": "swd"})
    again = resolve_config(apply_overrides(tiny, {"train.steps": 400}), saved)
    assert (again.eval.every, again.eval.metrics) == (7, ("swd",))
    explicit = resolve_config(apply_overrides(tiny, {"eval.every": 3, "eval.metrics": "semantic"}), saved)
    assert (explicit.eval.every, explicit.eval.metrics) == (3, ("semantic",))


# ------------------------------------------------------------------------------ several seeds, from fake logs


def _fake_run(out: Path, name: str, mode: str, seed: int, swd_avg: list[float], fsd: list[float]) -> None:
    """A run folder with the files training writes, minus checkpoints and TensorBoard; evaluated at 5 and 10."""
    run = out / name
    (run / "samples").mkdir(parents=True)
    cfg = apply_overrides(get_preset("tiny"), {"model.mode": mode, "train.seed": seed, "train.steps": 10})
    (run / "config.json").write_text(json.dumps({"config": to_dict(cfg), "dataset": {"class_names": ["a", "b"]}}))
    swd_lines, sem_lines = [], []
    for step, avg, f in zip((5, 10), swd_avg, fsd, strict=True):
        levels = {"64": avg + 1, "32": avg, "16": avg - 1, "avg": avg}
        entry = {"step": step, "swd": levels, "n": 16}
        if mode == "gan":
            entry["snapped"] = {k: v * 2 for k, v in levels.items()}
        swd_lines.append(entry)
        sem_lines.append({"step": step, "n": 16, "semantic": {
            "class_share_real": [0.75, 0.25], "class_share_fake": [0.5, 0.5], "class_share_l1": 0.5,
            "class_share_js": 0.1, "fsd": f, "validity_real": 1.0, "validity_fake": 1.0 if mode == "semgan" else 0.5,
        }})  # fmt: skip
    for metric, lines in (("swd", swd_lines), ("semantic", sem_lines)):
        (run / f"metric-{metric}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    stats = [{"step": s, "loss_D": 1.0, "loss_G": 0.1, "D_real": 0.6, "D_fake": 0.4, "steps_per_s": 5.0}
             for s in (5, 10)]  # fmt: skip
    (run / "stats.jsonl").write_text("".join(json.dumps(x) + "\n" for x in stats))
    grid = np.full((20, 20, 3), 40 * seed, dtype=np.uint8)
    for step in (0, 4, 10):
        Image.fromarray(grid).save(run / "samples" / f"step-{step:06d}.png")
    Image.fromarray(grid).save(run / "grid.png")


def test_report_with_several_seeds(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    fake = {  # name: (swd avg at steps 5 and 10, fsd at steps 5 and 10)
        "semgan-s0": ([10.0, 12.0], [0.1, 0.2]), "gan-s0": ([30.0, 20.0], [0.5, 0.4]),
        "semgan-s1": ([16.0, 14.0], [0.3, 0.1]), "gan-s1": ([40.0, 50.0], [0.6, 0.9]),
    }  # fmt: skip
    runs = []
    for name, (swd_avg, fsd) in fake.items():
        mode, seed = name.split("-s")
        _fake_run(out, name, mode, int(seed), swd_avg, fsd)
        runs.append({"name": name, "mode": mode, "seed": int(seed), "sessions": []})
    runs.append({"name": "semgan-s2", "mode": "semgan", "seed": 2, "sessions": []})  # never started
    cfg = apply_overrides(get_preset("tiny"), {"train.steps": 10, "eval.every": 5, "eval.metrics": "swd,semantic"})
    doc = {"format": 1, "config": to_dict(cfg), "runs": runs,
           "dataset": {"name": "shapes", "count": 99, "resolution": 64, "class_names": ["a", "b"]}}
    (out / COMPARE_FILE).write_text(json.dumps(doc))

    md = build_report(out).read_text()
    _, best = md_table(md, "Table 1.")
    # Per seed, best = min over steps: SemGAN 10 and 14 -> 12.0 ± 2.8; GAN 20 and 40 -> 30.0 ± 14.1.
    assert best["SemGAN"][-1] == "**12.0 ± 2.8**" and best["GAN"][-1] == "30.0 ± 14.1"
    assert best["GAN, snapped to palette"][-1] == "60.0 ± 28.3"
    assert "Real data" not in best, "no MS-SSIM was evaluated"
    _, final = md_table(md, "Table 2.")
    assert final["SemGAN"][-1] == "**13.0 ± 1.4**" and final["GAN"][-1] == "35.0 ± 21.2"
    _, best_seed = md_table(md, "Table 2b.")
    assert best_seed["SemGAN"][-1] == "**10.0**" and best_seed["GAN"][-1] == "20.0"
    header, semantic = md_table(md, "Table 3.")
    assert semantic["SemGAN"][header.index("label validity ↑") - 1] == "**1.0000 ± 0.0000**"
    assert semantic["SemGAN"][header.index("FSD") - 1] == "**0.1 ± 0**"
    _, shares = md_table(md, "Per-class pixel shares")
    assert shares["a"] == ["75.00%", "50.00%", "50.00%"]
    assert "semgan-s2 (not started)" in md and "from stats.jsonl" in md
    assert "mean ± std over 2 seeds" in md, "a seed whose runs never started is not counted"
    # Without checkpoints the best-SWD grid is the nearest sample grid (best SWD at step 5: sample step 4).
    assert re.search(r"SemGAN: step 4, the sample step nearest the best SWD avg \(step 5\)", md)
    assert (out / "grids" / "gan-s1-best-swd.png").is_file() and (out / "plots" / "swd.png").is_file()
    assert "seed 2" not in md.split("## Samples")[1].split("## Protocol")[0], "no grids for a run never started"


def test_the_loss_plot_names_the_losses_the_runs_trained_with():
    from typing import get_args

    from semgan.config.schema import DLoss, GLoss
    from semgan.report.plots import LOSS_NAMES, _loss_title

    assert set(get_args(GLoss)) | set(get_args(DLoss)) <= set(LOSS_NAMES)
    assert _loss_title("G", {"ns"}) == "G loss (non-saturating)"
    assert _loss_title("D", {"hinge", "bce"}) == "D loss (BCE / hinge)"
