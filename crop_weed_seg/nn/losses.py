"""Losses: class-weighted cross-entropy, optionally plus soft Dice or Lovász-softmax.

Targets hold 0 soil, 1 crop, 2 weed, 255 ignore and 3 **vegetation** (partial labels: a plant,
crop or weed unknown). A vegetation pixel supervises P(crop) + P(weed) only, through
``-log(P(crop) + P(weed))`` in the cross-entropy, never the split between them; Dice and
Lovász see class-labelled pixels only."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from crop_weed_seg.classes import CROP, IGNORE_INDEX, VEGETATION, WEED

LOSSES = ("ce", "ce+dice", "ce+lovasz")


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 − mean soft Dice over classes, ignoring pixels labelled 255."""
    num_classes = logits.shape[1]
    valid = (target != IGNORE_INDEX)
    probs = torch.softmax(logits, dim=1) * valid.unsqueeze(1)
    onehot = F.one_hot(torch.where(valid, target, 0), num_classes).permute(0, 3, 1, 2)
    onehot = onehot.to(probs.dtype) * valid.unsqueeze(1)
    inter = (probs * onehot).sum(dim=(0, 2, 3))
    denom = probs.sum(dim=(0, 2, 3)) + onehot.sum(dim=(0, 2, 3))
    dice = (2 * inter + 1.0) / (denom + 1.0)
    return 1.0 - dice.mean()


def _lovasz_grad(gt_sorted: torch.Tensor) -> torch.Tensor:
    gts = gt_sorted.sum()
    intersection = gts - gt_sorted.cumsum(0)
    union = gts + (1 - gt_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    if gt_sorted.numel() > 1:
        jaccard[1:] = jaccard[1:] - jaccard[:-1]
    return jaccard


def lovasz_softmax_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Lovász-softmax (Berman et al., CVPR 2018) over classes present, ignoring 255."""
    probs = torch.softmax(logits, dim=1).permute(0, 2, 3, 1).reshape(-1, logits.shape[1])
    labels = target.reshape(-1)
    keep = labels != IGNORE_INDEX
    probs, labels = probs[keep], labels[keep]
    losses = []
    for c in range(logits.shape[1]):
        fg = (labels == c).to(probs.dtype)
        if fg.sum() == 0:
            continue
        errors = (fg - probs[:, c]).abs()
        errors_sorted, perm = torch.sort(errors, descending=True)
        losses.append(torch.dot(errors_sorted, _lovasz_grad(fg[perm])))
    if not losses:
        return logits.sum() * 0.0
    return torch.stack(losses).mean()


def partial_cross_entropy(logits: torch.Tensor, target: torch.Tensor,
                          class_weights: torch.Tensor | None) -> torch.Tensor:
    """Class-weighted cross-entropy where vegetation pixels count as ``-log(P(crop)+P(weed))``.

    Normalised like ``F.cross_entropy(weight=...)``: by the summed weights of the pixels used;
    a vegetation pixel weighs the mean of the crop and weed weights."""
    veg = target == VEGETATION
    class_target = torch.where(veg, torch.full_like(target, IGNORE_INDEX), target)
    if not bool(veg.any()):
        return F.cross_entropy(logits, class_target, weight=class_weights,
                               ignore_index=IGNORE_INDEX)
    ce_sum = F.cross_entropy(logits, class_target, weight=class_weights,
                             ignore_index=IGNORE_INDEX, reduction="sum")
    valid = class_target != IGNORE_INDEX
    if class_weights is None:
        w_sum = valid.sum().to(logits.dtype)
        veg_w = logits.new_tensor(1.0)
    else:
        w_sum = class_weights[class_target[valid]].sum()
        veg_w = (class_weights[CROP] + class_weights[WEED]) / 2
    log_all = torch.logsumexp(logits, dim=1)
    log_plant = torch.logsumexp(logits[:, [CROP, WEED]], dim=1)
    veg_sum = (log_all - log_plant)[veg].sum() * veg_w
    denom = w_sum + veg_w * veg.sum()
    return (ce_sum + veg_sum) / denom.clamp_min(1e-6)


def segmentation_loss(kind: str, logits: torch.Tensor, target: torch.Tensor,
                      class_weights: torch.Tensor | None) -> torch.Tensor:
    """The training loss named ``kind`` (one of LOSSES)."""
    logits = logits.float()
    ce = partial_cross_entropy(logits, target, class_weights)
    if kind == "ce":
        return ce
    class_target = torch.where(target == VEGETATION, torch.full_like(target, IGNORE_INDEX),
                               target)
    if kind == "ce+dice":
        return ce + soft_dice_loss(logits, class_target)
    if kind == "ce+lovasz":
        return ce + lovasz_softmax_loss(logits, class_target)
    raise ValueError(f"unknown loss {kind!r}; valid: {', '.join(LOSSES)}")
