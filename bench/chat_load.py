"""How many shoppers one Daphne process streams to, and what the app adds to the model's own
speed — against a bare relay on the same machine, in the same run.

    cd /work/main && .venv/bin/python bench/chat_load.py [--n 50,200,500,1000] [--idle 5000]
        [--db postgres|sqlite] [--layer memory|stock|redis] [--coalesce-ms 15] [--coalesce-max-ms 100]
        [--products 50000] [--tokens 200] [--rate 50] [--ttft 0.2] [--turns 2] [--profile DIR] [--json FILE]
        [--switch-interval S] [--no-relay] [--no-quiet] [--gc-stats]

--layer: memory = the app's default in-memory layer (chat.events.InMemoryChannelLayer), stock =
channels' own in-memory layer (bench/app_settings.py), redis = channels-redis and the Redis journal
(BENCH_REDIS_URL, default Redis database 5). PostgreSQL: the database `supportbot_bench_chat` is
created through BENCH_POSTGRES_URL (default the server's `postgres` database; never `test`).

What runs where (2 cores): the app — `daphne supportbot.asgi:application`, one process, pinned
to core 0 — and, on core 1, the upstream simulator (bench/upstream_sim.py: --tokens chunks at
--rate per second after --ttft, to any number of requests) and the shoppers (bench/load_client.py,
one process per 250). The database (PostgreSQL by default, the catalog of --products generated
products loaded once into `supportbot_bench_chat` and kept; `--db sqlite` uses var/bench-chat/)
and Redis (`--layer redis` only) are separate servers and are not pinned.

For each N: a fresh app process, a warm-up, then N shoppers, each with its own session (GET /,
like the chat page), sending --turns messages (realistic catalog questions, the first within
the first 2 s) and reading the streamed replies. Then the same load against the bare relay
(bench/relay.py under the same Daphne, pinned the same way). Per token: upstream write → shopper
read; per turn: message sent → upstream has the request (storing, grounding, building), and
message sent → the reply's first token read (what the shopper waits for before anything shows); lost,
duplicated, out-of-order tokens; CPU and peak RSS of the server process; tokens delivered per
second; CPU of the PostgreSQL server processes over the load ("pg %", they share the two cores).
Then the turn overhead on a quiet app (4 shoppers, 5-token replies, ~0.5 s between
turns: a few turns a second), and the memory of
--idle idle websockets. Rate limits and the request pool are lifted for the run
(CHAT_MESSAGES_PER_MINUTE, CHAT_MESSAGES_PER_MINUTE_PER_IP, CHAT_CONNECTIONS_PER_IP,
LLM_MAX_CONCURRENCY). Not part of the tests.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
PYTHON = sys.executable
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
DB_NAME = "supportbot_bench_chat"
DATABASE_URL = f"{POSTGRES_URL.rsplit('/', 1)[0]}/{DB_NAME}"  # the app's, in every benchmark
VAR_DIR = ROOT / "var" / "bench-chat"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
APP_CORE, LOAD_CORE = "0", "1"
PORT_STREAM, PORT_QUICK, PORT_SERVER = 18100, 18101, 18200
PER_WORKER = 250
TICK = os.sysconf("SC_CLK_TCK")


def app_environ_set() -> None:
    """For scripts that load the app in their own process (turn_steps.py, page_load.py): its
    settings against the benchmark's database, without Redis and without an env file."""
    os.environ["DATABASE_URL"] = DATABASE_URL
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("SUPPORTBOT_ENV_FILE", "/dev/null")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportbot.settings")


def _raise_nofile() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def spawn(command: list[str], *, core: str, env: dict[str, str] | None = None, **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["taskset", "-c", core, *command], env=env, cwd=ROOT, preexec_fn=_raise_nofile, text=True, **kw
    )


def wait_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def postgres_cpu_seconds() -> float:
    """CPU time of every PostgreSQL server process so far (it shares the two cores)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in {"postgres", "postmaster"}:
                    total += cpu_seconds(int(entry.name))
            except OSError:
                continue
    return total


def core_times(core: str) -> tuple[int, int]:
    """(busy, total) jiffies of one core so far, from /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{core} "):
            values = [int(v) for v in line.split()[1:]]
            idle = values[3] + values[4]
            return sum(values) - idle, sum(values)
    return 0, 1


def memory_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def app_env(args: argparse.Namespace, *, upstream_port: int) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "supportbot.settings",
        "SUPPORTBOT_ENV_FILE": os.devnull,
        "SUPPORTBOT_VAR_DIR": str(VAR_DIR),
        "LLM_BASE_URL": f"http://127.0.0.1:{upstream_port}/v1",
        "LLM_API_KEY": "bench",
        "LLM_MODEL": "bench",
        "BENCH_UPSTREAM_URL": f"http://127.0.0.1:{upstream_port}/v1",
        # Lifted for the benchmark: every shopper here comes from one address, and the pool
        # would queue.
        "CHAT_MESSAGES_PER_MINUTE": "100000",
        "CHAT_MESSAGES_PER_MINUTE_PER_IP": "100000",
        "CHAT_CONNECTIONS_PER_IP": "100000",
        "LLM_MAX_CONCURRENCY": "100000",
        "CHAT_COALESCE_MS": str(args.coalesce_ms),
        "CHAT_COALESCE_MAX_MS": str(args.coalesce_max_ms),
        "DJANGO_DEBUG": "false",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    if args.db == "postgres":
        env["DATABASE_URL"] = DATABASE_URL
    if args.layer == "redis":
        env["REDIS_URL"] = REDIS_URL
    if args.layer == "stock":
        env["DJANGO_SETTINGS_MODULE"] = "bench.app_settings"
        env["BENCH_LAYER"] = "stock"
    if args.switch_interval:
        env["DJANGO_SETTINGS_MODULE"] = "bench.app_settings"
        env["BENCH_SWITCH_INTERVAL"] = str(args.switch_interval)
    if args.gc_stats:
        # bench/gcstats/sitecustomize.py times the server's garbage collector.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH / "gcstats"), env.get("PYTHONPATH")]))
    return env


def prepare(args: argparse.Namespace) -> None:
    """Create the database and load the catalog once; empty the chat tables every run."""
    if args.db == "postgres":
        import psycopg
        from psycopg import sql

        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone():
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB_NAME)))
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    command = [PYTHON, str(BENCH / "chat_load_prepare.py"), f"--products={args.products}", f"--queries={args.queries}"]
    subprocess.run(command, env=app_env(args, upstream_port=PORT_STREAM), cwd=ROOT, check=True)


def start_server(
    args: argparse.Namespace, target: str, *, upstream_port: int, gc_stats: Path | None = None
) -> subprocess.Popen[str]:
    app = "supportbot.asgi:application" if target == "app" else "bench.relay:application"
    command = [str(ROOT / ".venv/bin/daphne"), "-b", "127.0.0.1", "-p", str(PORT_SERVER), "-v", "0", app]
    env = app_env(args, upstream_port=upstream_port)
    if gc_stats is not None:
        env["BENCH_GC_STATS"] = str(gc_stats)
    server = spawn(command, core=APP_CORE, env=env)
    wait_port(PORT_SERVER)
    return server


def run_load(
    args: argparse.Namespace, *, shoppers: int, turns: int, tokens: int, spread: float, think: float
) -> dict[str, Any]:
    """Start the shopper processes, let them connect, start them together, merge their results."""
    workers = []
    for first in range(0, shoppers, PER_WORKER):
        command = [
            PYTHON,
            str(BENCH / "load_client.py"),
            f"--port={PORT_SERVER}",
            f"--count={min(PER_WORKER, shoppers - first)}",
            f"--first={first}",
            f"--turns={turns}",
            f"--tokens={tokens}",
            f"--spread={spread}",
            f"--think={think}",
            f"--queries={args.queries_file}",
            "--session",
        ]
        workers.append(spawn(command, core=LOAD_CORE, stdin=subprocess.PIPE, stdout=subprocess.PIPE))
    for worker in workers:
        assert worker.stdout is not None
        line = worker.stdout.readline()
        if line.strip() != "connected":
            raise RuntimeError(f"a load worker failed to connect: {line!r}")
    start = time.monotonic() + 0.3
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write(f"go {start}\n")
        worker.stdin.flush()
    merged: dict[str, Any] = {
        "delays": [],
        "overheads": [],
        "first_tokens": [],
        "replies": [],
        "statuses": {},
        "errors": {},
        "first": 0,
        "last": 0,
    }
    for worker in workers:
        out, _ = worker.communicate(timeout=600)  # the workers end by their --deadline (180 s)
        part = json.loads(out.strip().splitlines()[-1])
        for key in ("delays", "overheads", "first_tokens", "replies"):
            merged[key] += part[key]
        for key in ("tokens", "frames", "lost", "duplicated", "reordered", "turns"):
            merged[key] = merged.get(key, 0) + part[key]
        for key in ("statuses", "errors"):
            for name, count in part[key].items():
                merged[key][name] = merged[key].get(name, 0) + count
        if part["first"]:
            merged["first"] = min(merged["first"] or part["first"], part["first"])
            merged["last"] = max(merged["last"], part["last"])
    merged["expected"] = shoppers * turns * tokens
    return merged


def percentile(values: list[float], p: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


def summary(load: dict[str, Any], *, cpu: float, wall: float, peak_kb: int, load_core: float) -> dict[str, Any]:
    delays = [d / 1000 for d in load["delays"]]
    overheads = [o / 1000 for o in load["overheads"]]
    first_tokens = [f / 1000 for f in load["first_tokens"]]
    replies = [r / 1000 for r in load["replies"]]
    span = (load["last"] - load["first"]) / 1e6
    return {
        "delay_p50": percentile(delays, 0.5),
        "delay_p99": percentile(delays, 0.99),
        "delay_max": max(delays, default=math.nan),
        "overhead_p50": percentile(overheads, 0.5),
        "overhead_p99": percentile(overheads, 0.99),
        "first_token_p50": percentile(first_tokens, 0.5),
        "first_token_p99": percentile(first_tokens, 0.99),
        "reply_p50": percentile(replies, 0.5),
        "reply_p99": percentile(replies, 0.99),
        "tokens": load["tokens"],
        "expected": load["expected"],
        "lost": load["lost"],
        "duplicated": load["duplicated"],
        "reordered": load["reordered"],
        "turns": load["turns"],
        "statuses": load["statuses"],
        "errors": load["errors"],
        "tokens_per_s": load["tokens"] / span if span > 0 else math.nan,
        "tokens_per_frame": load["tokens"] / load["frames"] if load["frames"] else math.nan,
        "cpu_pct": 100 * cpu / wall,
        "cpu_s": cpu,
        "wall_s": wall,
        "peak_mb": peak_kb / 1024,
        "load_core_pct": load_core,
    }


def gc_stats_path(args: argparse.Namespace) -> Path | None:
    """Where the next server writes its collector's figures (--gc-stats), or None."""
    return Path(tempfile.gettempdir()) / f"chat_load-gc-{os.getpid()}.json" if args.gc_stats else None


def gc_read(path: Path) -> dict[str, Any] | None:
    """What bench/gcstats/sitecustomize.py wrote for the server when it exited."""
    if not path.exists():
        return None
    stats: dict[str, Any] = json.loads(path.read_text().splitlines()[-1])
    path.unlink()
    return stats


def measured(args: argparse.Namespace, target: str, shoppers: int) -> dict[str, Any]:
    gc_stats = gc_stats_path(args)
    server = start_server(args, target, upstream_port=PORT_STREAM, gc_stats=gc_stats)
    figures: dict[str, Any] = {}
    try:
        run_load(args, shoppers=5, turns=2, tokens=args.tokens, spread=0.2, think=0.05)  # warm-up
        profiler = None
        if args.profile and target == "app":
            out = Path(args.profile) / f"app-n{shoppers}-c{args.coalesce_ms}.txt"
            profiler = spawn(
                [
                    str(ROOT / ".venv/bin/py-spy"),
                    "record",
                    # Without pausing the app, py-spy reads stacks as they change: about a
                    # quarter of the samples come out cut short (eighth round). Paused, every
                    # stack is whole, and the app runs slower while it is sampled; the stops land
                    # on system calls more often than the CPU does (getpid() in every
                    # asyncio.get_running_loop(): eleventh round), so check a finding in runs.
                    *([] if args.profile_blocking else ["--nonblocking"]),
                    # Only samples holding the GIL: where the process's CPU goes, not its threads
                    # waiting for PostgreSQL or for the GIL.
                    "--gil",
                    "--threads",
                    "-r",
                    "200",
                    "-f",
                    "raw",
                    "-o",
                    str(out),
                    "-p",
                    str(server.pid),
                ],
                core=LOAD_CORE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        cpu, started, core = cpu_seconds(server.pid), time.monotonic(), core_times(LOAD_CORE)
        pg = postgres_cpu_seconds()
        load = run_load(args, shoppers=shoppers, turns=args.turns, tokens=args.tokens, spread=2.0, think=0.5)
        cpu, wall = cpu_seconds(server.pid) - cpu, time.monotonic() - started
        busy, total = (after - before for after, before in zip(core_times(LOAD_CORE), core, strict=True))
        if profiler is not None:
            profiler.send_signal(2)
            profiler.wait(30)
        peak = memory_kb(server.pid, "VmHWM")
        figures = summary(load, cpu=cpu, wall=wall, peak_kb=peak, load_core=100 * busy / total)
        figures["pg_cpu_pct"] = 100 * (postgres_cpu_seconds() - pg) / wall
    finally:
        stop(server)
    if gc_stats is not None:
        figures["gc"] = gc_read(gc_stats)
    return figures


def quiet_overhead(args: argparse.Namespace, target: str) -> dict[str, Any]:
    gc_stats = gc_stats_path(args)
    server = start_server(args, target, upstream_port=PORT_QUICK, gc_stats=gc_stats)
    try:
        run_load(args, shoppers=5, turns=2, tokens=5, spread=0.2, think=0.05)
        cpu, started = cpu_seconds(server.pid), time.monotonic()
        load = run_load(args, shoppers=4, turns=args.quiet_turns, tokens=5, spread=1.0, think=0.5)
        cpu, wall = cpu_seconds(server.pid) - cpu, time.monotonic() - started
        figures = summary(load, cpu=cpu, wall=wall, peak_kb=memory_kb(server.pid, "VmHWM"), load_core=math.nan)
    finally:
        stop(server)
    if gc_stats is not None:
        figures["gc"] = gc_read(gc_stats)
    return figures


def idle_memory(args: argparse.Namespace, target: str) -> dict[str, Any]:
    server = start_server(args, target, upstream_port=PORT_STREAM)
    try:
        run_load(args, shoppers=5, turns=1, tokens=args.tokens, spread=0.2, think=0.05)
        time.sleep(1)
        before = memory_kb(server.pid, "VmRSS")
        command = [PYTHON, str(BENCH / "load_client.py"), f"--port={PORT_SERVER}", f"--count={args.idle}", "--idle"]
        holder = spawn(command, core=LOAD_CORE, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert holder.stdout is not None and holder.stdin is not None
        opened = json.loads(holder.stdout.readline())
        time.sleep(3)
        after = memory_kb(server.pid, "VmRSS")
        holder.stdin.close()
        holder.wait(120)
        connected = max(1, int(opened["connected"]))
        return {
            **opened,
            "rss_before_mb": before / 1024,
            "rss_after_mb": after / 1024,
            "kb_per_socket": (after - before) / connected,
        }
    finally:
        stop(server)


def print_row(out: TextIO, label: str, app: dict[str, Any], relay: dict[str, Any] | None) -> None:
    ratio = app["tokens_per_s"] / relay["tokens_per_s"] if relay else math.nan
    lost = app["expected"] - app["tokens"]
    relay_delay = f"{relay['delay_p50']:6.1f} / {relay['delay_p99']:6.1f}" if relay else "   -"
    out.write(
        f"{label:>6} | {app['delay_p50']:6.1f} / {app['delay_p99']:6.1f} | {relay_delay:>15} | "
        f"{app['overhead_p50']:6.1f} / {app['overhead_p99']:6.1f} | "
        f"{app['first_token_p50']:6.0f} / {app['first_token_p99']:6.0f} | {lost:5d} / {app['duplicated']} / "
        f"{app['reordered']} | {app['cpu_pct']:5.0f} | {app['peak_mb']:6.0f} | {app['tokens_per_s']:8.0f} | "
        f"{app['tokens_per_frame']:9.2f} | "
        f"{ratio:5.2f} | {app['load_core_pct']:4.0f} | {app.get('pg_cpu_pct', math.nan):4.0f} | "
        f"{app['statuses']} {app['errors'] or ''}\n"
    )


def print_gc(out: TextIO, label: str, servers: dict[str, dict[str, Any] | None]) -> None:
    """The garbage collectors' lines (--gc-stats) of a step's app and relay."""
    for name, figures in servers.items():
        stats = figures.get("gc") if figures else None
        if not stats:
            continue
        passes = ", ".join(
            f"gen{number} {gen['collections']} × (longest {1000 * gen['longest_s']:.0f} ms)"
            for number, gen in enumerate(stats["generations"])
        )
        total = sum(gen["cpu_s"] for gen in stats["generations"])
        out.write(
            f"  gc {label} {name}: {total:.2f} s of CPU in the process's life; {passes}; "
            f"thresholds {stats['thresholds']}\n"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", default="50,200,500,1000")
    parser.add_argument("--idle", type=int, default=5000, help="idle websockets for memory per socket (0: skip)")
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--layer", choices=["memory", "stock", "redis"], default="memory")
    parser.add_argument("--coalesce-ms", type=int, default=int(os.environ.get("CHAT_COALESCE_MS", "15")))
    parser.add_argument(
        "--coalesce-max-ms",
        type=int,
        default=int(os.environ.get("CHAT_COALESCE_MAX_MS", "100")),
        help="the widest window under load (CHAT_COALESCE_MAX_MS; at or below --coalesce-ms: fixed)",
    )
    parser.add_argument("--products", type=int, default=50_000)
    parser.add_argument("--switch-interval", type=float, default=0.0, help="sys.setswitchinterval of the app (s)")
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--ttft", type=float, default=0.2)
    parser.add_argument("--turns", type=int, default=2)
    parser.add_argument("--quiet-turns", type=int, default=25)
    parser.add_argument("--no-relay", action="store_true")
    parser.add_argument("--no-quiet", action="store_true")
    parser.add_argument("--profile", help="folder for py-spy raw profiles of the app (one per N)")
    parser.add_argument(
        "--profile-blocking",
        action="store_true",
        help="py-spy pauses the app for each sample: whole stacks (system calls get more than their share)",
    )
    parser.add_argument("--json", help="write every figure here too")
    parser.add_argument(
        "--gc-stats", action="store_true", help="time the servers' garbage collectors (bench/gcstats/sitecustomize.py)"
    )
    args = parser.parse_args()
    _raise_nofile()
    args.queries = 2000
    args.queries_file = str(VAR_DIR / "queries.json")
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    prepare(args)
    sim = [PYTHON, str(BENCH / "upstream_sim.py")]
    upstreams = [
        spawn(
            [*sim, f"--port={PORT_STREAM}", f"--tokens={args.tokens}", f"--rate={args.rate}", f"--ttft={args.ttft}"],
            core=LOAD_CORE,
            stdout=subprocess.DEVNULL,
        ),
        spawn(
            [*sim, f"--port={PORT_QUICK}", "--tokens=5", "--rate=0", "--ttft=0"],
            core=LOAD_CORE,
            stdout=subprocess.DEVNULL,
        ),
    ]
    results: dict[str, Any] = {"config": {k: v for k, v in vars(args).items() if k != "queries_file"}}
    try:
        wait_port(PORT_STREAM)
        wait_port(PORT_QUICK)
        out = sys.stdout
        out.write(
            f"\ndb={args.db} layer={args.layer} coalesce={args.coalesce_ms}–{args.coalesce_max_ms} ms, "
            f"{args.products:,} products; "
            f"{args.turns} turns x {args.tokens} tokens at {args.rate:g}/s after {args.ttft:g} s per shopper\n"
            "     N | delay ms p50/p99 | relay p50/p99   | turn ms p50/p99 | 1st token ms p50/p99 | lost/dup/reord "
            "| cpu % | peak MB"
            " |    tok/s | tok/frame | ×relay | core1 % | pg % | statuses\n"
        )
        for shoppers in [int(n) for n in args.n.split(",") if n]:
            app = measured(args, "app", shoppers)
            relay = None if args.no_relay else measured(args, "relay", shoppers)
            results[f"n{shoppers}"] = {"app": app, "relay": relay}
            print_row(out, str(shoppers), app, relay)
            print_gc(out, str(shoppers), results[f"n{shoppers}"])
            out.flush()
        if not args.no_quiet:
            quiet = {
                "app": quiet_overhead(args, "app"),
                "relay": None if args.no_relay else quiet_overhead(args, "relay"),
            }
            results["quiet"] = quiet
            assert quiet["app"] is not None
            print_row(out, "quiet", quiet["app"], quiet["relay"])
            print_gc(out, "quiet", quiet)
        if args.idle:
            idle = {"app": idle_memory(args, "app"), "relay": None if args.no_relay else idle_memory(args, "relay")}
            results["idle"] = idle
            for name, figures in idle.items():
                if figures:
                    out.write(
                        f"idle {name}: {figures['connected']} sockets ({figures['failures']} failed), RSS "
                        f"{figures['rss_before_mb']:.0f} → {figures['rss_after_mb']:.0f} MB: "
                        f"{figures['kb_per_socket']:.1f} KB per socket\n"
                    )
    finally:
        for upstream in upstreams:
            stop(upstream)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
