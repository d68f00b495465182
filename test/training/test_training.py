"""A short real training run: the loss falls, checkpoints resume, the model folder is complete."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from crop_weed_seg.model.contract import load_model_contract
from crop_weed_seg.nn.losses import LOSSES, segmentation_loss
from crop_weed_seg.training.trainer import TrainConfig, train

from support import REPO


def _config(data: Path, out: Path, **kw: object) -> TrainConfig:
    base = dict(data=data, out=out, epochs=3, batch_size=4, crop=64, lr=5e-3,
                input_size=(96, 128), val_fraction=0.25, val_limit=3, workers=0,
                progress=False, seed=3, min_epoch_samples=0)
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def test_short_training_run_lowers_the_loss(tiny_field: Path, tmp_path: Path) -> None:
    result = train(_config(tiny_field, tmp_path, epochs=4))
    losses = [h["train_loss"] for h in result.history]
    assert len(losses) == 4
    assert losses[-1] < losses[0] * 0.9, losses
    assert (tmp_path / "checkpoints/last.pt").is_file()
    assert (tmp_path / "checkpoints/best.safetensors").is_file()
    assert 1 <= result.best_epoch <= 4


def test_resume_continues_after_the_last_checkpoint(tiny_field: Path, tmp_path: Path) -> None:
    train(_config(tiny_field, tmp_path, epochs=1))
    result = train(_config(tiny_field, tmp_path, epochs=2, resume=True))
    assert [h["epoch"] for h in result.history] == [1.0, 2.0]


@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_is_finite_and_ignores_255(loss: str) -> None:
    import torch

    logits = torch.randn(2, 3, 8, 8, requires_grad=True)
    target = torch.randint(0, 3, (2, 8, 8))
    target[0, :4] = 255
    value = segmentation_loss(loss, logits, target, torch.ones(3))
    value.backward()
    assert torch.isfinite(value) and logits.grad is not None
    assert torch.all(logits.grad[0, :, :4] == 0)


def test_train_command_writes_a_complete_model_folder(tiny_field: Path, tmp_path: Path) -> None:
    from crop_weed_seg.tools.cli import main

    rc = main(["train", "--data", str(tiny_field), "--test-data", str(tiny_field),
               "--out", str(tmp_path / "run"), "--name", "tiny", "--epochs", "1",
               "--batch-size", "4", "--crop", "64", "--input-size", "96x128", "--workers", "0",
               "--val-fraction", "0.25", "--min-epoch-samples", "0", "--quiet"])
    assert rc == 0
    folder = tmp_path / "run/model"
    for name in ("model.yaml", "model.onnx", "model.safetensors", "README.md",
                 "training_curves.png", "confusion_val.png", "confusion_test.png",
                 "confusion_test_classical.png"):
        assert (folder / name).is_file(), name
    contract = load_model_contract(folder)
    assert contract.classes == ("soil", "crop", "weed") and contract.input.size == (96, 128)
    doc = yaml.safe_load((folder / "model.yaml").read_text())
    assert doc["onnx"]["parity_argmax_agreement"] >= 0.999
    assert doc["training"]["command"].startswith("crop-weed-seg train --data")
    assert set(doc["metrics"]) == {"val", "test", "test_classical"}
    card = (folder / "README.md").read_text()
    assert "crop-weed-seg train" in card and "| test |" in card
    assert "## What it was not trained on, and fine-tuning for your field" in card
    assert f"--init {folder}" in card  # the fine-tuning command starts from this folder

    # Fine-tuning from the new folder starts from its weights and keeps its contract.
    rc = main(["train", "--data", str(tiny_field), "--init", str(folder), "--out",
               str(tmp_path / "ft"), "--epochs", "1", "--batch-size", "4", "--crop", "64",
               "--workers", "0", "--min-epoch-samples", "0", "--quiet"])
    assert rc == 0
    assert load_model_contract(tmp_path / "ft/model").input.size == (96, 128)

    # eval on the folder writes the documented JSON keys.
    rc = main(["eval", "--model", str(folder), "--data", str(tiny_field), "--json",
               str(tmp_path / "e.json"), "--quiet"])
    assert rc == 0
    keys = set(json.loads((tmp_path / "e.json").read_text()))
    assert {"miou", "iou", "vegetation_iou", "pixel_accuracy", "confusion", "images"} <= keys


def test_loss_class_weights_give_the_rare_class_more_weight_and_average_one() -> None:
    import numpy as np

    from crop_weed_seg.training.trainer import loss_class_weights

    freq = np.array([1.5, 8.0, 25.0], np.float32)
    for scheme in ("enet", "sqrt-enet"):
        w = loss_class_weights(freq, scheme)
        assert w.mean() == pytest.approx(1.0) and w[2] > w[1] > w[0]
    assert loss_class_weights(freq, "sqrt-enet")[2] < loss_class_weights(freq, "enet")[2]
    assert np.allclose(loss_class_weights(freq, "none"), 1.0)


REAL = REPO / "samples/real"


def test_sources_mix_with_partial_labels_and_repeats(tmp_path: Path) -> None:
    """Real colour masks and vegetation-only Supervisely masks train together."""
    result = train(_config((str(REAL / "peanut"), f"{REAL / 'ews'}@2"), tmp_path, epochs=1,
                           val_data=REAL / "peanut", val_limit=2))
    assert result.train_images == 8 + 4  # distinct images; EWS is drawn twice per epoch
    assert "val_vegetation_iou" in result.history[-1]
    assert np.isfinite(result.history[-1]["train_loss"])


def test_time_budget_without_epochs_uses_the_budget(tiny_field: Path, tmp_path: Path) -> None:
    cfg = _config(tiny_field, tmp_path, epochs=None, max_minutes=0.05, min_epoch_samples=8)
    assert cfg.epoch_count > 1000  # the time budget, not an epoch count, ends the run
    result = train(cfg)
    assert result.history[-1]["elapsed_s"] >= 0.05 * 60
    assert "val_miou" in result.history[-1]  # the last epoch is always validated


def test_validation_runs_at_a_rate_not_every_tiny_epoch(tmp_path: Path) -> None:
    from crop_weed_seg.training.trainer import _validate_now

    timed = TrainConfig(data=tmp_path, out=tmp_path, max_minutes=10.0)
    assert not _validate_now(timed, 7, timed.epoch_count, 600.0, since_last_s=30.0)
    assert _validate_now(timed, 8, timed.epoch_count, 600.0, since_last_s=50.0)  # 600 s / 12
    counted = TrainConfig(data=tmp_path, out=tmp_path, epochs=48)
    assert [e for e in range(1, 49) if _validate_now(counted, e, 48, None, 0.0)] == \
        list(range(4, 49, 4))
    every = TrainConfig(data=tmp_path, out=tmp_path, epochs=48, val_every=5)
    assert _validate_now(every, 10, 48, None, 0.0) and not _validate_now(every, 11, 48, None, 0.0)


def test_epoch_has_at_least_min_epoch_samples(tiny_field: Path, tmp_path: Path) -> None:
    from crop_weed_seg.data.datasets import open_dataset
    from crop_weed_seg.model.preprocess import InputSpec
    from crop_weed_seg.training.trainer import _MixedSet

    data = open_dataset(tiny_field)
    mixed = _MixedSet([(data, np.arange(3), 1)], InputSpec(size=(96, 128)), 64, 0, False,
                      min_samples=20)
    assert len(mixed) == 20
    repeated = _MixedSet([(data, np.arange(3), 1), (data, np.arange(2), 3)],
                         InputSpec(size=(96, 128)), 64, 0, False, min_samples=0)
    assert len(repeated) == 3 + 2 * 3
    x, y = mixed[19]
    assert tuple(x.shape) == (3, 64, 64) and tuple(y.shape) == (64, 64)


# --- precise BatchNorm --------------------------------------------------------------------------

def test_recalibrated_batchnorm_statistics_are_the_average_over_the_frames() -> None:
    """One BatchNorm after a fixed conv: its re-estimated mean is the mean of the conv output
    over the frames, the weights are untouched, momentum and eval mode come back."""
    import torch

    from crop_weed_seg.model.preprocess import InputSpec, to_tensor
    from crop_weed_seg.training.trainer import recalibrate_batchnorm

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4))
    net[1].running_mean.fill_(5.0)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    spec = InputSpec(size=(16, 24))
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (16, 24, 3), dtype=np.uint8) for _ in range(6)]
    out = recalibrate_batchnorm(net, frames, spec, torch.device("cpu"), batch_size=4)
    assert out is net and not net.training and net[1].momentum == 0.1
    with torch.no_grad():
        feats = [net[0](torch.from_numpy(to_tensor(f, spec))) for f in frames]
    # two batches (4 + 2 frames) averaged with equal weight: the cumulative moving average
    expected = (torch.cat(feats[:4]).mean((0, 2, 3)) + torch.cat(feats[4:]).mean((0, 2, 3))) / 2
    torch.testing.assert_close(net[1].running_mean, expected, rtol=1e-5, atol=1e-5)
    for key in ("0.weight", "0.bias", "1.weight", "1.bias"):
        assert torch.equal(net.state_dict()[key], before[key])


def test_precise_bn_frames_follow_each_sources_share_and_the_seed(tiny_field: Path) -> None:
    from crop_weed_seg.data.datasets import open_dataset
    from crop_weed_seg.model.preprocess import InputSpec, fit_to_input
    from crop_weed_seg.training.trainer import precise_bn_frames

    data = open_dataset(tiny_field)
    spec = InputSpec(size=(96, 128))
    parts = [(data, np.arange(0, 6), 1), (data, np.arange(6, 12), 9)]  # 6 + 54 per epoch
    frames = precise_bn_frames(parts, spec, 6, seed=3)
    assert len(frames) == 6 and all(f.shape == (96, 128, 3) and f.dtype == np.uint8
                                    for f in frames)
    fitted = [fit_to_input(data[i][0], spec)[0] for i in range(12)]
    drawn = [next(i for i, g in enumerate(fitted) if np.array_equal(f, g)) for f in frames]
    assert len(set(drawn)) == 6 and sum(i >= 6 for i in drawn) >= 4  # the heavy source
    again = precise_bn_frames(parts, spec, 6, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(frames, again))
    assert len(precise_bn_frames(parts, spec, 100, seed=3)) == 12  # never a frame twice
    assert precise_bn_frames(parts, spec, 0, seed=3) == []


def test_epochs_zero_with_init_recalibrates_and_writes_the_init_model(
        tiny_field: Path, tmp_path: Path) -> None:
    """``train --init M --epochs 0 --precise-bn N``: no training step; only BatchNorm running
    statistics change, and the validation scores are of the model as written."""
    import torch

    from crop_weed_seg.nn.network import NetworkConfig, build_network
    from crop_weed_seg.nn.weights import load_weights
    from crop_weed_seg.tools.cli import main

    args = ["--data", str(tiny_field), "--batch-size", "4", "--crop", "64", "--input-size",
            "96x128", "--workers", "0", "--val-fraction", "0.25", "--min-epoch-samples", "0",
            "--quiet"]
    assert main(["train", *args, "--out", str(tmp_path / "a"), "--name", "a",
                 "--epochs", "1"]) == 0
    assert main(["train", *args, "--out", str(tmp_path / "b"), "--name", "b", "--epochs", "0",
                 "--init", str(tmp_path / "a/model"), "--precise-bn", "6"]) == 0
    assert main(["train", *args, "--out", str(tmp_path / "c"), "--epochs", "0"]) == 2  # no --init
    nets = []
    for name in ("a", "b"):
        contract = load_model_contract(tmp_path / name / "model")
        net = build_network(NetworkConfig.from_json(contract.architecture))
        load_weights(net, contract.weights_path)
        nets.append(net.state_dict())
    changed = {k for k in nets[0] if not torch.equal(nets[0][k], nets[1][k])}
    assert changed and all(k.endswith(("running_mean", "running_var", "num_batches_tracked"))
                           for k in changed)
    history = json.loads((tmp_path / "b/model/history.json").read_text())
    assert [h["epoch"] for h in history] == [0.0] and "val_miou" in history[0]
