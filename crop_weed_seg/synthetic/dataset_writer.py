"""Write a synthetic dataset in the folder layout: ``images/``, ``labels/``, ``frames.jsonl``
(what each frame contains) and ``synth.json`` (config and seed, to reproduce it)."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path
from typing import Any, Iterator

from crop_weed_seg.image_files import write_bytes_atomic, write_image_atomic
from crop_weed_seg.synthetic.field import SynthConfig, generate_sample


def _stem(index: int) -> str:
    return f"field_{index:06d}"


def _write_one(args: tuple[SynthConfig, int, int, str]) -> dict[str, Any]:
    config, seed, index, out = args
    rgb, labels, meta = generate_sample(config, seed, index)
    root = Path(out)
    write_image_atomic(root / "images" / f"{_stem(index)}.png", rgb)
    write_image_atomic(root / "labels" / f"{_stem(index)}.png", labels, rgb=False)
    meta["stem"] = _stem(index)
    return meta


def write_dataset(out: Path, config: SynthConfig, seed: int, count: int, workers: int = 0,
                  preset: str | None = None, progress: bool = False) -> Path:
    """Render ``count`` frames with ``seed`` into ``out``; returns the path of frames.jsonl.

    ``workers`` 0 means one per CPU core. The result does not depend on ``workers``.
    """
    config.validate()
    out.mkdir(parents=True, exist_ok=True)
    workers = workers or (os.cpu_count() or 1)
    jobs = [(config, seed, i, str(out)) for i in range(count)]
    metas: list[dict[str, Any]] = []
    results: Iterator[dict[str, Any]]
    pool = None
    if workers > 1 and count > 1:
        pool = multiprocessing.get_context("fork").Pool(workers)
        results = pool.imap(_write_one, jobs, chunksize=4)
    else:
        results = map(_write_one, jobs)
    try:
        if progress:
            from tqdm import tqdm

            results = tqdm(results, total=count, desc="synth", unit="img")
        metas.extend(results)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    frames = out / "frames.jsonl"
    write_bytes_atomic(frames, "".join(json.dumps(m) + "\n" for m in metas).encode())
    info = {"generator": "crop_weed_seg.synthetic", "seed": seed, "count": count,
            "preset": preset, "config": config.to_json(), "layout": "folder"}
    write_bytes_atomic(out / "synth.json", (json.dumps(info, indent=2) + "\n").encode())
    return frames
