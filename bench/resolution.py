"""Resolution time: ``jobsecrets export`` against a sequential hvac/boto3 loop, over a slow network.

One command (about 2-3 minutes with the defaults)::

    .venv/bin/python bench/resolution.py                   # N = 10 50 100 200, 5 repetitions
    .venv/bin/python bench/resolution.py --sizes 10 100 --repeat 3 --no-write

What it does, all on 127.0.0.1:

1. starts an OpenBao dev server (``tests/support/openbao.py``) and a moto server
   (``tests/support/moto_server.py``), and seeds max(N)/2 KV v2 paths (two fields each) and
   max(N)/2 JSON secrets in Secrets Manager;
2. starts ``bench/latency_proxy.py`` in its own process in front of each server (``--delay-ms``,
   default 20 ms each way, so one round trip is 40 ms; a new connection pays one more);
3. for each N, writes a spec of N variables, half ``vault:secret/bench/pNNN#password``, half
   ``aws:bench/sNNN#password`` (one variable per path: every variable costs a read), and times,
   in alternation, as whole processes:

   * ``jobsecrets export --format json`` (the tool as CI runs it);
   * ``sequential``: a script that imports hvac and boto3 and reads the same paths one after the
     other (what vault-action and the AWS action do), reusing one connection per store;
   * ``import floor``: ``python -c "import hvac, boto3"``; and ``python -c pass``;

4. records ``jobsecrets run -- true`` peak RSS (GNU ``time -f %M``) at N=100;
5. checks the goals of issues 8 and 18, draws ``docs/bench-resolution.png`` and rewrites the
   "## Resolution" and "## Peak memory" sections of ``docs/benchmarks.md``.

Values are random, never printed; each tool's output is checked for the right number of variables.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from _common import (
    DOCS,
    PYTHON,
    REGION,
    ROOT,
    Stores,
    aws_id,
    check_output,
    floor_commands,
    machine_line,
    median,
    peak_rss_mib,
    replace_section,
    run_main,
    stores,
    time_process,
    vault_path,
    write_spec,
)

JOBSECRETS = str(Path(PYTHON).parent / "jobsecrets")
PLOT = ROOT / "docs" / "bench-resolution.png"
#: The floor of issue 18's goal: "bare imports (`import hvac, boto3` plus one client) + 4 RTT".
GOAL_FLOOR = "import hvac, boto3 + one client"

# The loop the anchors run: one request after another, one client per store.
SEQUENTIAL = r"""
import json, sys
import boto3, hvac

plan = json.load(open(sys.argv[1]))
out = {}
vault = hvac.Client(url=plan["vault"], token=plan["token"])
for name, path, field in plan["vault_reads"]:
    answer = vault.secrets.kv.v2.read_secret_version(
        path=path, mount_point="secret", raise_on_deleted_version=True
    )
    out[name] = answer["data"]["data"][field]
sm = boto3.client("secretsmanager", endpoint_url=plan["aws"], region_name=plan["region"])
for name, secret_id, field in plan["aws_reads"]:
    out[name] = json.loads(sm.get_secret_value(SecretId=secret_id)["SecretString"])[field]
json.dump(out, sys.stdout)
"""


def write_inputs(directory: Path, n: int, vault_url: str, aws_url: str) -> tuple[Path, Path]:
    """The jobsecrets spec and the sequential loop's plan for N variables (half each store)."""
    half = n // 2
    plan: dict[str, Any] = {
        "vault": vault_url,
        "aws": aws_url,
        "region": REGION,
        "token": "root",
        "vault_reads": [[f"V{i:03d}", vault_path(i), "password"] for i in range(half)],
        "aws_reads": [[f"A{i:03d}", aws_id(i), "password"] for i in range(n - half)],
    }
    plan_file = directory / f"plan-{n}.json"
    plan_file.write_text(json.dumps(plan), encoding="utf-8")
    return write_spec(directory, n, vault_url, aws_url), plan_file


def measure(sizes: Sequence[int], repeat: int, delay_ms: float, workdir: Path) -> dict[str, Any]:
    """Start everything, run the alternating timings, stop everything; returns raw results."""
    with stores(max(sizes) // 2 + max(sizes) % 2, delay_ms, workdir) as live:
        return _measure(live, sizes, repeat, delay_ms, workdir)


def _measure(
    live: Stores, sizes: Sequence[int], repeat: int, delay_ms: float, workdir: Path
) -> dict[str, Any]:
    """The timings themselves, against running stores."""
    env, vault_url, aws_url = live.env, live.vault_url, live.aws_url
    state = workdir / "state.json"
    inputs = {n: write_inputs(workdir, n, vault_url, aws_url) for n in sizes}
    seq_script = workdir / "sequential.py"
    seq_script.write_text(SEQUENTIAL, encoding="utf-8")

    def commands(n: int) -> dict[str, list[str]]:
        spec, plan_file = inputs[n]
        return {
            "jobsecrets": [
                JOBSECRETS,
                "export",
                "-c",
                str(spec),
                "--format",
                "json",
                "--state",
                str(state),
            ],
            "sequential": [PYTHON, str(seq_script), str(plan_file)],
        }

    # One checked warm-up of each (also fills the page cache, as a CI image's would be).
    for n in sizes:
        for name, argv in commands(n).items():
            check_output(time_process(argv, env=env, capture=True), n, f"{name} N={n}")

    floors = floor_commands()
    times: dict[str, dict[int, list[float]]] = {"jobsecrets": {}, "sequential": {}}
    floor_times: dict[str, list[float]] = {k: [] for k in floors}
    for rep in range(repeat):
        for label, argv in floors.items():
            floor_times[label].append(time_process(argv, env=env).seconds)
        for n in sizes:
            # Alternate the order so neither tool always runs on a freshly idle machine.
            order = ["jobsecrets", "sequential"] if rep % 2 == 0 else ["sequential", "jobsecrets"]
            for name in order:
                result = time_process(commands(n)[name], env=env)
                if result.code != 0:
                    raise RuntimeError(f"{name} N={n} exited {result.code}")
                times[name].setdefault(n, []).append(result.seconds)
        print(f"repetition {rep + 1}/{repeat} done", file=sys.stderr, flush=True)

    # Peak memory of `run` (the 100-variable case, or the largest size below it).
    rss_n = 100 if 100 in sizes else max(sizes)
    spec, _plan = inputs[rss_n]
    rss: dict[str, list[float]] = {"run": [], "export": [], "sequential": []}
    run_argv = [JOBSECRETS, "run", "-c", str(spec), "--", "true"]
    for _ in range(3):
        rss["run"].append(peak_rss_mib(run_argv, env=env))
        rss["export"].append(peak_rss_mib(commands(rss_n)["jobsecrets"], env=env))
        rss["sequential"].append(peak_rss_mib(commands(rss_n)["sequential"], env=env))
    return {
        "sizes": list(sizes),
        "repeat": repeat,
        "delay_ms": delay_ms,
        "times": times,
        "floors": floor_times,
        "rss_n": rss_n,
        "rss": rss,
    }


def summarize(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Medians, ratios and the goal checks of issues 8 and 18."""
    rtt = 2 * raw["delay_ms"] / 1000
    floors = {k: median(v) for k, v in raw["floors"].items()}
    rows = []
    for n in raw["sizes"]:
        js = median(raw["times"]["jobsecrets"][n])
        seq = median(raw["times"]["sequential"][n])
        rows.append({"n": n, "jobsecrets": js, "sequential": seq, "speedup": seq / js})
    at = {row["n"]: row for row in rows}
    ref = at.get(100) or rows[-1]
    budget = floors[GOAL_FLOOR] + 4 * rtt
    return {
        "rtt": rtt,
        "floors": floors,
        "rows": rows,
        "goal_budget": budget,
        "goal_n": ref["n"],
        "goal_time": ref["jobsecrets"],
        "goal_within_budget": ref["jobsecrets"] <= budget,
        "goal_rtts_over_import": (ref["jobsecrets"] - floors[GOAL_FLOOR]) / rtt,
        "goal_speedup": ref["speedup"],
        "goal_speedup_met": ref["speedup"] >= 5,
        "speedup_widens": all(b["speedup"] >= a["speedup"] for a, b in itertools.pairwise(rows)),
        "rss": {k: median(v) for k, v in raw["rss"].items()},
        "rss_max": {k: max(v) for k, v in raw["rss"].items()},
        "rss_n": raw["rss_n"],
    }


def plot(summary: Mapping[str, Any], path: Path, delay_ms: float) -> None:
    """Resolution time against the number of secrets, both tools, with the import floor."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a CI runner
    import matplotlib.pyplot as plt

    ns = [row["n"] for row in summary["rows"]]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    ax.plot(
        ns, [r["sequential"] for r in summary["rows"]], "o-", label="sequential hvac/boto3 loop"
    )
    ax.plot(ns, [r["jobsecrets"] for r in summary["rows"]], "o-", label="jobsecrets export")
    ax.axhline(
        summary["floors"][GOAL_FLOOR],
        color="grey",
        ls="--",
        lw=1,
        label="python -c 'import hvac, boto3' + one client",
    )
    for row in summary["rows"]:
        ax.annotate(
            f"{row['speedup']:.1f}x",
            (row["n"], row["jobsecrets"]),
            textcoords="offset points",
            xytext=(0, 8),
            ha="center",
            fontsize=8,
        )
    ax.set_xlabel("secrets (half Vault paths, half AWS secrets)")
    ax.set_ylabel("wall time of the whole process, s (median)")
    ax.set_title(f"Resolution over a {delay_ms:g} ms-each-way link ({2 * delay_ms:g} ms RTT)")
    ax.set_xticks(ns)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def render(summary: Mapping[str, Any], raw: Mapping[str, Any], command: str) -> tuple[str, str]:
    """Markdown for the "## Resolution" and "## Peak memory" sections."""
    rtt_ms = summary["rtt"] * 1000
    lines = [
        f"`{command}` on {machine_line()}: "
        f"{raw['delay_ms']:g} ms each way through `bench/latency_proxy.py` ({rtt_ms:g} ms RTT, "
        f"a new connection pays one more RTT), median of {raw['repeat']} runs, whole processes, "
        "the two tools alternating in the same run.",
        "",
        "| secrets | jobsecrets export, s | sequential hvac/boto3, s | speed-up |",
        "|---:|---:|---:|---:|",
    ]
    for row in summary["rows"]:
        lines.append(
            f"| {row['n']} | {row['jobsecrets']:.3f} | {row['sequential']:.3f} | "
            f"{row['speedup']:.1f}x |"
        )
    floors = summary["floors"]
    lines += [
        "",
        f"Floors in the same run: `python -c pass` {floors['python -c pass']:.3f} s, "
        f"`python -c 'import hvac, boto3'` {floors['import hvac, boto3']:.3f} s, "
        f"the same plus one Secrets Manager client {floors[GOAL_FLOOR]:.3f} s.",
        "",
        "![resolution time against the number of secrets](bench-resolution.png)",
        "",
        "Goals (issues 8 and 18), at N = {n}:".format(n=summary["goal_n"]),
        "",
        f"- at most the imports + one client + 4 RTT = {summary['goal_budget']:.3f} s: "
        f"{summary['goal_time']:.3f} s, that is import + {summary['goal_rtts_over_import']:.1f} RTT "
        f"— **{'met' if summary['goal_within_budget'] else 'missed'}**;",
        f"- at least 5x faster than the sequential loop: {summary['goal_speedup']:.1f}x "
        f"— **{'met' if summary['goal_speedup_met'] else 'missed'}**; the gap "
        f"{'widens' if summary['speedup_widens'] else 'does not widen steadily'} with more secrets.",
    ]
    rss = summary["rss"]
    memory = [
        f"From the same run of `{command}`: peak RSS (GNU `time -f %M` of the process itself, "
        f"median of 3) with {summary['rss_n']} variables, over the same servers and proxy.",
        "",
        "| process | peak RSS, MiB |",
        "|---|---:|",
        f"| `jobsecrets run -- true` | {rss['run']:.1f} |",
        f"| `jobsecrets export --format json` | {rss['export']:.1f} |",
        f"| sequential hvac/boto3 loop | {rss['sequential']:.1f} |",
        "",
        "The `jobsecrets` rows are its own process: with Vault and AWS in one spec its AWS "
        'backend runs in a second one, measured apart in "Resolution on two cores" below '
        "(15-30 MiB more in all, by PSS).",
    ]
    return "\n".join(lines), "\n".join(memory)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 50, 100, 200])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs alone")
    parser.add_argument("--json", type=Path, help="also save raw and summary numbers here")
    args = parser.parse_args(argv)
    if any(n < 2 for n in args.sizes):
        parser.error("every size must be at least 2 (half Vault, half AWS)")
    with tempfile.TemporaryDirectory(prefix="jobsecrets-bench-") as tmp:
        raw = measure(sorted(set(args.sizes)), args.repeat, args.delay_ms, Path(tmp))
    summary = summarize(raw)
    shown = " ".join(sys.argv[1:] if argv is None else argv)
    command = f".venv/bin/python bench/resolution.py{' ' + shown if shown else ''}"
    resolution_md, memory_md = render(summary, raw, command)
    print(resolution_md)
    print()
    print(memory_md)
    if args.json:
        args.json.write_text(json.dumps({"raw": raw, "summary": summary}, indent=2, default=str))
    if not args.no_write:
        plot(summary, PLOT, args.delay_ms)
        replace_section("## Resolution", resolution_md, DOCS)
        replace_section("## Peak memory", memory_md, DOCS)
        print(f"\nwrote {DOCS.relative_to(ROOT)} and {PLOT.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_main(main)
