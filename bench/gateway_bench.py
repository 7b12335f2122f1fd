"""Gateway throughput and latency against a bare aiohttp handler, same machine, same run.

    .venv/bin/python -m bench.gateway_bench [--requests 20000] [--seconds 15] [--rate 500]
        [--root DIR]

``--root DIR`` runs the gateway of another checkout (e.g. a ``git archive`` export of an
earlier commit) for before/after comparisons; the load generator and the bare handler stay
this checkout's.

Three processes per target: the server under test, the broker (gateway only) and a load
generator (aiohttp client) in a process of its own, all on loopback. For each target:
1. closed loop: ``--concurrency`` clients send signed Shopify ``checkouts/update`` webhooks
   until ``--requests`` are answered or ``--seconds`` pass: answered webhooks per second;
2. open loop at a fixed ``--rate`` for ``--fixed-seconds``: p50 / p99 latency.
The gateway checks the HMAC, normalizes, produces with acks=all and answers after the
broker's acknowledgement; the bare handler reads the body and answers 200. Printed: a table
and the gateway/bare throughput ratio (target: at least 0.5).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-shopify-secret"
DOMAIN = "bench-shop.myshopify.com"
POLICY = f"""
defaults:
  bands:
    - {{name: low, min: 0}}
stores:
  bench:
    ingest:
      shopify: {{domains: [{DOMAIN}], secret_env: BENCH_SHOPIFY_SECRET}}
      rate_limit: {{per_second: 1000000, burst: 1000000}}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _payloads(count: int) -> list[tuple[bytes, str]]:
    fixture = json.loads((ROOT / "tests/gateway/fixtures/shopify_checkout.json").read_text())
    out = []
    for n in range(count):
        body = json.dumps({**fixture, "token": f"bench-{n:06d}", "total_price": f"{n % 900}.50"})
        raw = body.encode()
        digest = hmac.new(SECRET.encode(), raw, hashlib.sha256).digest()
        out.append((raw, base64.b64encode(digest).decode()))
    return out


# -- the load generator (its own process) -----------------------------------------------------


async def _load(
    url: str, mode: str, requests: int, seconds: float, concurrency: int, rate: float
) -> dict[str, Any]:
    import aiohttp

    payloads = _payloads(256)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = iter(range(10**9))
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(n: int) -> None:
            body, signature = payloads[n % len(payloads)]
            headers = {
                "Content-Type": "application/json",
                "X-Shopify-Topic": "checkouts/update",
                "X-Shopify-Shop-Domain": DOMAIN,
                "X-Shopify-Hmac-Sha256": signature,
                "X-Shopify-Webhook-Id": f"bench-{n}",
            }
            started = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    status = response.status
            except aiohttp.ClientError:
                status = 0
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1

        begin = time.perf_counter()
        deadline = begin + seconds
        if mode == "closed":

            async def worker() -> None:
                while time.perf_counter() < deadline:
                    n = next(counter)
                    if n >= requests:
                        return
                    await one(n)

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        else:
            tasks = []
            total = int(rate * seconds)
            for n in range(total):
                due = begin + n / rate
                pause = due - time.perf_counter()
                if pause > 0:
                    await asyncio.sleep(pause)
                tasks.append(asyncio.create_task(one(n)))
            await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - begin
    ok = statuses.get(200, 0)
    ordered = sorted(latencies)
    return {
        "ok": ok,
        "statuses": statuses,
        "elapsed": elapsed,
        "rate": ok / elapsed if elapsed else 0.0,
        "p50_ms": 1000 * statistics.median(ordered) if ordered else 0.0,
        "p99_ms": 1000 * ordered[int(0.99 * (len(ordered) - 1))] if ordered else 0.0,
    }


def _run_load(url: str, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [
        sys.executable, __file__, "--load", url, "--mode", mode,
        "--requests", str(args.requests), "--seconds",
        str(args.seconds if mode == "closed" else args.fixed_seconds),
        "--concurrency", str(args.concurrency), "--rate", str(args.rate),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=600)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# -- the bare handler (its own process) -------------------------------------------------------


def _serve_bare(port: int) -> None:
    from aiohttp import web

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=b'{"accepted":1}', content_type="application/json")

    app = web.Application()
    app.router.add_post("/webhooks/shopify", handler)
    app.router.add_get("/healthz", lambda _: web.Response(text="ok"))  # type: ignore[arg-type,return-value]
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# -- orchestration ------------------------------------------------------------------------------


def _wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 within {timeout}s")


def _warm(base: str, args: argparse.Namespace) -> None:
    warm = argparse.Namespace(**{**vars(args), "requests": 500, "seconds": 5})
    _run_load(base + "/webhooks/shopify", "closed", warm)


def _spawn_gateway(root: Path, args: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    """``python -m cartbands ARGS`` of the checkout at ``root`` (first on the module path)."""
    from cartbands.broker import _die_with_parent

    path = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "BENCH_SHOPIFY_SECRET": SECRET, "PYTHONPATH": path}
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "cartbands", *args],
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
            env=env,
        )


def _load_average() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--fixed-seconds", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=3, help="Alternating rounds (medians).")
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="Checkout whose gateway is measured."
    )
    parser.add_argument("--load", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="closed", help=argparse.SUPPRESS)
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        _serve_bare(args.serve_bare)
        return
    if args.load:
        result = asyncio.run(
            _load(args.load, args.mode, args.requests, args.seconds, args.concurrency, args.rate)
        )
        print(json.dumps(result))
        return

    sys.path.insert(0, str(ROOT))
    from cartbands.broker import EmbeddedBroker
    from cartbands.processes import stop

    load_before = _load_average()
    closed: dict[str, list[dict[str, Any]]] = {"bare aiohttp handler": [], "gateway": []}
    fixed: dict[str, list[dict[str, Any]]] = {"bare aiohttp handler": [], "gateway": []}
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        policy = Path(tmp) / "policy.yaml"
        policy.write_text(POLICY, encoding="utf-8")
        bare_port, gateway_port = _free_port(), _free_port()
        bare = subprocess.Popen([sys.executable, __file__, "--serve-bare", str(bare_port)])
        gateway = _spawn_gateway(
            args.root.resolve(),
            ["gateway", "--broker", broker.url, "--port", str(gateway_port),
             "--policy", str(policy), "--topic-prefix", f"bench{os.getpid()}-",
             "--partitions", "4", "--loglevel", "warning"],
            Path(tmp) / "gateway.log",
        )  # fmt: skip
        bases = {
            "bare aiohttp handler": f"http://127.0.0.1:{bare_port}",
            "gateway": f"http://127.0.0.1:{gateway_port}",
        }
        try:
            _wait_http(bases["bare aiohttp handler"] + "/healthz")
            _wait_http(bases["gateway"] + "/readyz")
            for base in bases.values():
                _warm(base, args)
            for round_ in range(1, args.rounds + 1):
                for name, base in bases.items():
                    result = _run_load(base + "/webhooks/shopify", "closed", args)
                    closed[name].append(result)
                    print(f"  round {round_} {name}: {result['rate']:.0f}/s", file=sys.stderr)
            for name, base in bases.items():
                fixed[name].append(_run_load(base + "/webhooks/shopify", "open", args))
            packing = asyncio.run(
                _count_messages(broker.bootstrap, f"bench{os.getpid()}-cart-events")
            )
        finally:
            stop(bare)
            stop(gateway)
    _print(closed, fixed, args, load_before)
    events, messages = packing
    print(
        f"cart-events written by the gateway: {events:,} events in {messages:,} messages "
        f"({events / max(messages, 1):.1f} events/message: a produce round's records of one "
        "partition share a message)"
    )


async def _count_messages(bootstrap: str, topic: str) -> tuple[int, int]:
    """(events, messages) on ``topic``: how many events the gateway packed per message."""
    from agents.messages import records_of
    from bus.kafka import reader

    consumer = reader(bootstrap, [topic])
    await consumer.start()
    events = messages = 0
    try:
        while True:
            found = await consumer.getmany(timeout_ms=2000, max_records=10_000)
            if not found:
                return events, messages
            for batch in found.values():
                for message in batch:
                    messages += 1
                    events += len(records_of(json.loads(message.value)))
    finally:
        await consumer.stop()


def _print(
    closed: dict[str, list[dict[str, Any]]],
    fixed: dict[str, list[dict[str, Any]]],
    args: argparse.Namespace,
    load_before: str,
) -> None:
    print()
    if args.root.resolve() != ROOT:
        print(f"gateway of {args.root.resolve()}")
    print(f"gateway benchmark: {os.cpu_count()} CPUs (load average before {load_before}, "
          f"after {_load_average()}), {args.rounds} alternating rounds, concurrency "
          f"{args.concurrency}, up to {args.requests} requests or {args.seconds:.0f}s per round; "
          f"latency: open loop at {args.rate:.0f}/s for {args.fixed_seconds:.0f}s")  # fmt: skip
    print()
    print(f"| {'server':<22} | {'webhooks/s (median)':>19} | {'per round':<22} "
          f"| {'p50 ms':>7} | {'p99 ms':>7} | {'non-200':>7} |")  # fmt: skip
    print(f"|{'-' * 24}|{'-' * 21}|{'-' * 24}|{'-' * 9}|{'-' * 9}|{'-' * 9}|")
    medians = {}
    for name, rounds in closed.items():
        rates = [r["rate"] for r in rounds]
        medians[name] = statistics.median(rates)
        (latency,) = fixed[name]
        bad = sum(v for r in [*rounds, latency] for k, v in r["statuses"].items() if k != "200")
        per_round = ", ".join(f"{r:.0f}" for r in rates)
        print(f"| {name:<22} | {medians[name]:>19.0f} | {per_round:<22} "
              f"| {latency['p50_ms']:>7.1f} | {latency['p99_ms']:>7.1f} | {bad:>7} |")  # fmt: skip
    bare, gateway = medians["bare aiohttp handler"], medians["gateway"]
    ratio = gateway / bare if bare else 0.0
    pairs = zip(closed["gateway"], closed["bare aiohttp handler"], strict=True)
    per_round = ", ".join(f"{g['rate'] / b['rate']:.2f}" for g, b in pairs if b["rate"])
    print()
    print(f"gateway / bare = {ratio:.2f} (per round {per_round}); "
          f"target >= 0.50: {'met' if ratio >= 0.5 else 'NOT met'}")  # fmt: skip


if __name__ == "__main__":
    main()
