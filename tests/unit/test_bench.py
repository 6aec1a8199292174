"""Smoke test of the benchmark scripts' pieces: they work, not how fast (timing is for bench/)."""

from __future__ import annotations

import socket
import sys
import threading
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import _common  # noqa: E402
import latency_proxy  # noqa: E402
import resolution  # noqa: E402


def echo_server() -> tuple[socket.socket, int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(4096):
                    conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    return server, server.getsockname()[1]


def test_latency_proxy_forwards_bytes_and_adds_the_delay() -> None:
    server, port = echo_server()
    try:
        with latency_proxy.LatencyProxy("127.0.0.1", port, delay_ms=30) as proxy:
            with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as conn:
                conn.sendall(b"x")  # pays the connection's handshake round trip too
                assert conn.recv(10) == b"x"
                started = time.monotonic()
                conn.sendall(b"hello")
                got = b""
                while len(got) < 5:
                    got += conn.recv(10)
                elapsed = time.monotonic() - started
            assert got == b"hello"
            assert elapsed >= 0.055, "one round trip is two delays"
            assert proxy.connections == 1
    finally:
        server.close()


def test_latency_proxy_refuses_a_non_loopback_target() -> None:
    with pytest.raises(ValueError):
        latency_proxy.parse_target("192.0.2.1:80")
    assert latency_proxy.parse_target("127.0.0.1:8200") == ("127.0.0.1", 8200)


def test_time_process_and_docs_sections(tmp_path: Path) -> None:
    result = _common.time_process([sys.executable, "-c", "print('ok')"], capture=True)
    assert result.code == 0 and result.stdout.strip() == b"ok" and result.seconds > 0
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Redaction throughput\n\nkeep me\n")
    _common.replace_section("## Resolution", "first", doc)
    _common.replace_section("## Resolution", "second", doc)
    text = doc.read_text()
    assert "keep me" in text and "second" in text and "first" not in text


def test_resolution_inputs_and_goal_checks(tmp_path: Path) -> None:
    spec, _plan = resolution.write_inputs(tmp_path, 10, "http://127.0.0.1:1", "http://127.0.0.1:2")
    assert spec.read_text().count("vault:secret/bench/") == 5
    assert spec.read_text().count("aws:bench/") == 5
    raw = {
        "sizes": [10, 100],
        "repeat": 1,
        "delay_ms": 20.0,
        "times": {
            "jobsecrets": {10: [0.5], 100: [0.6]},
            "sequential": {10: [1.0], 100: [6.0]},
        },
        "floors": {
            "python -c pass": [0.02],
            "import hvac, boto3": [0.3],
            "import hvac, boto3 + one client": [0.4],
        },
        "rss_n": 100,
        "rss": {"run": [50.0], "export": [50.0], "sequential": [60.0]},
    }
    summary = resolution.summarize(raw)
    assert summary["goal_speedup"] == pytest.approx(10.0)
    assert summary["goal_speedup_met"] and summary["speedup_widens"]
    assert summary["goal_budget"] == pytest.approx(0.4 + 4 * 0.04)
    assert not summary["goal_within_budget"]  # 0.6 > 0.56
    section, memory = resolution.render(summary, raw, "bench/resolution.py")
    assert "| 100 |" in section and "missed" in section and "jobsecrets run" in memory


def test_scaling_summary_checks_flatness_and_memory(tmp_path: Path) -> None:
    import scaling

    spec = _common.write_spec(tmp_path, 11, "http://127.0.0.1:1", "http://127.0.0.1:2")
    text = spec.read_text()
    assert text.count("vault:secret/bench/") == 5 and text.count("aws:bench/") == 6
    raw = {
        "sizes": [10, 1000, 5000],
        "repeat": 1,
        "delay_ms": 20.0,
        "floors": {
            "python -c pass": [0.02],
            "import hvac, boto3": [0.3],
            "import hvac, boto3 + one client": [0.4],
        },
        "floor_rss": [45.0],
        # 1 ms per variable over the baseline at 1,000; 1.5 ms at 5,000: not flat.
        "times": {
            "export": {10: [0.5], 1000: [1.4], 5000: [7.9]},
            "run": {10: [0.5], 1000: [1.5], 5000: [8.0]},
        },
        "rss": {
            "export": {10: [50.0], 1000: [60.0], 5000: [90.0]},
            "run": {10: [55.0], 1000: [70.0], 5000: [160.0]},
        },
    }
    summary = scaling.summarize(raw)
    assert summary["flat_ratio"] == pytest.approx(1.5)
    assert not summary["flat_met"] and not summary["rss_met"]
    assert summary["rows"][1]["marginal_ms"] == pytest.approx(1.0)
    section = scaling.render(summary, raw, "bench/scaling.py")
    assert "| 5,000 |" in section and section.count("missed") == 2
    raw["times"]["export"][5000] = [5.4]
    raw["rss"]["run"][5000] = [120.0]
    summary = scaling.summarize(raw)
    assert summary["flat_met"] and summary["rss_met"]


def test_scan_bench_tree_holds_exactly_the_planted_leaks(tmp_path: Path) -> None:
    """bench/scan_throughput.py's tree: its planted values are found, nothing else (no timing)."""
    import random

    import scan_throughput

    from jobsecrets.scan import Matcher, Report
    from jobsecrets.scan.scanner import scan_paths

    rng = random.Random(7)
    values = scan_throughput.random_values(rng, 50)
    scan_throughput.build_tree(tmp_path / "tree", 2, values, rng)
    report = Report()
    scan_paths(
        [str(tmp_path / "tree")], Matcher((f"V{i}", v) for i, v in enumerate(values)), report
    )
    assert report.errors == []
    assert sorted((f.where[0].rsplit("/", 1)[1], f.names) for f in report.findings) == [
        ("chunk0.min.js", ("V0",)),
        ("env.gz", ("V1",)),
    ]


def test_bar_chart_draws_a_png_scaled_to_its_bars(tmp_path: Path) -> None:
    """The chart every small benchmark draws: a real PNG whose size follows the number of bars."""
    small, large = tmp_path / "small.png", tmp_path / "large.png"
    _common.bar_chart(small, "t", [("base", 1.0), ("x", 2.5)], "s", goal=2.0)
    _common.bar_chart(large, "t", [(f"b{i}", float(i + 1)) for i in range(8)], "MB/s")
    for path in (small, large):
        head = path.read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n"
    height = int.from_bytes(small.read_bytes()[20:24], "big")
    assert int.from_bytes(large.read_bytes()[20:24], "big") > height


def test_a_benchmark_run_replaces_its_figures_and_keeps_the_prose_after_them(
    tmp_path: Path,
) -> None:
    docs = tmp_path / "benchmarks.md"
    image = "![plot](p.png)"
    # A new section: the script's default prose.
    _common.replace_section_keeping_prose("## S", "| a | 1 |\n\n" + image, image, "default", docs)
    assert docs.read_text() == "# Benchmarks\n\n## S\n\n| a | 1 |\n\n![plot](p.png)\n\ndefault\n"
    # Engineers write under the figures; the next run keeps that and replaces only the figures.
    docs.write_text(
        "# Benchmarks\n\n## S\n\n| a | 1 |\n\n![plot](p.png)\n\nWritten by hand.\n\n"
        "More.\n\n## T\n\nother\n"
    )
    _common.replace_section_keeping_prose("## S", "| a | 2 |\n\n" + image, image, "default", docs)
    text = docs.read_text()
    assert "| a | 2 |" in text and "| a | 1 |" not in text
    assert "Written by hand.\n\nMore.\n\n## T\n\nother\n" in text
    assert "default" not in text


def test_redact_scale_baseline_runs_the_code_at_that_ref(tmp_path: Path) -> None:
    """``--baseline REF``: the package as committed at REF, ahead of the installed one."""
    import subprocess

    import redact_scale

    ref = subprocess.run(
        ["git", "-C", str(BENCH.parent), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    command = redact_scale._baseline(tmp_path, ref)
    where = subprocess.run(
        [
            "bash",
            "-c",
            command.replace("-m jobsecrets", "-c 'import jobsecrets; print(jobsecrets.__file__)'"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(tmp_path / "baseline" / "src")
    # Compiled beforehand, so both sides of the comparison start with bytecode.
    assert list((tmp_path / "baseline" / "src" / "jobsecrets" / "__pycache__").glob("*.pyc"))
    version = subprocess.run(
        ["bash", "-c", f"{command} --version"], capture_output=True, text=True, check=True
    )
    assert "jobsecrets" in version.stdout


def test_gitlab_job_reads_the_include_s_time_from_the_job_log() -> None:
    import gitlab_job

    log = "\n".join(
        [
            "$ echo BENCH_T0",
            "BENCH_T0 1000000000",
            "jobsecrets, version 0.1.0",
            "BENCH_T1 3500000000",
            "BENCH_T1 9900000000",  # printed again (a retried line): the first one counts
            "BENCH_A0 4000000000",
            "BENCH_A1 4250000000",
            " BENCH_A1 1",  # not a stamp: not at the start of a line
        ]
    )
    assert gitlab_job.stamps(log) == {"before": 2.5, "after": 0.25}
    # A job that failed before its script printed T1: no "before" at all, not a wrong one.
    assert gitlab_job.stamps("BENCH_T0 5\nBENCH_A0 10\nBENCH_A1 30\n") == {"after": 2e-08}


def test_gitlab_job_pipeline_stamps_around_the_include_and_keeps_tokens_out_of_argv() -> None:
    import gitlab_job
    import yaml

    class Loader(yaml.SafeLoader):
        """GitLab's !reference as a plain list, so that the pipeline can be inspected."""

    Loader.add_constructor(
        "!reference", lambda loader, node: ["!reference", *loader.construct_sequence(node)]
    )
    pipeline = yaml.load(gitlab_job.pipeline_yaml("pypi"), Loader=Loader)  # noqa: S506
    assert pipeline["include"][0]["inputs"] == {"install": "pypi"}
    bench = pipeline["bench"]
    assert bench["extends"] == ".jobsecrets"
    assert bench["before_script"][0].startswith('echo "BENCH_T0')
    assert bench["before_script"][1] == ["!reference", ".jobsecrets", "before_script"]
    assert bench["script"][0].startswith('echo "BENCH_T1')
    assert bench["after_script"][1] == ["!reference", ".jobsecrets", "after_script"]
    assert 'test -n "$A049"' in bench["script"][1]
    vault_only = yaml.load(gitlab_job.pipeline_yaml("none", vault_only=True), Loader=Loader)  # noqa: S506
    assert "$A049" not in vault_only["bench"]["script"][1]
    # The baseline's login reads the id token from stdin, never from its argv.
    login = vault_only["baseline"]["before_script"][1]
    assert "jwt=-" in login and 'jwt="$VAULT_ID_TOKEN"' not in login
    spec = gitlab_job.spec_text("http://v", "http://a", vault_only=True)
    assert "type: aws" not in spec and spec.count("vault:secret/bench/p") == gitlab_job.COUNT


def test_github_step_warm_rows_run_ours_once_a_repetition_and_take_turns_with_a_baseline(
    tmp_path: Path,
) -> None:
    import github_step

    assert [github_step.warm_order(n, None) for n in range(3)] == [[None], [None], [None]]
    base = tmp_path / "baseline"
    orders = [github_step.warm_order(n, base) for n in range(4)]
    assert orders == [[None, base], [base, None], [None, base], [base, None]]
