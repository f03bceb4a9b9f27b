"""Compute benchmark: the demo job on several contributing agents, end to end.

    DATABASE_URL=postgres://... .venv/bin/python benchmarks/compute/agents.py

A real platform (gunicorn on loopback, migrated and seeded with the demo data: its
fresh database on the server DATABASE_URL names, else SQLite) and real agents
(``python -m agent contribute --until-idle --cores 1 --batch 1``), each of a different
member. For 2, 3 and 4 agents, ``--rounds`` times: the customer submits the demo render
(``--width`` x ``--height`` in ``--tile`` tiles, ``--samples`` a pixel; replication 2),
the agents start at once, and the time is the job's own, from its ``created_at`` to its
``finished_at`` (so the agents' start-up, opting in and the batches' round trips are in
it; the module is already in each agent's cache from an untimed warm-up job). Figures
are medians over the rounds, with the range.

Replication 2 means every unit runs on two devices of different members: one agent can
never finish a job (each unit waits for a second member). That is shown once, at the
end, untimed: one agent runs until the platform has no more work for it and the job is
left with no unit validated.

The result replaces the section "Compute: the demo job on several agents" in
docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import httpx

from benchmarks.common import machine, today, write_section
from compute.demo import RENDER_WASM, tile_input, tiles
from tests.support.agents import AgentProcess, contribute, summary_of
from tests.support.platform import platform

MEMBERS = ("carol", "rita", "admin", "bob")  # bob is the customer too: any member may run units
CONTRIBUTE = ("--until-idle", "--cores", "1", "--batch", "1", "--memory-mib", "128")
TITLE = "Compute: the demo job on several agents"


def _units(width: int, height: int, tile: int, samples: int) -> list[dict[str, Any]]:
    return [{"input": base64.b64encode(tile_input(width, height, t, samples=samples)).decode(),
             "fuel": 2_000_000 + 10_000 * t.width * t.height * samples,
             "label": f"tile-{t.x}-{t.y}"} for t in tiles(width, height, tile, tile)]


def _submit(client: httpx.Client, module: str, units: list[dict[str, Any]],
            name: str) -> dict[str, Any]:
    response = client.post("/api/v1/compute/jobs/",
                           headers={"Idempotency-Key": os.urandom(8).hex()},
                           json={"name": name, "module": module, "currency": "EUR",
                                 "price_per_tfuel_minor": 1, "memory_bytes": 64 * 2**20,
                                 "output_bytes": 2**20, "units": units})
    response.raise_for_status()
    return dict(response.json())


def _run_job(client: httpx.Client, module: str, units: list[dict[str, Any]],
             agents: list[AgentProcess], name: str) -> tuple[float, dict[str, Any]]:
    job = _submit(client, module, units, name)
    running = [contribute(agent, *CONTRIBUTE) for agent in agents]
    summaries = [summary_of(process, timeout=1800) for process in running]
    detail = dict(client.get(f"/api/v1/compute/jobs/{job['id']}/").json())
    # Agents stop at the platform's first empty answer; a unit still waiting for a
    # second member then (a slow first result) is picked up by running them again.
    while detail["state"] == "running" and len(agents) > 1:
        summaries += [summary_of(p, timeout=1800)
                      for p in [contribute(agent, *CONTRIBUTE) for agent in agents]]
        detail = dict(client.get(f"/api/v1/compute/jobs/{job['id']}/").json())
    if detail["state"] != "completed":
        raise SystemExit(f"the job did not complete: {detail}")
    started = dt.datetime.fromisoformat(detail["created_at"].replace("Z", "+00:00"))
    finished = dt.datetime.fromisoformat(detail["finished_at"].replace("Z", "+00:00"))
    runs = sum(s["units_run"] for s in summaries)
    return (finished - started).total_seconds(), {"runs": runs, "summaries": summaries}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=240)
    parser.add_argument("--height", type=int, default=160)
    parser.add_argument("--tile", type=int, default=40)
    parser.add_argument("--samples", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--agents", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    units = _units(args.width, args.height, args.tile, args.samples)
    with tempfile.TemporaryDirectory(prefix="pm-bench-agents-") as temp, \
            platform(Path(temp)) as site:
        agents = {user: AgentProcess(Path(temp), f"bench-{user}", site.url)
                  for user in MEMBERS[:max(args.agents)]}
        for user, agent in agents.items():
            agent.setup(user, site.logins[user])
        with site.api("bob") as client:
            upload = client.post("/api/v1/compute/modules/", files={
                "module": ("render.wasm", RENDER_WASM.read_bytes(), "application/wasm")})
            upload.raise_for_status()
            module = str(upload.json()["sha256"])
            # Untimed: every agent fetches and compiles the module once.
            _run_job(client, module, units[: len(agents)], list(agents.values()),
                     "warm-up")
            times: dict[int, list[float]] = {n: [] for n in args.agents}
            unit_seconds: dict[int, list[float]] = {n: [] for n in args.agents}
            for round_ in range(args.rounds):
                for count in args.agents:
                    chosen = list(agents.values())[:count]
                    seconds, info = _run_job(client, module, units, chosen,
                                             f"bench {count} agents, round {round_ + 1}")
                    times[count].append(seconds)
                    logs = [json.loads(line) for agent in chosen
                            for line in (agent.home / "compute" / "results.jsonl")
                            .read_text().splitlines()[-info["runs"]:]]
                    unit_seconds[count].append(statistics.median(e["seconds"] for e in logs))
                    print(f"round {round_ + 1}: {count} agents: {seconds:.1f} s "
                          f"({info['runs']} unit runs)", flush=True)
            # One agent alone: every unit waits for a second member.
            lone = _submit(client, module, units, "one agent alone")
            summary = summary_of(contribute(agents["carol"], *CONTRIBUTE), timeout=1800)
            alone = dict(client.get(f"/api/v1/compute/jobs/{lone['id']}/").json())
    base = statistics.median(times[args.agents[0]])
    floor = 2 * len(units) * statistics.median(unit_seconds[args.agents[0]]) / (os.cpu_count() or 1)
    if base <= 1.15 * floor:
        verdict = (f"{args.agents[0]} agents already keep the cores busy: the job takes "
                   f"{base:.1f} s, at the floor.")
    else:
        verdict = (f"{args.agents[0]} agents leave part of the cores idle between units "
                   "(each waits for its results' round trip and its next dispatch), which "
                   "a further agent fills.")
    rows = []
    for count in args.agents:
        values = times[count]
        rows.append(f"| {count} | {statistics.median(values):.1f} s | {min(values):.1f}-"
                    f"{max(values):.1f} s | {base / statistics.median(values):.2f} | "
                    f"{statistics.median(unit_seconds[count]):.2f} s |")
    lone_row = (f"| 1 | never completes | - | - | - ({summary['units_run']} units run, "
                f"{alone['progress']['units']['validated']} of {len(units)} validated: each "
                "waits for a second member) |")
    command = ("DATABASE_URL=postgres://... .venv/bin/python benchmarks/compute/agents.py"
               f" --width {args.width} --height {args.height} --tile {args.tile} --samples "
               f"{args.samples} --rounds {args.rounds}")
    body = f"""
Machine: {machine()}. Date: {today()}. Command: `{command}`.

The demo render ({args.width} x {args.height}, {args.tile} x {args.tile} tiles:
{len(units)} units, {args.samples} samples a pixel, replication 2, so {2 * len(units)}
unit runs a job) on a real platform (gunicorn, 2 workers x 4 threads, PostgreSQL, all on
loopback) and N real agents of N different members, each `contribute --until-idle
--cores 1 --batch 1`. Time: the job's own, from submission to completion (agents'
start-up and opting in included; the module already compiled in each agent's cache).
Medians of {args.rounds} rounds, with the range; speed-up against {args.agents[0]} agents.
The last column is the median time one unit run took inside the agent (its worker
process and the sandbox).

| agents | wall time | range | speed-up | one unit run |
| ---: | ---: | ---: | ---: | ---: |
{lone_row}
{chr(10).join(rows)}

**Why not one agent:** every unit needs two agreeing results from devices of different
members, so one agent alone runs each unit once and the job waits for a second member
(the row above). Two agents is the least that finishes, and the baseline.

**Reading it:** the machine has {os.cpu_count()} cores and each agent runs one unit at a
time. The cores' floor is every unit run back to back on all cores: {floor:.1f} s (the
median unit run with {args.agents[0]} agents, times the runs, over the cores). {verdict}
More agents than cores cannot make the job faster on this machine: they share the same
cores (the last column: each unit run takes longer) and add their own round trips,
signing and worker start-ups. On machines of their own, N agents would scale with N
until the platform's dispatch became the limit (about 1,000 units a second here: the
throughput benchmark).
"""
    print(body)
    if not args.no_write:
        write_section(TITLE, body)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
