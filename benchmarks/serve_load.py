"""Benchmark: `mumo serve` under load on loopback (issue #26): throughput, latency and memory with 1, 8 and 32
concurrent clients.

Starts `mumo serve RUN` in a subprocess (default RUN: the default easy-VQA run cached in benchmarks/runs/, shared
with the other benchmarks), waits for /readyz, then for each client count runs that many threads at once, each
with its own keep-alive connection sending `--requests` requests one after another: easy-VQA test images and
their questions, uploaded as multipart, each client starting at another place in the test set. Between phases
the server's /metrics gives the batches it formed. The server's resident memory (VmRSS of /proc/PID/status) is
sampled every 100 ms for the whole run. Then the server is stopped (SIGINT).

Reported per phase: throughput (requests/s over the phase's wall time), p50/p95/p99 latency, errors (anything but
200), the server's mean batch size, and its RSS at the phase's start and end. Targets: 0 errors; 32-client
throughput >= 3x 1-client throughput (micro-batching); memory flat over the 32-client phase (RSS at its end at
most 5 % + 16 MiB above its start).

    python benchmarks/serve_load.py [--run RUN] [--requests 20] [--clients 1 8 32]
    # writes benchmarks/results/serve_load.{json,md}
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SAMPLE_SECONDS = 0.1  # RSS sampling period
FLAT_FRACTION, FLAT_SLACK_MIB = 0.05, 16.0  # "memory flat": end <= start * (1 + fraction) + slack


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float | None:
    """Resident memory of a process (VmRSS), in MiB; None once it has gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmRSS:\s+(\d+) kB", text, re.M)
    return int(match.group(1)) / 1024 if match else None


class RSSSampler(threading.Thread):
    """Samples a process's RSS every SAMPLE_SECONDS into ``samples`` as (seconds since start, MiB)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.samples, self.stop_event, self.t0 = pid, [], threading.Event(), time.monotonic()

    def run(self) -> None:
        while not self.stop_event.is_set():
            rss = rss_mib(self.pid)
            if rss is not None:
                self.samples.append((time.monotonic() - self.t0, rss))
            self.stop_event.wait(SAMPLE_SECONDS)

    def now(self) -> float:
        return time.monotonic() - self.t0

    def at(self, t: float) -> float:
        """The sample nearest to time t."""
        return min(self.samples, key=lambda s: abs(s[0] - t))[1]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile q (0-100) of ``values``."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


def batch_stats(metrics: str) -> tuple[float, int]:
    """(sum of batch sizes, number of batches) of /v1/predict from /metrics."""
    total = re.search(r'^mumo_batch_size_sum\{kind="predict"\} ([\d.]+)$', metrics, re.M)
    count = re.search(r'^mumo_batch_size_count\{kind="predict"\} (\d+)$', metrics, re.M)
    return (float(total.group(1)) if total else 0.0), (int(count.group(1)) if count else 0)


def test_items(n: int) -> list[tuple[bytes, str]]:
    """The first n easy-VQA test questions with their images' bytes."""
    import easy_vqa

    questions, _, image_ids = easy_vqa.get_test_questions()
    paths = easy_vqa.get_test_image_paths()
    cache: dict[int, bytes] = {}
    items = []
    for q, i in zip(questions[:n], image_ids[:n], strict=True):
        if i not in cache:
            cache[i] = Path(paths[i]).read_bytes()
        items.append((cache[i], q))
    return items


def phase(base_url: str, clients: int, requests: int, items: list[tuple[bytes, str]], mc_samples: int | None) -> dict:
    """``clients`` threads sending ``requests`` requests each; their latencies, errors and the wall time."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def client(c: int) -> None:
        with httpx.Client(base_url=base_url, timeout=120) as http:
            http.get("/healthz")  # connected before the clock starts: a phase times requests, not connects
            barrier.wait()
            for r in range(requests):
                image, question = items[(c * requests + r) * 7 % len(items)]
                data = {"question": question} | ({"mc_samples": str(mc_samples)} if mc_samples else {})
                t0 = time.perf_counter()
                try:
                    resp = http.post("/v1/predict", files={"image": ("image.png", image, "image/png")}, data=data)
                    error = None if resp.status_code == 200 else f"{resp.status_code}: {resp.text[:200]}"
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"
                seconds = time.perf_counter() - t0
                with lock:
                    latencies.append(seconds)
                    if error is not None:
                        errors.append(error)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    return {"latencies": latencies, "errors": errors, "wall_seconds": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, help="the VQA run to serve (default: benchmarks/runs/easy-vqa-default)")
    parser.add_argument("--requests", type=int, default=20, help="requests per client in each phase")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32], help="concurrent clients per phase")
    parser.add_argument("--max-batch", type=int, default=16, help="mumo serve --max-batch")
    parser.add_argument("--max-delay-ms", type=float, default=10.0, help="mumo serve --max-delay-ms")
    parser.add_argument("--threads", type=int, default=2, help="mumo serve --threads")
    parser.add_argument("--mc-samples", type=int, default=None, help="ask every request with T MC-dropout passes")
    parser.add_argument("--out-dir", type=Path, default=RESULTS, help="where serve_load.{json,md} go")
    opts = parser.parse_args()

    if opts.run is None:
        sys.path.insert(0, str(Path(__file__).parent))
        from _common import noise_augmented_run

        opts.run = noise_augmented_run(0)  # the default recipe (trained once, then cached)
    items = test_items(500)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    cmd = [
        sys.executable, "-m", "mumo.cli.__main__", "serve", str(opts.run), "--port", str(port), "--device", "cpu",
        "--max-batch", str(opts.max_batch), "--max-delay-ms", str(opts.max_delay_ms), "--threads", str(opts.threads),
        "--no-access-log",
    ]  # fmt: skip
    log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - the server's stderr, shown if it fails; closed below
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, text=True)
    sampler = RSSSampler(server.pid)
    sampler.start()
    phases = []
    try:
        with httpx.Client(base_url=base_url, timeout=10) as http:
            deadline = time.monotonic() + 300
            while True:
                if server.poll() is not None:
                    log.seek(0)
                    raise SystemExit(f"mumo serve exited with {server.returncode} before it was ready:\n{log.read()}")
                try:
                    if http.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("mumo serve was not ready after 300 s")
                time.sleep(0.2)
            ready_rss = rss_mib(server.pid)
            for image, question in items[:5]:  # warm-up, not counted
                http.post("/v1/predict", files={"image": ("i.png", image, "image/png")}, data={"question": question})
            for clients in opts.clients:
                before = batch_stats(http.get("/metrics").text)
                t_start = sampler.now()
                res = phase(base_url, clients, opts.requests, items, opts.mc_samples)
                t_end = sampler.now()
                time.sleep(2 * SAMPLE_SECONDS)  # a sample after the phase
                after = batch_stats(http.get("/metrics").text)
                lat = res["latencies"]
                batches = after[1] - before[1]
                phases.append({
                    "clients": clients, "requests": len(lat), "errors": len(res["errors"]),
                    "error_examples": res["errors"][:3], "wall_seconds": round(res["wall_seconds"], 3),
                    "throughput_rps": round(len(lat) / res["wall_seconds"], 2),
                    "latency_ms": {f"p{q}": round(1000 * percentile(lat, q), 1) for q in (50, 95, 99)},
                    "mean_batch_size": round((after[0] - before[0]) / batches, 2) if batches else None,
                    "batches": batches,
                    "rss_mib_start": round(sampler.at(t_start), 1), "rss_mib_end": round(sampler.at(t_end), 1),
                })  # fmt: skip
                p = phases[-1]
                print(
                    f"{clients:3d} clients: {p['throughput_rps']:7.2f} req/s, p50 {p['latency_ms']['p50']} ms, "
                    f"p95 {p['latency_ms']['p95']} ms, p99 {p['latency_ms']['p99']} ms, {p['errors']} errors, "
                    f"mean batch {p['mean_batch_size']}, RSS {p['rss_mib_start']} -> {p['rss_mib_end']} MiB",
                    file=sys.stderr,
                )
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        sampler.stop_event.set()
        sampler.join()
        log.close()
    write_results(opts, phases, ready_rss, sampler.samples)


def write_results(opts: argparse.Namespace, phases: list[dict], ready_rss: float | None, samples: list) -> None:
    by_clients = {p["clients"]: p for p in phases}
    lo, hi = min(by_clients), max(by_clients)
    speedup = by_clients[hi]["throughput_rps"] / by_clients[lo]["throughput_rps"]
    last = by_clients[hi]
    flat_limit = last["rss_mib_start"] * (1 + FLAT_FRACTION) + FLAT_SLACK_MIB
    targets = {
        "zero_errors": all(p["errors"] == 0 for p in phases),
        f"throughput_{hi}_vs_{lo}_clients_at_least_3x": speedup >= 3.0,
        "memory_flat": last["rss_mib_end"] <= flat_limit,
    }
    res = {
        "run": str(opts.run), "requests_per_client": opts.requests, "max_batch": opts.max_batch,
        "max_delay_ms": opts.max_delay_ms, "threads": opts.threads, "mc_samples": opts.mc_samples,
        "cpu_count": os.cpu_count(), "phases": phases, "throughput_speedup": round(speedup, 2),
        "rss_mib_ready": ready_rss, "rss_mib_peak": max(s[1] for s in samples) if samples else None,
        "memory_flat_limit_mib": round(flat_limit, 1), "targets": targets,
    }  # fmt: skip
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    (opts.out_dir / "serve_load.json").write_text(json.dumps(res, indent=2) + "\n")
    lines = [
        "# `mumo serve` under load (loopback)",
        "",
        f"Run `{opts.run}`, {opts.requests} requests per client and phase, `--max-batch {opts.max_batch} "
        f"--max-delay-ms {opts.max_delay_ms:g} --threads {opts.threads}`"
        + (f", `mc_samples={opts.mc_samples}`" if opts.mc_samples else "")
        + f", {os.cpu_count()} CPUs (clients on the same machine). Written by `benchmarks/serve_load.py`.",
        "",
        "| clients | requests | errors | req/s | p50 ms | p95 ms | p99 ms | mean batch | RSS start -> end MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for p in phases:
        lat = p["latency_ms"]
        lines.append(
            f"| {p['clients']} | {p['requests']} | {p['errors']} | {p['throughput_rps']:.2f} | {lat['p50']} | "
            f"{lat['p95']} | {lat['p99']} | {p['mean_batch_size']} | {p['rss_mib_start']} -> {p['rss_mib_end']} |"
        )
    lines += [
        "",
        f"Throughput with {hi} clients: {speedup:.2f}x that with {lo}. Server RSS: {ready_rss:.1f} MiB when ready, "
        f"peak {res['rss_mib_peak']:.1f} MiB.",
        "",
        "Targets: " + ", ".join(f"{k} {'PASS' if v else 'FAIL'}" for k, v in targets.items()) + ".",
        "",
    ]
    (opts.out_dir / "serve_load.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
