#!/usr/bin/env python3
"""TensorRT acceptance run on a Jetson (or any machine with TensorRT and CUDA).

    python3 scripts/jetson_acceptance.py [--model models/default] [--precision fp32,fp16]
                                       [--runs 300] [--keep] [--no-trtexec]

For each precision it checks, with ``crop_weed_seg.backends.tensorrt_backend.TensorRTBackend``
and a fresh engine cache in a temporary folder under the user's engine cache directory
(``crop_weed_seg.backends.engine_cache.default_cache_dir()``):

1. the first construction builds the engine (``engine_status`` "built"); before TensorRT 10.12
   fp16 / int8 use the builder flags, from 10.12 (flags deprecated, gone in 11) an FP16 ONNX or
   an INT8 Q/DQ ONNX (calibrated on the golden frames) built as a strongly typed network;
2. a second construction is a cache hit ("hit");
3. parity against the ONNX Runtime FP32 goldens (``test/fixtures/trt_goldens/goldens.npz``):
   argmax agreement ≥ 99.99 % (fp32) / ≥ 99.5 % (fp16) / ≥ 99 % (int8), no NaN or Inf;
4. latency of ``infer()`` (host → device → host) p50/p90/p99 over ``--runs`` runs, timed with
   CUDA events (torch.cuda.Event, else cuda-python), plus wall-clock;
5. a corrupted plan file is detected and rebuilt ("rebuilt: …"), and the rebuilt engine still
   matches the goldens;

then, when ``trtexec`` is on PATH, ``trtexec --onnx=… --fp16`` for the same input size and its
"GPU Compute Time" median, for comparison. It prints a Markdown report to paste into an issue
and exits 0 when every check passed, 1 when one failed, 2 when TensorRT or CUDA is missing.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_GOLDENS = REPO / "test" / "fixtures" / "trt_goldens" / "goldens.npz"
DEFAULT_MODEL = REPO / "models" / "default"
#: Minimum per-pixel argmax agreement with the ONNX Runtime FP32 goldens.
MIN_AGREEMENT = {"fp32": 0.9999, "fp16": 0.995, "int8": 0.99}
EXIT_OK, EXIT_FAILED, EXIT_UNAVAILABLE = 0, 1, 2


@dataclass
class Check:
    """One acceptance check: ``passed`` None means skipped (not a failure)."""

    precision: str
    name: str
    passed: bool | None
    detail: str


# --- pure helpers (tested without TensorRT) ----------------------------------------------------


def engine_route(precision: str, trt_version: tuple[int, int], contract: Any, workdir: Path,
                 calibration: Sequence[np.ndarray]) -> Any:
    """The ``EngineOptions`` that build ``precision`` the way this TensorRT accepts it.

    Before 10.12: the model's FP32 ONNX with the FP16 / INT8 builder flag. From 10.12 (flags
    deprecated, gone in 11): an FP16 ONNX (``convert_fp16``) or an INT8 Q/DQ ONNX
    (``quantize_int8``, calibrated on ``calibration``: the golden frames) written to
    ``workdir``, built as a strongly typed network - what ``crop-weed-seg quantize`` and
    ``build-engine --strongly-typed`` do for a user.
    """
    from crop_weed_seg.backends.engine_options import EngineOptions
    from crop_weed_seg.backends.tensorrt_backend import STRONGLY_TYPED_ONLY_FROM
    from crop_weed_seg.training import precision as quant

    if precision == "fp32" or tuple(trt_version) < STRONGLY_TYPED_ONLY_FROM:
        return EngineOptions(precision=precision)
    workdir.mkdir(parents=True, exist_ok=True)
    onnx = workdir / f"model_{precision}.onnx"
    if precision == "fp16":
        quant.convert_fp16(contract.onnx_path, onnx)
    else:
        quant.quantize_int8(contract.onnx_path, onnx, contract, list(calibration))
    return EngineOptions(precision=precision, onnx=str(onnx.resolve()), strongly_typed=True)


def argmax_agreement(labels: np.ndarray, reference: np.ndarray) -> float:
    """Share of pixels whose label equals the reference (shapes must match after squeezing a
    leading batch dimension of 1)."""
    a, b = np.asarray(labels), np.asarray(reference)
    if a.shape != b.shape:
        a, b = a.reshape(a.shape[-2:]) if a.ndim > 2 else a, \
            b.reshape(b.shape[-2:]) if b.ndim > 2 else b
    if a.shape != b.shape:
        raise ValueError(f"label shapes differ: {a.shape} vs {b.shape}")
    if a.size == 0:
        raise ValueError("empty label maps")
    return float(np.count_nonzero(a.astype(np.int64) == b.astype(np.int64)) / a.size)


def percentiles(samples_ms: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99 and mean of latency samples (milliseconds)."""
    if not samples_ms:
        raise ValueError("no latency samples")
    arr = np.asarray(samples_ms, dtype=np.float64)
    p50, p90, p99 = np.percentile(arr, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "mean": float(arr.mean()),
            "runs": int(arr.size)}


_TRTEXEC_GPU = re.compile(r"GPU Compute Time:\s*(?P<body>[^\n]*)")
_TRTEXEC_FIELD = re.compile(r"(min|max|mean|median|percentile\((\d+)%\))\s*=\s*([0-9.eE+-]+)\s*ms")


def parse_trtexec_gpu_compute(output: str) -> dict[str, float] | None:
    """The "GPU Compute Time" summary of ``trtexec`` output (TensorRT 8.5 … 10): keys min, max,
    mean, median and p<N> for each percentile; None when the line is missing."""
    found = None
    for match in _TRTEXEC_GPU.finditer(output):
        found = match  # the summary is the last one
    if found is None:
        return None
    values: dict[str, float] = {}
    for name, pct, number in _TRTEXEC_FIELD.findall(found.group("body")):
        values[f"p{pct}" if pct else name] = float(number)
    return values if "median" in values else None


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub Markdown table; ``|`` in cells is escaped."""
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def checks_table(checks: Sequence[Check]) -> str:
    mark = {True: "PASS", False: "**FAIL**", None: "skipped"}
    return format_table(("precision", "check", "result", "detail"),
                        [(c.precision, c.name, mark[c.passed], c.detail) for c in checks])


def latency_table(rows: Sequence[tuple[str, str, dict[str, float]]]) -> str:
    return format_table(("precision", "timer", "p50 ms", "p90 ms", "p99 ms", "mean ms", "runs"),
                        [(p, timer, f"{s['p50']:.2f}", f"{s['p90']:.2f}", f"{s['p99']:.2f}",
                          f"{s['mean']:.2f}", s["runs"]) for p, timer, s in rows])


def exit_code(checks: Sequence[Check]) -> int:
    return EXIT_FAILED if any(c.passed is False for c in checks) else EXIT_OK


def corrupt_file(path: Path) -> None:
    """Overwrite bytes in the middle of a file (keeps its size) so its checksum changes."""
    data = bytearray(path.read_bytes())
    if not data:
        path.write_bytes(b"corrupt")
        return
    start = len(data) // 2
    for i in range(start, min(len(data), start + 4096)):
        data[i] ^= 0xA5
    path.write_bytes(bytes(data))


def load_goldens(path: Path) -> dict[str, Any]:
    with np.load(path, allow_pickle=False) as data:
        doc = {k: data[k] for k in data.files}
    doc["names"] = [str(n) for n in doc["names"]]
    doc["model_sha256"] = str(doc["model_sha256"])
    return doc


# --- device parts ------------------------------------------------------------------------------

def _missing_runtime() -> str | None:
    """Why TensorRT cannot run here, or None."""
    try:
        import tensorrt  # noqa: F401
    except ImportError as exc:
        return (f"TensorRT's Python bindings are not importable ({exc}). On a Jetson they come "
                "from JetPack's apt packages (python3-libnvinfer) for the system Python: run "
                "with /usr/bin/python3 or a venv made with --system-site-packages.")
    return None


def _event_timer() -> tuple[str, Callable[[Callable[[], Any]], float]] | None:
    """(name, time(fn) -> ms) with CUDA events, or None when neither torch.cuda nor
    cuda-python is available."""
    try:
        import torch

        if torch.cuda.is_available():
            def torch_time(fn: Callable[[], Any]) -> float:
                start = torch.cuda.Event(enable_timing=True)
                end = torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                end.synchronize()
                return float(start.elapsed_time(end))
            return "CUDA events (torch)", torch_time
    except ImportError:
        pass
    try:
        try:
            from cuda.bindings import runtime as cudart
        except ImportError:
            from cuda import cudart  # type: ignore[no-redef]  # cuda-python < 13

        def check(result: Any) -> Any:
            err, *rest = result if isinstance(result, tuple) else (result,)
            if int(err) != 0:
                raise RuntimeError(f"CUDA runtime error {err}")
            return rest[0] if len(rest) == 1 else rest

        def cudart_time(fn: Callable[[], Any]) -> float:
            start, end = check(cudart.cudaEventCreate()), check(cudart.cudaEventCreate())
            try:
                check(cudart.cudaEventRecord(start, 0))
                fn()
                check(cudart.cudaEventRecord(end, 0))
                check(cudart.cudaEventSynchronize(end))
                return float(check(cudart.cudaEventElapsedTime(start, end)))
            finally:
                cudart.cudaEventDestroy(start)
                cudart.cudaEventDestroy(end)
        return "CUDA events (cuda-python)", cudart_time
    except ImportError:
        return None


def _run_trtexec(onnx: Path, input_name: str, size: tuple[int, int], dynamic: bool,
                 precision: str) -> tuple[dict[str, float] | None, str]:
    exe = shutil.which("trtexec") or next(
        (p for p in ("/usr/src/tensorrt/bin/trtexec",) if os.access(p, os.X_OK)), None)
    if exe is None:
        return None, "trtexec not on PATH (JetPack: /usr/src/tensorrt/bin/trtexec)"
    shape = f"{input_name}:1x3x{size[0]}x{size[1]}"
    cmd = [exe, f"--onnx={onnx}", "--warmUp=500", "--iterations=300", "--duration=0"]
    if dynamic:
        cmd += [f"--minShapes={shape}", f"--optShapes={shape}", f"--maxShapes={shape}"]
    if precision in ("fp16", "int8"):
        cmd.append(f"--{precision}")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
    except subprocess.TimeoutExpired:
        return None, "trtexec timed out after 30 min"
    parsed = parse_trtexec_gpu_compute(proc.stdout + proc.stderr)
    if proc.returncode != 0 or parsed is None:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        return None, f"trtexec failed (exit {proc.returncode}): {' / '.join(tail)}"
    return parsed, " ".join(cmd)


def _environment() -> list[tuple[str, str]]:
    import tensorrt as trt

    rows = [("TensorRT", trt.__version__), ("Python", platform.python_version()),
            ("machine", platform.machine())]
    model = Path("/proc/device-tree/model")
    if model.is_file():
        rows.append(("device", model.read_text(errors="replace").strip("\x00 \n")))
    release = Path("/etc/nv_tegra_release")
    if release.is_file():
        rows.append(("L4T", release.read_text(errors="replace").splitlines()[0][:80]))
    try:
        import torch

        if torch.cuda.is_available():
            rows.append(("GPU", torch.cuda.get_device_name(0)))
    except ImportError:
        pass
    return rows


def _run_precision(precision: str, contract: Any, goldens: dict[str, Any], cache_dir: Path,
                   runs: int, timer: tuple[str, Callable[[Callable[[], Any]], float]] | None,
                   checks: list[Check], latencies: list[tuple[str, str, dict[str, float]]]
                   ) -> None:
    import tensorrt as trt

    from crop_weed_seg.backends.base import BackendOptions
    from crop_weed_seg.backends.engine_cache import EngineCache
    from crop_weed_seg.backends.tensorrt_backend import TensorRTBackend, trt_version
    from crop_weed_seg.model.preprocess import to_tensor

    tensors = [to_tensor(np.ascontiguousarray(f), contract.input) for f in goldens["frames"]]
    try:
        engine = engine_route(precision, trt_version(trt), contract, cache_dir / "onnx", tensors)
    except Exception as exc:  # noqa: BLE001 - report a failed conversion as a failed check
        checks.append(Check(precision, "build", False, f"ONNX for {precision}: "
                                                       f"{type(exc).__name__}: {exc}"))
        return
    options = BackendOptions(device="cuda", precision=precision, engine=engine)

    def make() -> tuple[Any, float]:
        t0 = time.perf_counter()
        backend = TensorRTBackend(contract, options, cache_dir=cache_dir, allow_build=True)
        return backend, time.perf_counter() - t0

    def parity(backend: Any, label: str) -> None:
        worst, nan, diff = 1.0, 0, 0.0
        for tensor, ref_labels, ref_conf in zip(tensors, goldens["labels"],
                                                goldens["confidence"]):
            out = backend.infer(tensor)
            worst = min(worst, argmax_agreement(out.labels, ref_labels))
            conf = np.asarray(out.confidence, dtype=np.float32)
            if not np.isfinite(conf).all():
                nan += 1
            else:
                diff = max(diff, float(np.abs(conf - ref_conf.reshape(conf.shape)).max()))
        floor = MIN_AGREEMENT[precision]
        checks.append(Check(precision, label, worst >= floor and nan == 0,
                            f"worst argmax agreement {100 * worst:.4f} % (≥ {100 * floor:g} %), "
                            f"{nan} frame(s) with NaN/Inf, max |Δconfidence| {diff:.2e}, "
                            f"{len(tensors)} golden frame(s)"))

    try:
        first, seconds = make()
    except Exception as exc:  # noqa: BLE001 - report any build failure as a failed check
        checks.append(Check(precision, "build", False, f"{type(exc).__name__}: {exc}"))
        return
    route = ("strongly typed from " + Path(engine.onnx).name) if engine.strongly_typed \
        else "builder flags"
    status = getattr(first, "engine_status", "?")
    checks.append(Check(precision, "build", status == "built" or status.startswith("rebuilt"),
                        f"engine_status {status!r} in {seconds:.1f} s ({route}), key "
                        f"{str(getattr(first, 'engine_key', '?'))[:16]}, {first.detail}"))
    first.close()

    second, seconds = make()
    status = getattr(second, "engine_status", "?")
    checks.append(Check(precision, "cache hit on second start", status == "hit",
                        f"engine_status {status!r}, load {seconds:.2f} s"))
    parity(second, "parity vs ONNX Runtime FP32 goldens")

    tensor = tensors[0]
    for _ in range(20):  # warm-up
        second.infer(tensor)
    wall: list[float] = []
    events: list[float] = []
    for _ in range(runs):
        t0 = time.perf_counter()
        if timer is not None:
            events.append(timer[1](lambda: second.infer(tensor)))
        else:
            second.infer(tensor)
        wall.append((time.perf_counter() - t0) * 1e3)
    if events and timer is not None:
        latencies.append((precision, timer[0], percentiles(events)))
    latencies.append((precision, "wall clock (perf_counter)", percentiles(wall)))
    key = str(second.engine_key)
    second.close()

    plan = EngineCache(cache_dir).plan_path(contract.name, key)
    if not plan.is_file():
        checks.append(Check(precision, "rebuild after corruption", False,
                            f"plan file {plan} not found where the cache should keep it"))
        return
    corrupt_file(plan)
    third, seconds = make()
    status = getattr(third, "engine_status", "?")
    checks.append(Check(precision, "rebuild after corruption", status.startswith("rebuilt"),
                        f"engine_status {status!r} in {seconds:.1f} s"))
    parity(third, "parity after rebuild")
    third.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="model folder")
    parser.add_argument("--goldens", type=Path, default=DEFAULT_GOLDENS)
    parser.add_argument("--precision", default="fp32,fp16",
                        help="comma-separated precisions to check (fp32, fp16, int8)")
    parser.add_argument("--runs", type=int, default=300, help="timed runs per precision")
    parser.add_argument("--keep", action="store_true", help="keep the temporary engine cache")
    parser.add_argument("--no-trtexec", action="store_true", help="skip the trtexec comparison")
    args = parser.parse_args(argv)
    precisions = [p.strip() for p in args.precision.split(",") if p.strip()]
    unknown = [p for p in precisions if p not in MIN_AGREEMENT]
    if unknown:
        parser.error(f"unknown precision(s) {unknown}; choose from {sorted(MIN_AGREEMENT)}")

    why = _missing_runtime()
    if why is not None:
        print(f"jetson_acceptance: cannot run: {why}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    if str(REPO) not in sys.path and (REPO / "crop_weed_seg").is_dir():
        sys.path.insert(0, str(REPO))
    from crop_weed_seg.backends.engine_cache import default_cache_dir
    from crop_weed_seg.model.contract import load_model_contract

    contract = load_model_contract(args.model)
    goldens = load_goldens(args.goldens)
    checks: list[Check] = []
    latencies: list[tuple[str, str, dict[str, float]]] = []
    if goldens["model_sha256"] != contract.onnx_sha256:
        checks.append(Check("-", "goldens match the model", False,
                            f"goldens are from ONNX {goldens['model_sha256'][:12]}…, the model is "
                            f"{contract.onnx_sha256[:12]}…: run test/fixtures/make_trt_goldens.py"))
    timer = _event_timer()
    if timer is None:
        print("note: neither torch.cuda nor cuda-python is available: wall-clock timing only",
              file=sys.stderr)
    root = default_cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    cache_dir = Path(tempfile.mkdtemp(prefix="acceptance-", dir=root))
    print(f"engine cache for this run: {cache_dir}", file=sys.stderr)
    trtexec_rows = []
    try:
        for precision in precisions:
            print(f"== {precision}: building (this can take minutes on a Jetson) …",
                  file=sys.stderr)
            _run_precision(precision, contract, goldens, cache_dir, args.runs, timer, checks,
                           latencies)
        if not args.no_trtexec:
            for precision in [p for p in precisions if p != "int8"]:
                parsed, detail = _run_trtexec(contract.onnx_path, contract.input_name,
                                              contract.input.size, contract.dynamic_size,
                                              precision)
                ours = next((s for p, t, s in latencies if p == precision), None)
                if parsed is None:
                    trtexec_rows.append((precision, "–", "–", "–", detail))
                else:
                    ratio = f"{ours['p50'] / parsed['median']:.2f}x" if ours else "–"
                    trtexec_rows.append((precision, f"{parsed['median']:.2f}",
                                         f"{ours['p50']:.2f}" if ours else "–", ratio,
                                         f"`{detail}`"))
    finally:
        if not args.keep:
            shutil.rmtree(cache_dir, ignore_errors=True)

    h, w = contract.input.size
    print(f"### crop_weed_seg TensorRT acceptance: {contract.name}, input {h}x{w}\n")
    print(format_table(("", ""), _environment()) + "\n")
    print(checks_table(checks) + "\n")
    if latencies:
        print("Latency of `TensorRTBackend.infer()` (host → device → host, 1 frame):\n")
        print(latency_table(latencies) + "\n")
    if trtexec_rows:
        print("trtexec GPU compute time (device only) vs our end-to-end p50:\n")
        print(format_table(("precision", "trtexec median ms", "ours p50 ms", "ours / trtexec",
                            "command"), trtexec_rows) + "\n")
    code = exit_code(checks)
    print("**Result: " + ("all checks passed**" if code == EXIT_OK else "FAILED**"))
    return code


if __name__ == "__main__":
    sys.exit(main())
