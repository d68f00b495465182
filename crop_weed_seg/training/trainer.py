"""The training loop: any dataset layout, several sources mixed (real photos, partial labels,
synthetic frames), class-weighted loss, cosine schedule that follows the epochs or the time
budget, checkpoints, resume, mixed precision on CUDA. ``train()`` returns the best network and
its history; the model folder is written by :mod:`crop_weed_seg.training.model_folder`."""

from __future__ import annotations

import copy
import math
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from crop_weed_seg.classes import CLASS_NAMES, NUM_CLASSES, WEED
from crop_weed_seg.data.augment import AugmentConfig, augment
from crop_weed_seg.data.datasets import (
    SegmentationDataset,
    class_frequency_weights,
    open_dataset,
    parse_source,
    split_indices,
)
from crop_weed_seg.data.evaluation import evaluate
from crop_weed_seg.data.metrics import SegmentationScores
from crop_weed_seg.errors import ConfigError
from crop_weed_seg.model.contract import load_model_contract
from crop_weed_seg.model.preprocess import (
    InputSpec,
    fit_to_input,
    labels_to_frame,
    resize_to_input,
    to_tensor,
)
from crop_weed_seg.nn.losses import LOSSES, segmentation_loss
from crop_weed_seg.nn.network import CWNet, NetworkConfig, build_network, parameter_count
from crop_weed_seg.nn.weights import load_checkpoint, load_weights, save_checkpoint, save_weights

CHECKPOINT_DIR = "checkpoints"
#: ``enet``: 1/ln(1.02 + p) per class; ``sqrt-enet``: its square root (milder: full ENet weights
#: made the first default model over-predict weed, which costs IoU); ``none``: all 1.
CLASS_WEIGHTINGS = ("sqrt-enet", "enet", "none")
#: ``camera``: flips, rotations, scale, colour jitter plus colour temperature (2800-10000 K),
#: +-1.5 EV exposure, JPEG and motion blur (what real field cameras do; the exposure range
#: reaches past the +-1 EV of the robustness table so that +1 EV is not its rare edge);
#: ``basic``: without the camera effects (the augmentation of the first synthetic-only models).
AUGMENTATIONS = ("camera", "basic")
#: Epochs without --epochs and without --max-minutes.
DEFAULT_EPOCHS = 20


def loss_class_weights(frequency_weights: np.ndarray, scheme: str) -> np.ndarray:
    """Per-class loss weights from ENet frequency weights, normalised to mean 1."""
    if scheme == "none":
        w = np.ones_like(frequency_weights)
    elif scheme == "enet":
        w = frequency_weights.astype(np.float64)
    elif scheme == "sqrt-enet":
        w = np.sqrt(frequency_weights.astype(np.float64))
    else:
        raise ConfigError(f"unknown class weighting {scheme!r}; "
                          f"valid: {', '.join(CLASS_WEIGHTINGS)}")
    return (w / w.mean()).astype(np.float32)


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run depends on (recorded in the model card)."""

    #: One source or several: ``PATH[:SPLIT][@REPEAT]`` (a folder, bag or dataset description).
    data: "tuple[str, ...] | Path | str"
    out: Path
    layout: str = "auto"
    split: str | None = None
    val_data: Path | str | None = None
    val_split: str | None = None
    val_fraction: float = 0.1
    val_limit: int | None = 200
    #: None: DEFAULT_EPOCHS, or as many as fit in ``max_minutes`` when that is given.
    epochs: int | None = None
    max_minutes: float | None = None
    #: Validate every N epochs; None: about 12 times per run (by epochs, or by time).
    val_every: int | None = None
    #: An epoch draws at least this many crops (sources cycled): a few large photos still make
    #: epochs long enough that loader start-up and validation stay a small share.
    min_epoch_samples: int = 256
    #: Precise BatchNorm: before each validation, BatchNorm statistics are re-estimated on this
    #: many training frames (whole frames fitted into the input, as inference sees them), drawn
    #: from the sources in proportion to their share of an epoch; the kept weights carry them.
    #: 0: the running statistics of the training batches (noisy with small mixed batches).
    precise_bn: int = 0
    classes: Path | None = None
    augment: str = "camera"
    batch_size: int = 16
    crop: int = 192
    lr: float = 3e-3
    weight_decay: float = 1e-4
    loss: str = "ce"
    class_weighting: str = "sqrt-enet"
    width: float = 1.0
    input_size: tuple[int, int] = (384, 512)
    init: Path | None = None
    resume: bool = False
    seed: int = 0
    device: str = "auto"
    workers: int = 1
    amp: bool = True
    cache: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        data = self.data
        sources = tuple(str(d) for d in data) if isinstance(data, (list, tuple)) else (str(data),)
        if not sources:
            raise ConfigError("--data: at least one training source is needed")
        object.__setattr__(self, "data", sources)

    @property
    def sources(self) -> tuple[str, ...]:
        return self.data  # type: ignore[return-value]  # normalised in __post_init__

    @property
    def epoch_count(self) -> int:
        """Planned epochs: given, or unbounded (the time budget ends the run), or the default."""
        if self.epochs is not None:
            return self.epochs
        return 10**6 if self.max_minutes else DEFAULT_EPOCHS

    def validate(self) -> "TrainConfig":
        if self.augment not in AUGMENTATIONS:
            raise ConfigError(f"--augment {self.augment!r} is not one of "
                              f"{', '.join(AUGMENTATIONS)}")
        if self.val_every is not None and self.val_every < 1:
            raise ConfigError(f"--val-every must be >= 1, got {self.val_every}")
        if self.class_weighting not in CLASS_WEIGHTINGS:
            raise ConfigError(f"--class-weighting {self.class_weighting!r} is not one of "
                              f"{', '.join(CLASS_WEIGHTINGS)}")
        if self.loss not in LOSSES:
            raise ConfigError(f"--loss {self.loss!r} is not one of {', '.join(LOSSES)}")
        if self.epochs is not None and self.epochs < (0 if self.init is not None else 1):
            raise ConfigError(f"--epochs must be ≥ 1 (0 only with --init: no training "
                              f"steps, the init model is validated and written), got "
                              f"{self.epochs}")
        if self.precise_bn < 0:
            raise ConfigError(f"--precise-bn must be ≥ 0 frames, got {self.precise_bn}")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ConfigError(f"--max-minutes must be > 0, got {self.max_minutes}")
        if self.batch_size < 1 or self.crop < 32:
            raise ConfigError("--batch-size must be ≥ 1 and --crop ≥ 32")
        return self

    def to_json(self) -> dict[str, Any]:
        doc = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}
        doc["data"] = list(self.sources)
        return doc


@dataclass
class TrainResult:
    net: CWNet
    network_config: NetworkConfig
    input_spec: InputSpec
    history: list[dict[str, float]]
    best_epoch: int
    val_scores: SegmentationScores | None
    class_weights: list[float]
    elapsed_s: float
    device: str
    train_images: int
    val_images: int
    parameters: int
    environment: dict[str, str] = field(default_factory=dict)


def _augment_config(kind: str, crop: int) -> AugmentConfig:
    camera = dict(kelvin_range=(2800.0, 10000.0), exposure_ev=1.5, jpeg_prob=0.2,
                  motion_blur_prob=0.15) if kind == "camera" else {}
    return AugmentConfig(crop_size=(crop, crop), scale_range=(0.6, 1.2), hue=0.03,
                         brightness=0.25, contrast=0.25, saturation=0.3,
                         **camera)  # type: ignore[arg-type]


def fit_scale(shape: tuple[int, ...], spec: InputSpec) -> float:
    """The one scale factor that fits a frame into the model input without stretching."""
    return min(spec.size[0] / shape[0], spec.size[1] / shape[1])


class _MixedSet(Dataset):  # type: ignore[type-arg]
    """Samples of several datasets (each repeated ``repeat`` times), augmented with a generator
    seeded by (seed, epoch, position). An epoch has at least ``min_samples`` items (cycled)."""

    def __init__(self, parts: list[tuple[SegmentationDataset, np.ndarray, int]], spec: InputSpec,
                 crop: int, seed: int, cache: bool, augment_kind: str = "camera",
                 min_samples: int = 0) -> None:
        self.spec, self.seed = spec, seed
        self.epoch = 0
        self.parts = [d for d, _, _ in parts]
        self.items = [(k, int(i)) for k, (_, idx, rep) in enumerate(parts)
                      for _ in range(rep) for i in idx]
        if not self.items:
            raise ConfigError("no training samples (every source is empty)")
        self.length = max(len(self.items), min_samples)
        # Decoded once, shared with the loader's forked workers: decoding would otherwise
        # take a core away from the two that train.
        self.cache = ({(k, int(i)): d[int(i)] for k, (d, idx, _) in enumerate(parts) for i in idx}
                      if cache else None)
        self.config = _augment_config(augment_kind, crop)

    def __len__(self) -> int:
        return self.length

    def image(self, source: int, index: int) -> np.ndarray:
        """Image ``index`` of source ``source``, from the cache when there is one."""
        if self.cache is not None:
            return self.cache[(source, index)][0]
        return self.parts[source][index][0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        key = self.items[i % len(self.items)]
        rng = np.random.default_rng([self.seed, self.epoch, i])
        image, label = self.cache[key] if self.cache is not None else self.parts[key[0]][key[1]]
        if rng.random() < 0.5:  # the ground resolution inference sees: fitted to the input
            scale = fit_scale(image.shape, self.spec)
            size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
            if size != (image.shape[1], image.shape[0]):
                image = resize_to_input(image, InputSpec(size=(size[1], size[0])))
                label = cv2.resize(label, size, interpolation=cv2.INTER_NEAREST_EXACT)
        image, label = augment(image, label, self.config, rng)
        x = to_tensor(image, self.spec)[0]
        return torch.from_numpy(x), torch.from_numpy(label.astype(np.int64))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: CUDA is not available on this machine")
    return torch.device(name)


def torch_predictor(net: torch.nn.Module, spec: InputSpec, device: torch.device):  # type: ignore[no-untyped-def]
    """A predict(rgb) -> labels function with exactly the inference preprocessing (fitted to
    the input, padding cut off)."""
    def predict(rgb: np.ndarray) -> np.ndarray:
        padded, window = fit_to_input(rgb, spec)
        x = torch.from_numpy(to_tensor(np.ascontiguousarray(padded), spec)).to(device)
        with torch.no_grad():
            labels = net(x).argmax(1)[0].to(torch.uint8).cpu().numpy()
        return labels_to_frame(np.ascontiguousarray(window.crop(labels)), rgb.shape[:2])
    return predict


def _lr_factor(progress: float, warmup: float = 0.03) -> float:
    """Linear warm-up, then cosine decay to 2 % of the peak; ``progress`` in [0, 1]."""
    if progress < warmup:
        return max(progress / warmup, 0.05)
    p = min(1.0, (progress - warmup) / (1.0 - warmup))
    return 0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * p))


def precise_bn_frames(parts: list[tuple[SegmentationDataset, np.ndarray, int]],
                      spec: InputSpec, count: int, seed: int,
                      image_of: Callable[[int, int], np.ndarray] | None = None
                      ) -> list[np.ndarray]:
    """``count`` training frames for precise BatchNorm, each fitted into the input (uint8,
    (H, W, 3) at input size), drawn without replacement from the sources in proportion to
    (images × repeat), seeded. ``image_of(source, index)`` gives an image already decoded
    (the training set's cache); default: read it from the source."""
    shares: dict[tuple[int, int], int] = {}
    for k, (_, idx, repeat) in enumerate(parts):
        for i in idx:
            shares[(k, int(i))] = shares.get((k, int(i)), 0) + repeat
    if not shares or count <= 0:
        return []
    keys = sorted(shares)
    weights = np.array([shares[key] for key in keys], dtype=np.float64)
    rng = np.random.default_rng([seed, 7])
    pick = rng.choice(len(keys), size=min(count, len(keys)), replace=False,
                      p=weights / weights.sum())
    frames = []
    for j in pick:  # random order: each batch of the re-estimate mixes the sources
        k, index = keys[int(j)]
        image = image_of(k, index) if image_of is not None else parts[k][0][index][0]
        padded, _ = fit_to_input(image, spec)
        frames.append(np.ascontiguousarray(padded))
    return frames


def recalibrate_batchnorm(net: torch.nn.Module, frames: list[np.ndarray], spec: InputSpec,
                          device: torch.device, batch_size: int = 8) -> torch.nn.Module:
    """Re-estimate every BatchNorm layer's running mean and variance as the plain average over
    ``frames`` (momentum None), in place; the weights are untouched. Returns ``net`` in eval
    mode. The variance is the average of the batches' variances, so batches must mix the
    sources (:func:`precise_bn_frames` returns them in random order): batches of one source
    each would leave out the variance between sources. "Precise BN" (Wu & Johnson,
    "Rethinking 'Batch' in BatchNorm", 2021): statistics of small mixed training batches
    follow the last few batches and can swing validation mIoU by several points from one epoch
    to the next."""
    norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not frames or not norms:
        return net.eval()
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    net.train()
    with torch.no_grad():
        for start in range(0, len(frames), batch_size):
            x = np.concatenate([to_tensor(f, spec) for f in frames[start:start + batch_size]])
            net(torch.from_numpy(x).to(device))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    return net.eval()


def _judged(net: torch.nn.Module, bn_frames: list[np.ndarray], spec: InputSpec,
            device: torch.device, in_place: bool = False) -> torch.nn.Module:
    """The network as validation judges it and as it is kept: with ``bn_frames``, a copy (or
    ``net`` itself) with re-estimated BatchNorm statistics; otherwise ``net`` in eval mode."""
    if not bn_frames:
        return net.eval()
    return recalibrate_batchnorm(net if in_place else copy.deepcopy(net), bn_frames, spec,
                                 device)


def _val_fields(scores: SegmentationScores) -> dict[str, float]:
    """The validation scores a history record carries."""
    return {"val_miou": scores.miou, "val_weed_iou": scores.iou[CLASS_NAMES[WEED]],
            "val_vegetation_iou": scores.vegetation_iou}


def _initial_network(cfg: TrainConfig) -> tuple[CWNet, NetworkConfig, InputSpec]:
    if cfg.init is None:
        net_cfg = NetworkConfig(width=cfg.width)
        spec = InputSpec(size=cfg.input_size)
        return build_network(net_cfg), net_cfg, spec
    contract = load_model_contract(cfg.init)
    net_cfg = NetworkConfig.from_json(contract.architecture)
    if contract.weights_path is None:
        raise ConfigError(f"--init {cfg.init}: model.yaml names no weights file to fine-tune")
    net = build_network(net_cfg)
    load_weights(net, contract.weights_path)
    return net, net_cfg, contract.input


def _progress_title(epoch: int, cfg: TrainConfig, t0: float, budget_s: float | None) -> str:
    if budget_s:
        left = max(0.0, budget_s - (time.monotonic() - t0)) / 60.0
        return f"epoch {epoch} ({left:.1f} min left)"
    return f"epoch {epoch}/{cfg.epoch_count}"


def _validate_now(cfg: TrainConfig, epoch: int, epochs: int, budget_s: float | None,
                  since_last_s: float) -> bool:
    """Validation at a rate: every ``val_every`` epochs, else about 12 times per run."""
    if cfg.val_every is not None:
        return epoch % cfg.val_every == 0
    if budget_s and cfg.epochs is None:
        return since_last_s >= budget_s / 12.0
    return epoch % max(1, epochs // 12) == 0


def _selection_score(scores: SegmentationScores) -> float:
    """What picks the best checkpoint: validation mIoU, or vegetation IoU for a validation set
    with partial labels only (no crop/weed pixels, e.g. plant masks)."""
    if np.isnan(scores.miou) or scores.confusion[1:].sum() == 0:
        return scores.vegetation_iou
    return scores.miou


def train(cfg: TrainConfig) -> TrainResult:
    """Train, validating every epoch; keep the best-mIoU weights. Resumable with ``cfg.resume``."""
    cfg.validate()
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    parts: list[tuple[SegmentationDataset, np.ndarray, int]] = []
    for source in cfg.sources:
        path, split, repeat = parse_source(source)
        data = open_dataset(path, cfg.layout if len(cfg.sources) == 1 else "auto",
                            split if split is not None else cfg.split, cfg.classes)
        parts.append((data, np.arange(len(data)), repeat))
    if cfg.val_data is not None:
        val_path, val_split, _ = parse_source(cfg.val_data)
        val_view: SegmentationDataset = open_dataset(
            val_path, "auto", val_split if val_split is not None else cfg.val_split, cfg.classes)
    else:  # held out of the first source
        first, _, repeat = parts[0]
        train_idx, val_idx = split_indices(len(first), cfg.val_fraction, cfg.seed)
        val_view = first.subset(val_idx)
        parts[0] = (first, train_idx, repeat)
    train_views = [d.subset(idx) for d, idx, _ in parts]
    weights = loss_class_weights(class_frequency_weights(train_views, NUM_CLASSES,
                                                         max_images=200), cfg.class_weighting)

    net, net_cfg, spec = _initial_network(cfg)
    net.to(device)
    if device.type == "cpu":  # measured: ~2x faster convolutions on CPU in channels-last
        net = net.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    use_amp = cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    ckpt_dir = cfg.out / CHECKPOINT_DIR
    history: list[dict[str, float]] = []
    start_epoch, best_miou, best_epoch, elapsed_before = 1, -1.0, 0, 0.0
    if cfg.resume:
        last = ckpt_dir / "last.pt"
        if not last.is_file():
            raise ConfigError(f"--resume: no checkpoint at {last}")
        state = load_checkpoint(last)
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch = int(state["epoch"]) + 1
        best_miou, best_epoch = float(state["best_miou"]), int(state["best_epoch"])
        history = [dict(h) for h in state["history"]]
        elapsed_before = float(state["elapsed_s"])

    dataset = _MixedSet(parts, spec, cfg.crop, cfg.seed, cfg.cache, cfg.augment,
                        cfg.min_epoch_samples)
    bn_frames = precise_bn_frames(parts, spec, cfg.precise_bn, cfg.seed, dataset.image)
    class_w = torch.tensor(weights, dtype=torch.float32, device=device)
    steps_per_epoch = max(1, len(dataset) // cfg.batch_size)
    epochs = cfg.epoch_count
    total_steps = steps_per_epoch * epochs
    budget_s = cfg.max_minutes * 60.0 if cfg.max_minutes else None
    t0 = time.monotonic() - elapsed_before
    last_val = time.monotonic()
    stop = False
    epoch = start_epoch - 1
    for epoch in range(start_epoch, epochs + 1):
        dataset.epoch = epoch
        gen = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
        loader = DataLoader(dataset, batch_size=cfg.batch_size, shuffle=True, drop_last=True,
                            num_workers=cfg.workers, generator=gen,
                            pin_memory=device.type == "cuda")
        net.train()
        losses = []
        batches: Any = loader
        if cfg.progress:
            from tqdm import tqdm

            batches = tqdm(loader, desc=_progress_title(epoch, cfg, t0, budget_s), unit="batch",
                           leave=False)
        for step_in_epoch, (x, y) in enumerate(batches):
            step = (epoch - 1) * steps_per_epoch + step_in_epoch
            progress = step / total_steps
            if budget_s:
                progress = max(progress, (time.monotonic() - t0) / budget_s)
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * _lr_factor(progress)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if device.type == "cpu":
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
                logits = net(x)
            loss = segmentation_loss(cfg.loss, logits, y, class_w)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            losses.append(float(loss.detach()))
            if cfg.progress:
                batches.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}",
                                    lr=f"{optimizer.param_groups[0]['lr']:.2e}")
                batches.set_description(_progress_title(epoch, cfg, t0, budget_s), refresh=False)
            if budget_s and time.monotonic() - t0 > budget_s:
                stop = True
                break
        final = stop or epoch == epochs
        if not (final or _validate_now(cfg, epoch, epochs, budget_s, time.monotonic() - last_val)):
            history.append({"epoch": float(epoch), "train_loss": float(np.mean(losses)),
                            "elapsed_s": time.monotonic() - t0})
        else:
            judged = _judged(net, bn_frames, spec, device)
            scores = evaluate(torch_predictor(judged, spec, device), val_view,
                              limit=cfg.val_limit)
            last_val = time.monotonic()
            record = {"epoch": float(epoch), "train_loss": float(np.mean(losses)),
                      **_val_fields(scores), "elapsed_s": time.monotonic() - t0}
            history.append(record)
            if cfg.progress:
                print(f"epoch {epoch}: loss {record['train_loss']:.4f}  val mIoU "
                      f"{scores.miou:.4f}  weed IoU {record['val_weed_iou']:.4f}  vegetation "
                      f"{scores.vegetation_iou:.4f}  ({record['elapsed_s'] / 60:.1f} min)",
                      flush=True)
            score = _selection_score(scores)
            if score > best_miou:
                best_miou, best_epoch = score, epoch
                save_weights(judged, ckpt_dir / "best.safetensors")
        save_checkpoint({"model": net.state_dict(), "optimizer": optimizer.state_dict(),
                         "epoch": epoch, "best_miou": best_miou, "best_epoch": best_epoch,
                         "history": history, "elapsed_s": time.monotonic() - t0,
                         "config": {k: str(v) for k, v in cfg.to_json().items()}},
                        ckpt_dir / "last.pt")
        if stop:
            break

    if epochs == 0:  # --init with --epochs 0: no training steps, the init model as it is
        save_weights(_judged(net, bn_frames, spec, device, in_place=True),
                     ckpt_dir / "best.safetensors")
    net = net.cpu()
    load_weights(net, ckpt_dir / "best.safetensors")
    net.eval()
    val_scores = evaluate(torch_predictor(net, spec, torch.device("cpu")), val_view,
                          limit=cfg.val_limit)
    if epochs == 0:  # its one validation is the kept model's
        history.append({"epoch": 0.0, **_val_fields(val_scores),
                        "elapsed_s": time.monotonic() - t0})
    env = {"python": platform.python_version(), "torch": torch.__version__,
           "machine": platform.machine(), "processor": platform.processor() or "unknown",
           "cpu_threads": str(torch.get_num_threads()),
           "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else "none"}
    return TrainResult(net=net, network_config=net_cfg, input_spec=spec, history=history,
                       best_epoch=best_epoch, val_scores=val_scores,
                       class_weights=[float(w) for w in weights],
                       elapsed_s=time.monotonic() - t0, device=str(device),
                       train_images=sum(len(idx) for _, idx, _ in parts),
                       val_images=min(len(val_view),
                                                                   cfg.val_limit or 10**9),
                       parameters=parameter_count(net), environment=env)
