"""Training that keeps every class: the class prior (SemGAN's generator held to the data's class statistics)
and the collapse guard (a rollback to the last healthy checkpoint when an evaluation finds a lost class)."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch
from helpers import assert_same_state

from semgan.checkpoint import load_checkpoint
from semgan.config import apply_overrides
from semgan.data import LabelDataset, load_dataset
from semgan.errors import SemGANError
from semgan.losses import class_prior, log_soft_presence
from semgan.metrics.structure import lost_classes
from semgan.run_dir import RunDir
from semgan.tasks.semgan import SemGANTask
from semgan.train import TrainingCollapsed, train
from semgan.train.engine import Engine

# ------------------------------------------------------------------------------------------------- the prior


def test_lost_classes_are_common_in_the_reals_and_missing_from_the_samples():
    presence_real = [1.0, 0.5, 0.05, 0.1, 0.9]
    presence = [0.5, 0.019, 0.0, 0.01, 0.02]
    # class 2 is rare in the data (5% < 10%): its absence is not counted; 4 at exactly 2% is drawn
    assert lost_classes(presence, presence_real) == [1, 3]
    with pytest.raises(SemGANError, match="same class set"):
        lost_classes([1.0], [1.0, 1.0])


def test_dataset_class_presence_counts_maps_not_pixels():
    labels = torch.zeros(4, 3, 3, dtype=torch.uint8)
    labels[1, 0, 0] = 1  # one pixel of class 1 in map 1
    labels[2] = 1  # map 2 all class 1
    labels[3, 1, 1] = 2
    ds = LabelDataset("t", labels, ("a", "b", "c", "never"), torch.zeros(4, 3, dtype=torch.uint8))
    assert ds.class_presence().tolist() == [0.75, 0.5, 0.25, 0.0]


def test_soft_presence_needs_a_filled_window_not_a_pixel():
    def presence(mask: torch.Tensor) -> float:  # (16, 16) bool: where class 1 is drawn, with certainty
        probs = torch.stack([~mask, mask]).float()[None]
        return log_soft_presence(probs.clamp(min=1e-30).log()).exp()[0, 1].item()

    blob, pixel, nothing = (torch.zeros(16, 16, dtype=torch.bool) for _ in range(3))
    blob[4:8, 4:8] = True
    pixel[9, 9] = True
    assert presence(blob) > 0.95  # 4 of the 196 windows are full; softmax(mean / 0.1) weighs them most
    assert presence(pixel) < 0.02, "a lone pixel fills a ninth of 9 windows of 196: next to nothing"
    assert presence(nothing) < 1e-20


def test_class_prior_against_a_hand_computation():
    # three 5x5 maps, two classes, logits 4 for the drawn class: maps 0 and 1 all class 0, map 2 a 3x3 block of
    # class 1 in its top-left corner; the data: half of the pixels and every map for each class
    K, H, L = 2, 5, 4.0
    drawn = torch.zeros(3, H, H, dtype=torch.long)
    drawn[2, :3, :3] = 1
    logits = (torch.nn.functional.one_hot(drawn, K).permute(0, 3, 1, 2).float() * L).requires_grad_(True)
    shares, presence = torch.tensor([0.5, 0.5]), torch.tensor([1.0, 1.0])
    loss = class_prior(logits, shares, presence)

    hi = 1 / (1 + math.exp(-L))  # softmax of the drawn class; 1 - hi of the other
    p1 = [[[hi if drawn[m, y, x] == 1 else 1 - hi for x in range(H)] for y in range(H)] for m in range(3)]
    s1 = sum(v for m in p1 for row in m for v in row) / (3 * H * H)  # class 1's expected share

    def soft_presence(p: list[list[float]]) -> float:  # mean of each 3x3 window, soft max-pooled at 0.1
        means = [sum(p[y + i][x + j] for i in range(3) for j in range(3)) / 9 for y in range(H - 2)
                 for x in range(H - 2)]
        weights = [math.exp(v / 0.1) for v in means]
        return sum(v * w for v, w in zip(means, weights, strict=True)) / sum(weights)

    r1 = sum(soft_presence(m) for m in p1) / 3  # class 1's presence rate
    assert s1 < 0.25 and r1 < 0.5, "class 1 is under half its share and its presence rate: both terms act"
    expected = 0.5 * (math.log(0.25) - math.log(s1)) + 1.0 * (math.log(0.5) - math.log(r1))  # class 0: above both
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    # more of class 1 lowers the loss: its logits are pushed up wherever it is missing
    assert bool((logits.grad[:2, 1] < 0).all())
    assert class_prior(logits.detach()[:, [1, 0]], shares, presence).item() > 0, "now class 0 is short"
    assert class_prior(logits.detach(), torch.tensor([0.9, 0.1]), torch.tensor([1.0, 0.3])).item() == 0.0


@pytest.mark.parametrize("channels_last", [False, True])
def test_window_mean_is_avg_pool2d_bit_for_bit(channels_last):
    # The class prior's measured runs were trained with F.avg_pool2d: the faster window mean must not move a bit
    # of them, forward or backward (the prior's gradient path).
    from semgan.losses import window_mean

    g = torch.Generator().manual_seed(0)
    for shape in [(32, 4, 64, 64), (3, 12, 17, 9)]:
        x = torch.rand(shape, generator=g)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        ya, yb = torch.nn.functional.avg_pool2d(a, 3, stride=1), window_mean(b, 3)
        grad = torch.randn(ya.shape, generator=g)
        ya.backward(grad)
        yb.backward(grad)
        assert torch.equal(ya, yb) and torch.equal(a.grad, b.grad)


def test_the_fast_floor_check_decides_as_the_log_space_prior():
    from semgan.losses import PRIOR_MARGIN, _above_floor, _class_prior, window_mean
    from semgan.parallel import LOCAL

    x = torch.rand(2, 3, 9, 7, generator=torch.Generator().manual_seed(0))
    assert torch.equal(window_mean(x, 3), torch.nn.functional.avg_pool2d(x, 3, stride=1))
    ds = load_dataset("shapes")
    maps = ds.labels[:32].long()
    shares, presence = (torch.from_numpy(x).float() for x in (ds.class_shares(), ds.class_presence()))
    rng = torch.Generator().manual_seed(1)
    decisions = []
    for i in range(64):  # the data's maps, blurred by noise, at several sharpnesses, one class pushed down or not
        onehot = torch.nn.functional.one_hot(maps, 4).permute(0, 3, 1, 2).float()
        logits = onehot * (1.0, 3.0, 6.0, 12.0)[i % 4] + torch.randn(onehot.shape, generator=rng)
        logits[:, 1 + i % 3] -= 6 * torch.rand((), generator=rng) * (i % 2)
        fast = _above_floor(logits, shares, presence, LOCAL, PRIOR_MARGIN)
        assert fast == (not bool(_class_prior(logits, shares, presence, LOCAL, PRIOR_MARGIN) > 0))
        decisions.append(fast)
    assert any(decisions) and not all(decisions), "both sides of the floor were tried"


def test_class_prior_is_zero_on_the_datas_own_maps():
    ds = load_dataset("shapes")
    sub = dataclasses.replace(ds, labels=ds.labels[:256])
    logits = torch.nn.functional.one_hot(sub.labels.long(), 4).permute(0, 3, 1, 2).float() * 60.0
    shares, presence = (torch.from_numpy(x).float() for x in (sub.class_shares(), sub.class_presence()))
    assert class_prior(logits, shares, presence).item() == 0.0
    assert class_prior(logits[:, [0, 2, 1, 3]], shares, presence).item() == 0.0, "circles <-> rectangles: within half"
    # rectangles <-> squares: the rectangles' share falls to the squares' 2.3%, under half their 5.7%
    assert 0 < class_prior(logits[:, [0, 1, 3, 2]], shares, presence).item() < 0.05
    without_squares = logits.clone()
    without_squares[:, 0] += without_squares[:, 3]
    without_squares[:, 3] = 0.0
    assert class_prior(without_squares, shares, presence).item() > 10.0


def test_class_prior_above_the_floor_adds_no_graph_and_changes_no_gradient_bit():
    # healthy training: the floor is read without a graph; the gradient equals the one of the full graph
    from semgan.losses import LOCAL, PRIOR_MARGIN, _class_prior
    logits = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    shares, presence = torch.tensor([0.3, 0.3, 0.3]), torch.tensor([0.3, 0.3, 0.3])
    prior = class_prior(logits, shares, presence)
    assert prior.item() == 0.0 and prior.grad_fn is None
    def other() -> torch.Tensor:  # stands in for G's adversarial loss
        return (logits.sin() * 1e-3).sum()

    (fast,) = torch.autograd.grad(other() + 0.01 * prior, logits)
    (full,) = torch.autograd.grad(other() + 0.01 * _class_prior(logits, shares, presence, LOCAL, PRIOR_MARGIN),
                                  logits)
    assert torch.equal(fast, full)


def test_class_prior_without_its_check_has_the_same_value_and_gradient():
    from semgan.losses import LOCAL, PRIOR_MARGIN, _class_prior
    logits = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    for shares in (torch.tensor([0.3, 0.3, 0.3]), torch.tensor([0.1, 0.1, 0.8])):  # above the floor; below it
        presence = torch.tensor([0.3, 0.3, 0.3])
        unchecked = class_prior(logits, shares, presence, check=False)
        assert unchecked.grad_fn is not None, "not read first: the full graph"
        assert torch.equal(unchecked, class_prior(logits, shares, presence))
        (a,) = torch.autograd.grad(unchecked, logits)
        (b,) = torch.autograd.grad(_class_prior(logits, shares, presence, LOCAL, PRIOR_MARGIN), logits)
        assert torch.equal(a, b)


def test_the_check_skipped_after_a_step_the_prior_acted_changes_no_bit(tiny_cfg):
    # The task skips the floor check on the step after one where the prior acted; the same run with the
    # check on every step holds the same bits (fresh networks: the prior acts on some steps and not others).
    cfg = apply_overrides(tiny_cfg, {"model.class_prior": 1.0})

    def run(always_check: bool) -> tuple[dict, list[bool]]:
        task = SemGANTask(cfg, load_dataset("shapes"), Engine(cfg.train, torch.device("cpu")))
        torch.manual_seed(0)  # the step's noise draws from the global stream
        acted = []
        for step in range(8):
            if always_check:
                task.prior_acted = False
            stats = task.train_step(step)
            assert task.prior_acted == (stats["loss_prior"].item() > 0)
            acted.append(task.prior_acted)
        assert task.state_dict()["prior_acted"] == acted[-1]
        return task.state_dict() | {"prior_acted": None}, acted

    (skipping, acted), (checking, _) = run(False), run(True)
    assert any(acted[:-1]), f"the test needs a step after one where the prior acted: {acted}"
    assert_same_state(skipping, checking)


def test_class_prior_keeps_a_gradient_for_a_class_that_underflowed():
    logits = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    logits[:, 2] = -1e4  # exp underflows: softmax probabilities are exactly 0
    logits.requires_grad_(True)
    loss = class_prior(logits, torch.tensor([0.6, 0.3, 0.1]), torch.tensor([1.0, 0.8, 0.5]))
    loss.backward()
    assert torch.isfinite(loss) and bool(torch.isfinite(logits.grad).all())
    assert logits.grad[:, 2].sum() < -0.1, "the lost class is pulled back with a gradient of order 1"


def test_class_prior_with_a_class_the_data_never_has_is_finite_and_said(capsys, tiny_cfg):
    ds = load_dataset("shapes")
    labels = ds.labels[:64].clone()
    labels[labels == 3] = 0  # no squares at all
    ds = dataclasses.replace(ds, labels=labels)
    cfg = apply_overrides(tiny_cfg, {"model.class_prior": 1.0})
    task = SemGANTask(cfg, ds, Engine(cfg.train, torch.device("cpu")))
    assert "class 'square' never occurs in the 64 training maps" in capsys.readouterr().err
    for step in range(3):
        stats = task.train_step(step)
    assert all(bool(torch.isfinite(v)) for v in stats.values()), stats


def test_class_prior_is_said_to_do_nothing_for_the_baseline(capsys, tiny_cfg):
    cfg = apply_overrides(tiny_cfg, {"model.class_prior": 1.0, "model.mode": "gan"})
    task = SemGANTask(cfg, load_dataset("shapes"), Engine(cfg.train, torch.device("cpu")))
    assert "no effect on the RGB baseline" in capsys.readouterr().err
    assert "loss_prior" not in task.train_step(0)


@pytest.mark.parametrize("fake_input", ["softmax", "st-argmax"])
def test_class_prior_trains_and_resumes_bit_for_bit(tmp_path, tiny_cfg, fake_input):
    from helpers import straight_and_resumed

    cfg = apply_overrides(tiny_cfg, {"model.class_prior": 1.0, "model.fake_input": fake_input,
                                     "train.ckpt_every": 1000})
    a, b, resumed = straight_and_resumed(cfg, tmp_path)
    assert_same_state(a, b)
    stats = RunDir(resumed).read_stats()
    assert all(math.isfinite(s["loss_prior"]) for s in stats) and stats[0]["loss_prior"] > stats[-1]["loss_prior"]


# ------------------------------------------------------------------------------------------------- the guard

ORIGINAL_STEP = SemGANTask.train_step


def damage_after(monkeypatch, at: int, *, every: bool = False, crash_at: int | None = None) -> list[int]:
    """From step ``at`` on (once, or at ``every`` step), G stops drawing squares: a forced collapse. With
    ``crash_at``, the first step ``crash_at`` after the damage raises (a crash right after a rollback)."""
    fired: list[int] = []

    def step(self: SemGANTask, i: int) -> dict[str, torch.Tensor]:
        if crash_at is not None and fired and i == crash_at:
            raise RuntimeError("simulated crash")
        stats = ORIGINAL_STEP(self, i)
        if i >= at and (every or not fired):
            fired.append(i)
            with torch.no_grad():
                self.G.to_out.bias[3] = -1e4
        return stats

    monkeypatch.setattr(SemGANTask, "train_step", step)
    return fired


@pytest.fixture
def guarded_cfg(tiny_cfg):
    # tiny draws every class from step 20 on (seed 0); evaluations of 64 maps every 20 steps
    return apply_overrides(tiny_cfg, {"train.steps": 60, "eval.every": 20, "eval.metrics": "structure",
                                      "eval.n": 64, "train.guard_rollbacks": 2, "train.ckpt_every": 20})


def test_a_forced_collapse_is_rolled_back_and_said(tmp_path, monkeypatch, capsys, guarded_cfg):
    fired = damage_after(monkeypatch, 25)
    out = train(guarded_cfg, tmp_path / "run", progress=False)
    assert fired == [25]
    run = RunDir(out)
    (event,) = run.read_events()
    assert event["event"] == "rollback" and event["at_step"] == 40 and event["step"] == 20
    assert event["rollback"] == 1 and "class 3 (square) drawn in 0.0%" in event["signal"]
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if "rolled back" in x)
    assert "step 40: class 3 (square)" in line and "healthy.pt (step 20)" in line and "rollback 1 of 2" in line
    # the collapsed evaluation is not on record; the ones after the rollback are, and every class is drawn
    evals = run.read_metric("structure")
    assert [e["step"] for e in evals] == [20, 40, 60]
    assert not any(lost_classes(e["structure"]["presence"], e["structure"]["presence_real"]) for e in evals)
    final = load_checkpoint(out / "checkpoints" / "latest.pt")
    assert final["step"] == 60 and final["rollbacks"] == 1 and final["G"]["to_out.bias"][3] > -100
    assert run.checkpoint_step("healthy") == 60
    assert [s["step"] for s in run.read_stats()] == [5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60]


def test_a_resume_right_after_a_rollback_equals_a_straight_run(tmp_path, monkeypatch, guarded_cfg):
    damage_after(monkeypatch, 25)
    straight = train(guarded_cfg, tmp_path / "straight", progress=False)
    damage_after(monkeypatch, 25, crash_at=20)  # dies on the first step after going back to step 20
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(guarded_cfg, tmp_path / "crashed", progress=False)
    crashed = RunDir(tmp_path / "crashed")
    assert crashed.checkpoint_step() == 20 and load_checkpoint(crashed.checkpoint_path())["rollbacks"] == 1
    damage_after(monkeypatch, 10_000)  # the resumed process: the damage is behind it
    resumed = train(guarded_cfg, crashed.root, resume=True, progress=False)
    a, b = (load_checkpoint(p / "checkpoints" / "latest.pt") for p in (straight, resumed))
    assert_same_state(a, b)
    assert a["rollbacks"] == b["rollbacks"] == 1
    assert [e["at_step"] for e in RunDir(resumed).read_events()] == [40]


def test_when_every_retry_collapses_the_run_stops_and_keeps_its_files(tmp_path, monkeypatch, guarded_cfg):
    damage_after(monkeypatch, 25, every=True)
    cfg = apply_overrides(guarded_cfg, {"train.guard_rollbacks": 1})
    with pytest.raises(TrainingCollapsed) as err:
        train(cfg, tmp_path / "run", progress=False)
    msg = str(err.value)
    assert "step 40: class 3 (square)" in msg and "went back 1 time(s)" in msg and "healthy.pt (step 20)" in msg
    assert "\n" not in msg
    run = RunDir(tmp_path / "run")
    assert run.checkpoint_step() == 40 and run.checkpoint_step("healthy") == 20
    assert load_checkpoint(run.checkpoint_path())["G"]["to_out.bias"][3] == -1e4, "the collapsed state is kept"
    assert len(run.read_events()) == 1 and run.grid_path.is_file()


def test_without_the_guard_a_lost_class_is_said_and_kept_on_record(tmp_path, monkeypatch, capsys, guarded_cfg):
    damage_after(monkeypatch, 25)
    cfg = apply_overrides(guarded_cfg, {"train.guard_rollbacks": 0, "train.steps": 40})
    out = train(cfg, tmp_path / "run", progress=False)
    assert "step 40: class 3 (square) drawn in 0.0%" in capsys.readouterr().err
    assert [e["step"] for e in RunDir(out).read_metric("structure")] == [20, 40]
    assert not RunDir(out).read_events() and not RunDir(out).has_checkpoint("healthy")


def test_the_guard_needs_structure_evaluations(tiny_cfg):
    with pytest.raises(SemGANError, match="add structure to eval.metrics"):
        apply_overrides(tiny_cfg, {"train.guard_rollbacks": 1, "eval.every": 10, "eval.metrics": "swd"})
    with pytest.raises(SemGANError, match="eval.every=0"):
        apply_overrides(tiny_cfg, {"train.guard_rollbacks": 1, "eval.metrics": "structure"})


def test_rollback_events_stay_out_of_the_training_scalars(tmp_path):
    run = RunDir(tmp_path)
    run.root.mkdir(exist_ok=True)
    run.append_stats({"step": 5, "loss_D": 1.0})
    run.append_stats({"step": 5, "event": "rollback", "at_step": 10})
    assert run.read_stats() == [{"step": 5, "loss_D": 1.0}]
    assert run.read_events() == [{"step": 5, "event": "rollback", "at_step": 10}]
    assert json.loads(run.stats_path.read_text().splitlines()[1])["event"] == "rollback"
