"""The segmenter family: it learns a separable set, scores a real test split, predicts folders, refuses misfits."""

from __future__ import annotations

import json

import pytest
import torch

from semgan.cli import main
from semgan.config import apply_overrides, get_preset
from semgan.data import load_dataset
from semgan.data.shapes import make_shape_pairs
from semgan.errors import SemGANError
from semgan.labels import write_label_png, write_rgb_png
from semgan.model_files import load_model
from semgan.run_dir import RunDir
from semgan.train import train


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    cfg = apply_overrides(get_preset("segmenter-tiny"), {"train.device": "cpu", "train.steps": 150,
                                                         "model.channels": 8, "train.batch": 8, "eval.n": 64})
    return train(cfg, tmp_path_factory.mktemp("seg") / "run", progress=False)


def test_a_tiny_run_learns_a_separable_set(run):
    # Colored Shapes' rendered photos: each class its own colour and texture, so IoU near 1 is reachable
    miou = RunDir(run).read_metric("miou")[-1]
    assert miou["miou"] > 0.9 and miou["miou_pixel_acc"] > 0.97 and len(miou["miou_iou"]) == 4
    assert miou["n"] == 64


def test_predict_a_folder_and_score_it_and_refuse_another_class_set(run, tmp_path, capsys):
    seg = load_model(run)
    pairs = make_shape_pairs(0)
    photos, truth = tmp_path / "photos", tmp_path / "truth"
    photos.mkdir()
    truth.mkdir()
    for i in range(5):
        write_rgb_png(photos / f"p{i}.png", pairs.photos[i])
        write_label_png(truth / f"p{i}.png", pairs.labels[i], seg.palette)
    (truth / "classes.json").write_text(json.dumps({"names": list(seg.class_names), "colors": seg.palette.tolist()}))
    assert main(["segmenter", "predict", str(run), "--photos", str(photos), "--truth", str(truth),
                 "--out", str(tmp_path / "out")]) == 0
    assert "mIoU" in capsys.readouterr().out and len(list((tmp_path / "out" / "labels").glob("*.png"))) == 5
    assert torch.equal(seg(pairs.photos[:5]), seg(pairs.photos[:5])) and seg(pairs.photos[:5]).shape == (5, 64, 64)
    (truth / "classes.json").write_text(json.dumps({"names": ["a", "b"], "colors": [[0, 0, 0], [9, 9, 9]]}))
    assert main(["segmenter", "predict", str(run), "--photos", str(photos), "--truth", str(truth),
                 "--out", str(tmp_path / "out2")]) == 2
    assert "--truth" in capsys.readouterr().err and not (tmp_path / "out2").exists()
    with pytest.raises(SemGANError, match="takes \\(N, 3, 64, 64\\) uint8 photos"):
        seg(pairs.photos[:2, :, :32, :32])


def test_extra_pairs_and_a_share_of_the_data_and_a_test_split(tmp_path, shared_data):
    from semgan.dream import write_dataset
    from semgan.model_files import load_generator, load_translator

    p2p = train(apply_overrides(get_preset("pix2pix-tiny"), {"train.device": "cpu", "train.steps": 1,
                                                              "eval.metrics": ""}), tmp_path / "p2p", progress=False)
    dreamed = write_dataset(load_generator("pretrained:shapes"), load_translator(p2p), 12, tmp_path / "dreamed")
    cfg = apply_overrides(get_preset("segmenter-tiny"), {
        "train.device": "cpu", "train.steps": 2, "model.train_share": 0.25, "model.extra_maps": str(dreamed / "maps"),
        "model.extra_photos": str(dreamed / "photos")})
    train(cfg, tmp_path / "mixed", progress=False)
    n_train = round(0.9 * len(load_dataset("shapes")))
    task = task_of(cfg)
    assert abs(task.train_count - (round(0.25 * n_train) + 12)) <= 2, "a quarter of the real pairs + 12 dreamed"
    mixed = task_of(apply_overrides(cfg, {"model.extra_share": 0.5}))  # half of every batch (4) from the 12 dreamed
    n_real = mixed.train_count - 12
    assert [int((mixed.sampler.next() >= n_real).sum()) for _ in range(5)] == [2] * 5
    with pytest.raises(SemGANError, match="model.extra_share=0.01 of train.batch=4 is 0 pairs"):
        task_of(apply_overrides(cfg, {"model.extra_share": 0.01}))
    with pytest.raises(SemGANError, match="model.extra_maps .* classes"):  # facades maps beside shapes: refused
        train(apply_overrides(get_preset("segmenter-cpu"), {
            "train.device": "cpu", "train.steps": 1, "data.root": str(shared_data / "cmp_facade_base"),
            "model.extra_maps": str(dreamed / "maps"), "model.extra_photos": str(dreamed / "photos")}),
              tmp_path / "bad", progress=False)
    facades = apply_overrides(get_preset("segmenter-cpu"), {
        "train.device": "cpu", "train.steps": 1, "data.root": str(shared_data / "cmp_facade_base"),
        "model.channels": 4})
    task = task_of(facades)  # trained on the train split, tested on the val split: all 378 maps, none twice
    assert len(task.test_labels) < task.train_count and len(task.test_labels) + task.train_count == 378


def task_of(cfg):
    from semgan.tasks import build_task, load_task_data
    from semgan.train.engine import Engine

    return build_task(cfg, load_task_data(cfg), Engine(cfg.train, torch.device("cpu")))


def test_mixed_batches_keep_their_share_and_resume():
    from semgan.data.sampler import MixedSampler

    sampler = MixedSampler(10, 100, 8, 6, torch.Generator().manual_seed(0))
    epoch = torch.cat([sampler.next() for _ in range(5)])  # 5 batches of 2 main + 6 extra indices
    main_idx, extra_idx = epoch[epoch < 10], epoch[epoch >= 10]
    assert sorted(main_idx.tolist()) == list(range(10)), "one epoch of the main pool, none twice"
    assert len(extra_idx) == 30 == len(set(extra_idx.tolist())) and int(extra_idx.max()) < 110
    state = sampler.state_dict()
    ahead = [sampler.next() for _ in range(7)]  # past the main pool's epoch end
    again = MixedSampler(10, 100, 8, 6, torch.Generator().manual_seed(99))
    again.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(ahead, [again.next() for _ in range(7)], strict=True))
    for n_main, batch, extra in ((10, 8, 0), (10, 8, 8), (1, 8, 6)):
        with pytest.raises(SemGANError, match="mixed batch"):
            MixedSampler(n_main, 100, batch, extra, torch.Generator())
    with pytest.raises(SemGANError, match="model.extra_share=0.5 mixes"):
        apply_overrides(get_preset("segmenter-tiny"), {"model.extra_share": 0.5})
