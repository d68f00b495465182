"""``crop-weed-seg bench``: latency and throughput of the Segmenter per backend, input size and
model (several models side by side), as a table and optionally as JSON with the machine."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from crop_weed_seg.backends import BackendOptions, available_backends
from crop_weed_seg.image_files import write_bytes_atomic
from crop_weed_seg.tools.benchmark import run_benchmark
from crop_weed_seg.tools.cli_options import parse_size
from crop_weed_seg.tools.machine import describe_machine

HELP = "latency/throughput per backend and input size"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser("bench", help=HELP)
    p.add_argument("--model", action="append", default=None,
                   help="model folder (default models/default); repeat to compare models side "
                        "by side in one run")
    p.add_argument("--backend", action="append", default=None,
                   help="repeatable; default: every backend available here")
    p.add_argument("--sizes", type=parse_size, nargs="+", default=[(480, 640), (720, 1280),
                                                                   (1080, 1920)],
                   help="camera sizes HxW (default 480x640 720x1280 1080x1920)")
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="fp32", choices=("fp32", "fp16"))
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--cuda-graphs", action="store_true")
    p.add_argument("--json", type=Path, default=None)
    return p


def run(args: argparse.Namespace) -> int:
    backends = args.backend or available_backends()
    options = BackendOptions(device=args.device, precision=args.precision, threads=args.threads,
                             cuda_graphs=args.cuda_graphs)
    models = args.model or ["models/default"]
    results = []  # sizes outer, models inner: several models are measured side by side
    for size in args.sizes:
        for model in models:
            results += [(model, r) for r in run_benchmark(model, backends, (size,), args.frames,
                                                          args.warmup, options)]
    width = max(len(str(m)) for m in models)
    print(f"{'model':{width}s} {'backend':12s} {'input':>10s} {'p50':>7s} {'p95':>7s} {'p99':>7s} "
          f"{'fps':>7s} {'pre':>6s} {'infer':>7s} {'post':>6s} {'RSS MiB':>8s}  detail")
    for model, r in results:
        print(f"{str(model):{width}s} {r.backend:12s} {r.input[1]:>5d}x{r.input[0]:<4d} "
              f"{r.p50_ms:7.2f} {r.p95_ms:7.2f} {r.p99_ms:7.2f} {r.fps:7.1f} "
              f"{r.preprocess_ms:6.2f} {r.infer_ms:7.2f} {r.postprocess_ms:6.2f} "
              f"{r.peak_rss_mib:8.0f}  {r.detail}")
    if args.json:
        doc = {"model": str(models[0]) if len(models) == 1 else [str(m) for m in models],
               "machine": {**describe_machine(), "date": time.strftime("%Y-%m-%d")},
               "results": [{"model": str(m), **r.to_json()} for m, r in results]}
        write_bytes_atomic(args.json, (json.dumps(doc, indent=2) + "\n").encode())
    return 0
