"""jobsecrets scan: forms, chunking, archives, hostile trees, exit codes (issue 19).

Hostile inputs are built here with the standard library (the bytes a zip bomb or a symlink loop
is made of need no outside tool); the leaks made by real tools are in
tests/integration/test_scan_tools.py.
"""

from __future__ import annotations

import base64
import bz2
import gzip
import io
import json
import lzma
import os
import stat
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import zstandard

from jobsecrets.errors import LeakFound, ScanIncomplete
from jobsecrets.redact import labelled_mask_forms, mask_forms
from jobsecrets.scan import Limits, Matcher, Report, ScanOptions, scan_values
from jobsecrets.scan.content import CHUNK, scan_stream
from jobsecrets.scan.scanner import scan_paths
from support.cli import clean_env, jobsecrets

SECRET = "tok-9f8e7d6c5b4a3921-scan"
VALUES = [("API_TOKEN", SECRET)]


def run_scan(paths: list[Path], values=VALUES, **limits: int) -> Report:  # type: ignore[no-untyped-def]
    report = Report()
    scan_paths([str(p) for p in paths], Matcher(values), report, limits=Limits(**limits))
    report.sorted()
    return report


def forms_found(report: Report) -> list[str]:
    return [f.form for f in report.findings]


def no_value_in(text: str) -> bool:
    """True when no piece of the secret (8+ characters) is in ``text``."""
    return not any(SECRET[i : i + 8] in text for i in range(len(SECRET) - 7))


# ---- the forms -------------------------------------------------------------------------------


def test_labelled_forms_are_exactly_the_masked_forms() -> None:
    value = b"line-one-secret\nline-two-secret&<>"
    labelled = labelled_mask_forms(value)
    assert {form for form, _ in labelled} == mask_forms(value)
    labels = {label for _, label in labelled}
    assert {"value", "line of the value", "base64", "hex", "URL-encoded", "JSON-escaped"} <= labels
    assert "masked form" not in labels  # every current form has a name


@pytest.mark.parametrize(
    ("encode", "label"),
    [
        (lambda v: v, "value"),
        (lambda v: base64.b64encode(v), "base64"),
        (lambda v: base64.urlsafe_b64encode(v).rstrip(b"="), "base64"),
        (lambda v: base64.b64encode(b"xy" + v + b"z"), "base64"),
        (lambda v: base64.b64encode(base64.b64encode(v)), "base64 of base64"),
        (lambda v: v.hex().upper().encode(), "hex"),
        (lambda v: json.dumps(v.decode() + '"q').encode()[1:-4], "value"),
    ],
)
def test_each_form_is_found_and_named(tmp_path: Path, encode, label) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "f.txt").write_bytes(b"prefix " + encode(SECRET.encode()) + b" suffix\n")
    report = run_scan([tmp_path])
    assert report.total_findings == 1
    finding = report.findings[0]
    assert finding.names == ("API_TOKEN",)
    assert label in finding.form
    assert finding.line == 1


def test_same_tree_without_the_value_is_clean(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("tok-9f8e7d6c5b4a3921-sca n\n" + SECRET[::-1])
    report = run_scan([tmp_path])
    assert report.total_findings == 0
    assert report.issues == []


def test_two_variables_with_one_value_are_named_together(tmp_path: Path) -> None:
    (tmp_path / "f").write_text(SECRET)
    report = run_scan([tmp_path], values=[("A_TOKEN", SECRET), ("B_TOKEN", SECRET)])
    assert report.findings[0].names == ("A_TOKEN", "B_TOKEN")


def test_short_values_are_not_searched_but_named() -> None:
    matcher = Matcher([("FLAG", "true"), ("TOKEN", SECRET)])
    assert matcher.skipped == ["FLAG"]
    assert "true" not in repr(matcher)


# ---- chunks and line wraps -------------------------------------------------------------------


def test_value_across_a_chunk_boundary_is_found_once() -> None:
    data = b"a" * (CHUNK - 10) + SECRET.encode() + b"b" * 100
    stream = io.BytesIO(data)
    report = Report()
    scanned = scan_stream(stream.read, Matcher(VALUES), ("s",), report)
    assert scanned == len(data)
    assert [(f.offset, f.line) for f in report.findings] == [(CHUNK - 10, 1)]


def test_value_wrapped_over_lines_with_indentation(tmp_path: Path) -> None:
    """A YAML folded scalar and `base64` output wrapped at 76 columns."""
    (tmp_path / "folded.yml").write_text(f"key: >\n  {SECRET[:10]}\n  {SECRET[10:]}\nother: 1\n")
    wrapped = base64.encodebytes(b"k" * 50 + SECRET.encode() + b"k" * 50)  # 76-column lines
    assert wrapped.count(b"\n") > 1
    (tmp_path / "b64.txt").write_bytes(wrapped)
    report = run_scan([tmp_path])
    by_file = {f.where[0].rsplit("/", 1)[1]: f for f in report.findings}
    assert set(by_file) == {"folded.yml", "b64.txt"}
    assert by_file["folded.yml"].form == "value, split across lines"
    assert by_file["folded.yml"].line == 2
    assert "base64" in by_file["b64.txt"].form


def test_words_on_one_line_do_not_join_into_a_value(tmp_path: Path) -> None:
    (tmp_path / "f").write_text(f"{SECRET[:10]} {SECRET[10:]}\n")
    assert run_scan([tmp_path]).total_findings == 0


def test_binary_files_get_offsets_not_lines(tmp_path: Path) -> None:
    (tmp_path / "bin").write_bytes(b"\x00\x01" * 10 + SECRET.encode())
    (finding,) = run_scan([tmp_path]).findings
    assert (finding.offset, finding.line) == (20, None)


# ---- archives --------------------------------------------------------------------------------


def _tar_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _zip_bytes(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


LEAK = b"config = '" + SECRET.encode() + b"'\n"


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("a.gz", lambda d: gzip.compress(d)),
        ("a.bz2", lambda d: bz2.compress(d)),
        ("a.xz", lambda d: lzma.compress(d)),
        ("a.zst", lambda d: zstandard.ZstdCompressor().compress(d)),
        ("a.tar", lambda d: _tar_bytes({"etc/app.conf": d})),
        ("a.tgz", lambda d: gzip.compress(_tar_bytes({"etc/app.conf": d}))),
        ("a.tar.xz", lambda d: lzma.compress(_tar_bytes({"etc/app.conf": d}))),
        ("a.jar", lambda d: _zip_bytes({"META-INF/app.properties": d})),
        ("a.whl", lambda d: _zip_bytes({"pkg/conf.py": d}, zipfile.ZIP_BZIP2)),
        (
            "nested.tar.gz",
            lambda d: gzip.compress(
                _tar_bytes({"dist/x.whl": _zip_bytes({"pkg/data.gz": gzip.compress(d)})})
            ),
        ),
    ],
)
def test_archives_and_compressed_files(tmp_path: Path, name: str, make) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / name).write_bytes(make(LEAK))
    (tmp_path / ("clean-" + name)).write_bytes(make(LEAK.replace(b"scan", b"SCAN")))
    report = run_scan([tmp_path])
    assert report.errors == []
    assert report.total_findings == 1, forms_found(report)
    finding = report.findings[0]
    assert finding.where[0].endswith("/" + name)
    if "tar" in name or name.endswith(("jar", "whl")):
        assert len(finding.where) >= 2  # the member is named
    assert finding.line == 1


def test_zip_bomb_is_an_error_not_a_hang(tmp_path: Path) -> None:
    """42.zip-style: a small zip whose members inflate far beyond the budget."""
    zeros = b"\0" * (64 << 20)
    layer = _zip_bytes({f"{i}.bin": zeros for i in range(4)})
    (tmp_path / "bomb.zip").write_bytes(_zip_bytes({f"{i}.zip": layer for i in range(4)}))
    assert (tmp_path / "bomb.zip").stat().st_size < 2 << 20
    report = run_scan([tmp_path], min_bomb=64 << 20)
    assert report.total_findings == 0
    assert [("bomb" in i.message) for i in report.errors] == [True]


def test_gzip_bomb_is_an_error(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "bomb.gz", "wb", compresslevel=9) as handle:
        for _ in range(80):
            handle.write(b"\0" * (1 << 20))
    report = run_scan([tmp_path], min_bomb=16 << 20, ratio=100)
    assert len(report.errors) == 1
    assert "bomb" in report.errors[0].message


def test_nesting_deeper_than_the_limit_is_an_error(tmp_path: Path) -> None:
    data = LEAK
    for _ in range(12):
        data = gzip.compress(data)
    (tmp_path / "deep.gz").write_bytes(data)
    report = run_scan([tmp_path], max_depth=6)
    assert report.total_findings == 0
    assert ["nested more than 6" in i.message for i in report.errors] == [True]
    assert run_scan([tmp_path], max_depth=12).total_findings == 1


def test_damaged_and_encrypted_archives_are_errors(tmp_path: Path) -> None:
    whole = gzip.compress(LEAK + os.urandom(100_000).hex().encode())
    (tmp_path / "cut.gz").write_bytes(whole[: len(whole) // 2])
    whl = bytearray(_zip_bytes({"a.txt": LEAK}))
    whl[6] |= 1  # mark the member encrypted (general purpose flag, local header)
    whl[whl.rindex(b"PK\x01\x02") + 8] |= 1  # and in the central directory
    (tmp_path / "locked.zip").write_bytes(bytes(whl))
    report = run_scan([tmp_path])
    messages = sorted(i.message for i in report.errors)
    assert len(messages) == 2
    assert any("encrypted" in m for m in messages)
    assert any("cannot be read" in m for m in messages)


# ---- hostile trees ---------------------------------------------------------------------------


def test_symlinks_are_not_followed_out_of_the_tree(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.env").write_text(f"TOKEN={SECRET}\n")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "out").symlink_to(outside / "secret.env")
    (tree / "sub" / "outdir").symlink_to(outside)
    (tree / "sub" / "loop").symlink_to(tree / "sub")  # inside: scanned where it points
    (tree / "a").symlink_to(tree / "b")
    (tree / "b").symlink_to(tree / "a")  # a loop
    (tree / "dangling").symlink_to(tmp_path / "nowhere")
    (tree / "root").symlink_to("/")
    report = run_scan([tree])
    assert report.total_findings == 0
    notes = {i.where[0].rsplit("/", 1)[1] for i in report.issues if not i.error}
    assert notes == {"out", "outdir", "a", "b", "dangling", "root"}
    assert report.errors == []


def test_fifo_and_devices_are_not_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")  # opening it for reading would block forever
    (tmp_path / "ok.txt").write_text(SECRET)
    report = run_scan([tmp_path, tmp_path / "fifo", Path("/dev/zero"), Path("/dev/null")])
    assert report.total_findings == 1
    kinds = sorted(i.message for i in report.issues)
    assert kinds == [
        "a FIFO: not read",
        "a FIFO: not read",
        "a character device: not read",
        "a character device: not read",
    ]
    assert report.errors == []


def test_a_file_and_its_hard_link_are_read_once(tmp_path: Path) -> None:
    (tmp_path / "a").write_text(SECRET)
    os.link(tmp_path / "a", tmp_path / "b")
    assert run_scan([tmp_path, tmp_path / "a"]).total_findings == 1


def _without_root_reads() -> list[str]:
    """A prefix that takes root's power to read any file (as on a CI runner's own user)."""
    if os.getuid() != 0:
        return []
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def test_unreadable_files_and_directories_are_errors(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "locked").mkdir(parents=True)
    (tree / "locked" / "x").write_text(SECRET)
    (tree / "secret.txt").write_text(SECRET)
    (tree / "ok.txt").write_text("nothing here\n")
    os.chmod(tree / "secret.txt", 0)
    os.chmod(tree / "locked", 0)
    env = {"JOBSECRETS_MASK_VARS": "API_TOKEN", "API_TOKEN": SECRET}
    try:
        done = subprocess.run(
            [*_without_root_reads(), sys.executable, "-m", "jobsecrets", "scan", str(tree)],
            env=clean_env(env),
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    finally:
        os.chmod(tree / "locked", 0o700)
        os.chmod(tree / "secret.txt", 0o600)
    assert done.returncode == ScanIncomplete.exit_code, done.stderr
    assert "secret.txt: cannot be read" in done.stderr
    assert "locked: cannot be listed" in done.stderr
    assert no_value_in(done.stdout + done.stderr)


# ---- the command -----------------------------------------------------------------------------


def test_cli_reads_values_by_the_names_export_recorded(tmp_path: Path) -> None:
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "app.js").write_text(f'const k="{SECRET}";\n')
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN KEY-----\nAAAABBBBCCCCDDDDEEEE\n-----END KEY-----\n")
    (tmp_path / "dist" / "k.txt").write_text(base64.b64encode(key.read_bytes()).decode())
    env = {
        "JOBSECRETS_MASK_VARS": "API_TOKEN UNSET_ONE",
        "JOBSECRETS_MASK_FILE_VARS": "TLS_KEY",
        "API_TOKEN": SECRET,
        "TLS_KEY": str(key),
    }
    summary = tmp_path / "summary.md"
    result = jobsecrets(
        ["scan", "dist", "--format", "json", "--summary", str(summary)], cwd=tmp_path, env=env
    )
    assert result.returncode == LeakFound.exit_code, result.stderr
    data = json.loads(result.stdout)
    found = {(f["file"], tuple(f["variables"]), f["form"]) for f in data["findings"]}
    assert found == {
        ("dist/app.js", ("API_TOKEN",), "value"),
        ("dist/k.txt", ("TLS_KEY",), "base64"),
    }
    table = summary.read_text()
    assert "| API_TOKEN | dist/app.js:1 | value |" in table
    assert no_value_in(result.stdout + result.stderr + table)
    assert "AAAABBBB" not in result.stdout + table


def test_cli_clean_is_0_and_nothing_to_look_for_is_2(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("clean\n")
    env = {"JOBSECRETS_MASK_VARS": "API_TOKEN", "API_TOKEN": SECRET}
    assert jobsecrets(["scan", "f"], cwd=tmp_path, env=env).returncode == 0
    result = jobsecrets(["scan", "f"], cwd=tmp_path)
    assert result.returncode == 2
    assert "JOBSECRETS_MASK_VARS" in result.stderr


def test_a_file_named_after_the_value_is_shown_masked(tmp_path: Path) -> None:
    (tmp_path / f"{SECRET}.txt").write_text(SECRET)
    env = {"JOBSECRETS_MASK_VARS": "API_TOKEN", "API_TOKEN": SECRET}
    result = jobsecrets(["scan", "."], cwd=tmp_path, env=env)
    assert result.returncode == LeakFound.exit_code
    assert no_value_in(result.stdout + result.stderr)
    assert "***.txt" in result.stdout


def _spec(tmp_path: Path) -> None:
    (tmp_path / "store.json").write_text(json.dumps({"app": {"token": SECRET}}))
    (tmp_path / "jobsecrets.yml").write_text(
        "version: 1\nbackends:\n  fake: {type: fake, file: store.json}\n"
        "secrets:\n  API_TOKEN: fake:app#token\n"
    )


def test_scan_with_a_spec_resolves_the_values_itself(tmp_path: Path) -> None:
    _spec(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x.gz").write_bytes(gzip.compress(SECRET.encode()))
    result = jobsecrets(["scan", "-c", "jobsecrets.yml", "out"], cwd=tmp_path)
    assert result.returncode == LeakFound.exit_code, result.stderr
    assert "out/x.gz:1: offset 0: API_TOKEN (value)" in result.stdout


def test_run_scan_checks_the_childs_output_before_revocation(tmp_path: Path) -> None:
    _spec(tmp_path)
    leak = ["sh", "-c", 'mkdir -p dist && printf "%s" "$API_TOKEN" | base64 > dist/token.txt']
    result = jobsecrets(["run", "--scan", "dist", "--", *leak], cwd=tmp_path)
    assert result.returncode == LeakFound.exit_code, result.stderr
    assert "dist/token.txt:1: offset 0: API_TOKEN (base64)" in result.stderr
    clean = ["sh", "-c", "mkdir -p out && echo built > out/app.txt"]
    result = jobsecrets(["run", "--scan", "out", "--", *clean], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    failing = ["sh", "-c", 'printf "%s" "$API_TOKEN" > dist/t2; exit 3']
    assert jobsecrets(["run", "--scan", "dist", "--", *failing], cwd=tmp_path).returncode == 3


def test_staged_and_history(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    (tmp_path / "a.txt").write_text("clean\n")
    git("add", "a.txt")
    git("commit", "-qm", "one")
    (tmp_path / "conf.py").write_text(f"KEY = '{SECRET}'\n")
    git("add", "conf.py")
    env = {"JOBSECRETS_MASK_VARS": "API_TOKEN", "API_TOKEN": SECRET}
    staged = jobsecrets(["scan", "--staged"], cwd=tmp_path, env=env)
    assert staged.returncode == LeakFound.exit_code, staged.stderr
    assert staged.stdout.startswith(":conf.py:1: offset 7: API_TOKEN (value)")
    git("commit", "-qm", "two")
    (tmp_path / "conf.py").write_text("KEY = os.environ['KEY']\n")
    git("commit", "-qam", "three")
    assert jobsecrets(["scan", "--staged"], cwd=tmp_path, env=env).returncode == 0
    assert jobsecrets(["scan", "--history", "1"], cwd=tmp_path, env=env).returncode == 0
    history = jobsecrets(["scan", "--history", "2"], cwd=tmp_path, env=env)
    assert history.returncode == LeakFound.exit_code
    assert ":conf.py:1: offset 7: API_TOKEN (value)" in history.stdout
    assert no_value_in(history.stdout + history.stderr)


def test_scan_values_api_rejects_nothing_to_scan() -> None:
    from jobsecrets.errors import ConfigError

    with pytest.raises(ConfigError):
        scan_values(VALUES, ScanOptions())


def test_modes_left_untouched(tmp_path: Path) -> None:
    """A scan changes no permission bit (it never chmods what it reads)."""
    (tmp_path / "f").write_text("x")
    os.chmod(tmp_path / "f", 0o640)
    run_scan([tmp_path])
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o640


def test_pre_commit_hook_entry_stops_a_staged_value(tmp_path: Path) -> None:
    """The documented hook (.pre-commit-hooks.yaml), run the way pre-commit runs it."""
    import shlex

    import yaml

    hooks = yaml.safe_load((Path(__file__).parents[2] / ".pre-commit-hooks.yaml").read_text())
    (hook,) = hooks
    assert (hook["id"], hook["pass_filenames"], hook["language"]) == (
        "jobsecrets-scan",
        False,
        "python",
    )
    argv = [*shlex.split(hook["entry"]), *hook["args"]]
    assert argv[0] == "jobsecrets"
    _spec(tmp_path)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "settings.py").write_text(f"TOKEN = {SECRET!r}\n")
    subprocess.run(["git", "add", "settings.py"], cwd=tmp_path, check=True)
    result = jobsecrets(argv[1:], cwd=tmp_path)
    assert result.returncode == LeakFound.exit_code, result.stderr
    assert ":settings.py:1: offset 9: API_TOKEN (value)" in result.stdout
    subprocess.run(["git", "rm", "-q", "--cached", "settings.py"], cwd=tmp_path, check=True)
    assert jobsecrets(argv[1:], cwd=tmp_path).returncode == 0


def test_min_length_below_the_key_length_still_finds_short_values(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("pin=4711x;\n")
    assert run_scan([tmp_path], values=[("PIN", "4711x")]).total_findings == 0  # default 8
    report = Report()
    scan_paths([str(tmp_path)], Matcher([("PIN", "4711x")], min_length=5), report)
    assert [(f.names, f.form, f.offset) for f in report.findings] == [(("PIN",), "value", 4)]


def test_zstd_without_a_library_is_an_error_not_a_skip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.zst").write_bytes(zstandard.ZstdCompressor().compress(LEAK))
    monkeypatch.setitem(sys.modules, "zstandard", None)  # import fails, as without the extra
    monkeypatch.setitem(sys.modules, "compression", None)  # and as before Python 3.14
    report = run_scan([tmp_path])
    assert report.total_findings == 0
    assert ["jobsecrets[zstd]" in i.message for i in report.errors] == [True]


def test_empty_files_and_empty_archives_are_clean(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "empty.zip").write_bytes(_zip_bytes({}))
    (tmp_path / "empty.tar").write_bytes(_tar_bytes({}))
    (tmp_path / "empty.gz").write_bytes(gzip.compress(b""))
    report = run_scan([tmp_path])
    assert (report.total_findings, report.issues, report.files) == (0, [], 4)


@pytest.mark.parametrize("shift", [-9, -8, -7, -4, -1, 0, 1, 5])
def test_a_big_chunk_searched_in_two_halves_finds_a_value_across_the_middle(shift: int) -> None:
    size = 2 << 20  # over the split threshold; the halves meet at 1 MiB
    for min_length, value in ((8, SECRET), (5, "k3y-z")):
        at = size // 2 + shift
        data = bytearray(b"." * size)
        data[at : at + len(value)] = value.encode()
        report = Report()
        matcher = Matcher([("V", value)], min_length=min_length)
        scan_stream(io.BytesIO(bytes(data)).read, matcher, ("s",), report)
        assert [f.offset for f in report.findings] == [at], (min_length, shift)


def test_a_heavily_indented_wrap_across_a_chunk_boundary_is_found() -> None:
    """The longest form wrapped with almost as much whitespace as it has bytes, cut by a chunk."""
    value = "A1b2C3d4E5f6G7h8I9j0" * 5  # 100 bytes: its hex (200) is the longest form
    form = value.encode().hex()
    # Lines of 10 characters, each continuation indented by 9: 190 bytes of whitespace for 200.
    wrapped = ("\n" + " " * 9).join(form[i : i + 10] for i in range(0, len(form), 10))
    for shift in range(0, 900, 41):
        data = b"x" * (CHUNK - shift) + wrapped.encode() + b"\n" + b"y" * 100
        report = Report()
        scan_stream(io.BytesIO(data).read, Matcher([("V", value)]), ("s",), report)
        forms = [f.form for f in report.findings if f.offset == CHUNK - shift]
        assert forms == ["hex, split across lines"], shift


def test_a_file_made_of_the_value_lists_a_bounded_number_of_findings() -> None:
    from jobsecrets.scan.report import MAX_FINDINGS

    data = (SECRET + "\n").encode() * (MAX_FINDINGS + 500)
    report = Report()
    scan_stream(io.BytesIO(data).read, Matcher(VALUES), ("s",), report)
    assert report.total_findings == MAX_FINDINGS + 500
    assert len(report.findings) == MAX_FINDINGS
    assert "(first 10000 listed)" in report.summary_line()


# ---- hex dumps ---------------------------------------------------------------------------------


@pytest.mark.parametrize("tool", ["xxd", "hexdump -C", "od -A x -t x1z", "od -x"])
def test_a_value_in_a_hex_dump_in_a_file_is_found(tmp_path: Path, tool: str) -> None:
    """A test report holding `xxd config.bin` output: the value is in no line whole, its bytes
    are; it is found as the redactor masks it (a form, in a hex dump), at the dump's line."""
    import shutil

    argv = tool.split()
    found = shutil.which(argv[0])
    assert found is not None, f"{argv[0]} missing (.ci/run installs it)"
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"\x01\x02 header \xff" + SECRET.encode() + b"\x00 trailer")
    printed = subprocess.run([found, *argv[1:], str(blob)], capture_output=True, check=True).stdout
    blob.unlink()
    report_file = tmp_path / "report.txt"
    report_file.write_bytes(b"== dumped config ==\n" + printed + b"== end ==\n")
    report = run_scan([tmp_path])
    assert report.total_findings == 1, forms_found(report)
    finding = report.findings[0]
    assert finding.names == ("API_TOKEN",)
    assert finding.form == "value, in a hex dump"
    assert finding.line in (2, 3)  # the dump's line that shows the value's first byte
    assert no_value_in(json.dumps([f.form for f in report.findings]))


def test_a_hex_dump_without_the_value_is_clean(tmp_path: Path) -> None:
    import shutil

    xxd = shutil.which("xxd")
    assert xxd is not None
    blob = tmp_path / "blob.bin"
    blob.write_bytes(SECRET[:-1].encode() + b"\x00" + SECRET[1:].encode())
    printed = subprocess.run([xxd, str(blob)], capture_output=True, check=True).stdout
    blob.unlink()
    (tmp_path / "dump.txt").write_bytes(printed)
    assert run_scan([tmp_path]).total_findings == 0
