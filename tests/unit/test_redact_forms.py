"""The forms real tools print a value in, produced by those tools where they are on the machine.

Shells (bash, dash) and coreutils (``base64``, ``fold``) are run for real with the value in
their environment (never in argv); encoders of other languages are written out by hand from
their documented rules. Assertions are booleans with fixed messages: no value is ever shown.

PYTEST_DONT_REWRITE: plain asserts here, so a failing one prints its message and no value it
compared (pytest's rewriting shows the operands even of ``(value in log) is False``).
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import threading
import urllib.parse
from pathlib import Path

import pytest

from jobsecrets.commands import redact as jfilter
from jobsecrets.redact import MaskList


def masked(masks: MaskList, text: bytes, value: bytes) -> bool:
    """True when no 8-byte piece of ``value`` is left in the redacted ``text``."""
    out = masks.redact(text)
    pieces = {value[i : i + 8] for i in range(max(1, len(value) - 7))}
    return not any(piece in out for piece in pieces)


def one(value: bytes) -> MaskList:
    masks = MaskList()
    masks.add(value, name="V")
    return masks


def shell(argv: list[str], value: bytes, script: str) -> bytes:
    env = {b"PATH": os.environb[b"PATH"], b"V": value, b"LC_ALL": b"C.UTF-8"}
    result = subprocess.run([*argv, script], env=env, capture_output=True, check=False)
    return result.stdout + result.stderr


NASTY = [
    b"a'b\"c\\d(e)#$x`y z!" + secrets.token_hex(4).encode(),
    b"p@ss w0rd;" + secrets.token_hex(4).encode() + b"&|<>",
    b"tab\there-" + secrets.token_hex(4).encode() + b"\x01\x1b",
    b"#start~" + secrets.token_hex(6).encode() + b",comma",
    b"''double''quote" + secrets.token_hex(4).encode(),
]


@pytest.mark.parametrize("index", range(len(NASTY)))
@pytest.mark.parametrize(
    ("argv", "script"),
    [
        (["bash", "-c"], 'set -x; : "$V"; : $V; echo "$V"'),
        (["bash", "-c"], "declare -p V; export -p | grep ' V='"),
        (["bash", "-c"], 'printf "%q\\n" "$V"'),
        (["dash", "-c"], "export -p | grep ' V='; set -x; : \"$V\""),
    ],
)
def test_real_shells_requoting(argv: list[str], script: str, index: int) -> None:
    value = NASTY[index]
    out = shell(argv, value, script)
    ok = masked(one(value), out, value)
    assert ok, "a shell's quoting of the value was not masked"


def mixed_values() -> list[bytes]:
    """Values bash writes partly as they are and partly in octal: valid printable UTF-8 kept,
    invalid bytes and unprintable characters (U+0085, U+2028, an encoded surrogate) in octal.
    Each word holds a random run, so a word shown unmasked is seen."""
    return [
        b"\x01caf\xc3\xa9-\xff-" + secrets.token_hex(5).encode(),
        b"\x01\xff" + secrets.token_hex(5).encode() + b" sec\x02" + secrets.token_hex(5).encode(),
        b"caf\xc3\xa9 \xff"
        + secrets.token_hex(5).encode()
        + b" w\xc3\xa9"
        + secrets.token_hex(5).encode(),
        b"it's-\xc2\x85-\xf0\x9f\x98\x80-\xed\xa0\x80-"
        + secrets.token_hex(5).encode()
        + b" \xe2\x80\xa8"
        + secrets.token_hex(5).encode()
        + b"\t\x7f",
    ]


@pytest.mark.parametrize("locale", ["C.UTF-8", "C"])
@pytest.mark.parametrize("index", range(4))
def test_bash_ansi_c_quoting_of_values_not_all_utf8(locale: str, index: int) -> None:
    """bash's $'...' (declare -p, export -p, printf %q, xtrace, and each word of an unquoted
    $V) in a UTF-8 locale writes valid printable characters as they are and the other bytes in
    octal; in the C locale every byte above 0x7F in octal."""
    value = mixed_values()[index]
    env = {b"PATH": os.environb[b"PATH"], b"V": value, b"LC_ALL": locale.encode()}
    script = 'declare -p V; export -p | grep " V="; printf "%q\\n" "$V"; set -x; : "$V"; : $V'
    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, check=False)
    out = result.stdout + result.stderr
    quoted = b"$'" in out
    assert quoted, "bash did not write the value as $'...'"
    masks = one(value)
    redacted = masks.redact(out)
    # Each word's random run: a word shown in a form not masked is seen.
    runs = re.findall(rb"[0-9a-f]{10}", value)
    ok = masked(masks, out, value) and not any(run in redacted for run in runs)
    assert ok, "bash's $'...' quoting of the value was not masked"


@pytest.mark.parametrize("word", ["ab^cd", "~home", "#hash", "x=~y", "p:~q"])
def test_bash_xtrace_quoting_of_an_ascii_value_s_words(word: str) -> None:
    """bash single-quotes a traced word holding a ^, a leading ~ or #, or =~ / :~ (dash leaves
    it bare): an ASCII value's words were only masked as dash writes them."""
    value = (word + secrets.token_hex(5) + " other" + secrets.token_hex(5)).encode()
    env = {b"PATH": os.environb[b"PATH"], b"V": value, b"LC_ALL": b"C.UTF-8"}
    result = subprocess.run(
        ["bash", "-c", "set -x; : $V"], env=env, capture_output=True, check=False
    )
    out = result.stdout + result.stderr
    quoted = b"'" in out
    assert quoted, "bash did not quote the word: nothing was tested"
    masks = one(value)
    runs = re.findall(rb"[0-9a-f]{10}", value)
    redacted = masks.redact(out)
    ok = not any(run in redacted for run in runs)
    assert ok, "bash's xtrace of the value's words was not masked"


@pytest.mark.parametrize("width", [0, 76, 64, 40, 31])
@pytest.mark.parametrize("size", [24, 57, 100, 1700])
def test_real_base64_wrapped_at_any_width(width: int, size: int) -> None:
    value = os.urandom(size)
    env = {"PATH": os.environ["PATH"]}
    result = subprocess.run(
        ["base64", f"-w{width}"], input=value, env=env, capture_output=True, check=True
    )
    text = b"before\n" + result.stdout + b"after\n"
    out = one(value).redact(text)
    encoded = base64.b64encode(value)
    leaked = any(
        encoded[i : i + 12] in out.replace(b"\n", b"") for i in range(0, len(encoded) - 12)
    )
    assert leaked is False, "a piece of wrapped base64 was left"
    assert out.count(b"\n") == text.count(b"\n"), "the lines of the log changed"
    assert out.startswith(b"before\n") and out.endswith(b"after\n")


@pytest.mark.parametrize("width", [None, 64, 40])
def test_real_base64url_wrapped_at_any_width(width: int | None) -> None:
    """``basenc --base64url`` wraps at 76 (``width`` None) like ``base64``: its "-" and "_"
    stopped the walk, so most of each line showed."""
    value = os.urandom(150)
    while not set(base64.urlsafe_b64encode(value)) & set(b"-_"):
        value = os.urandom(150)
    env = {"PATH": os.environ["PATH"]}
    result = subprocess.run(
        ["basenc", "--base64url"] + ([] if width is None else [f"-w{width}"]),
        input=value,
        env=env,
        capture_output=True,
        check=True,
    )
    text = b"before\n" + result.stdout + b"after\n"
    out = one(value).redact(text)
    lines = out.split(b"\n")
    shape = lines[0] == b"before" and lines[-2:] == [b"after", b""]
    assert shape, "the lines around the wrapped text changed"
    whole_lines = all(line == b"***" for line in lines[1:-2])
    assert whole_lines, "a line of the wrapped URL-safe base64 was not masked whole"


def test_wrapped_base64_split_across_every_write() -> None:
    value = os.urandom(120)
    encoded = base64.b64encode(value)
    text = b"x\n" + b"\n".join(encoded[i : i + 64] for i in range(0, len(encoded), 64)) + b"\ny\n"
    redactor = one(value).redactor()
    out = b"".join(redactor.feed(text[i : i + 1]) for i in range(len(text))) + redactor.flush()
    assert out == one(value).redact(text), "byte-by-byte output differs from one piece"
    assert (encoded[:16] in out or encoded[-20:-4] in out) is False


def test_docker_auth_and_value_after_any_prefix() -> None:
    value = ("pw-" + secrets.token_urlsafe(20)).encode()
    masks = one(value)
    for user in (b"ci", b"deploy", b"x", b"registry-user"):
        auth = base64.b64encode(user + b":" + value)
        config = json.dumps({"auths": {"r.example.com": {"auth": auth.decode()}}}).encode()
        ok = masked(masks, config, value)
        assert ok, "docker auth left the value readable"
        assert (auth in masks.redact(config)) is False, "docker auth not masked"


def test_percent_encoding_dialects() -> None:
    value = ("k€y:" + secrets.token_hex(6) + " /?#@!*'()~$&+,;=").encode()
    masks = one(value)
    text = value.decode()
    forms = [
        urllib.parse.quote(text, safe=""),
        urllib.parse.quote(text),
        urllib.parse.quote_plus(text),
        urllib.parse.quote(text, safe="-_.!~*'()"),  # encodeURIComponent
        urllib.parse.quote_plus(text, safe="-_.*").replace("~", "%7E"),  # Java URLEncoder
        urllib.parse.quote(text, safe="-_.~$&+,;="),  # Go url.UserPassword
        urllib.parse.quote(text, safe="").lower(),
        text.replace("%", "%25").replace("@", "%40").replace(":", "%3A").replace("/", "%2F"),
    ]
    for i, form in enumerate(forms):
        data = f"postgres://u:{form}@db:5432/x".encode()
        ok = masked(masks, data, form.encode())
        assert ok, f"percent dialect {i} not masked"


def test_json_escaper_dialects() -> None:
    value = ("a=b'c<d>&e+f/g`é" + secrets.token_hex(4)).encode()
    masks = one(value)
    text = value.decode()
    gson = text.replace("=", "\\u003d").replace("'", "\\u0027").replace("<", "\\u003c")
    gson = gson.replace(">", "\\u003e").replace("&", "\\u0026")
    dotnet = "".join(f"\\u{ord(c):04X}" if c in "<>&'+`\"" or ord(c) > 0x7E else c for c in text)
    php = json.dumps(text)[1:-1].replace("/", "\\/")
    for i, form in enumerate([gson, dotnet, php, json.dumps(text)[1:-1]]):
        data = ('{"password": "' + form + '"}').encode()
        ok = masked(masks, data, form.encode())
        assert ok, f"JSON dialect {i} not masked"


def test_lines_of_a_multiline_value_trimmed_or_not() -> None:
    line_a = "token-" + secrets.token_hex(8)
    line_b = "other-" + secrets.token_hex(8)
    value = f"  {line_a}\n\t{line_b}  \n    \n".encode()
    masks = one(value)
    for text in (line_a, line_b, f"  {line_a}", f"x {line_b} y"):
        ok = masked(masks, text.encode(), text.strip().encode())
        assert ok, "a line was left"
    assert masks.redact(b"    indented\n") == b"    indented\n", "whitespace line masked"


def test_leaves_of_a_json_document_secret() -> None:
    password = "pw" + secrets.token_hex(3)
    doc = json.dumps(
        {"host": "db.example.com", "port": "5432", "db_password": password, "type": "postgres"}
    ).encode()
    masks = one(doc)
    ok = masked(masks, f"password is {password}\n".encode(), password.encode())
    assert ok, "a value was left readable"
    for ordinary in (b"db.example.com", b"5432", b"postgres"):
        assert masks.redact(ordinary) == ordinary, "an ordinary leaf was masked"


def test_a_repeated_byte_value_is_masked_and_builds() -> None:
    for value in (b"_" * 16000, b"0" * 8192):
        masks = one(value)
        masks.compiled()
        assert masks.redact(b"[" + value + b"]") == b"[***]"


def test_github_commands_announce_wrapped_lines() -> None:
    value = b"\xff\xff\xff" + os.urandom(197)  # its base64 starts "////": URL-safe "____"
    masks = one(value)
    commands = set(masks.github_commands())
    # URL-safe too (basenc --base64url wraps at 76): the redactor masks those lines in-stream,
    # GitHub's own masker was not told them.
    for encoded in (base64.b64encode(value).decode(), base64.urlsafe_b64encode(value).decode()):
        for width in (64, 76):
            for i in range(0, len(encoded), width):
                line = encoded[i : i + width]
                assert f"::add-mask::{line}" in commands, "a wrapped line is missing"


def test_filter_takes_a_value_that_is_not_utf8() -> None:
    value = b"\xff\xfe-not-utf8-" + secrets.token_hex(6).encode() + b"\x80"
    env = {k.encode(): v.encode() for k, v in os.environ.items()}
    env.update({b"V": value, b"JOBSECRETS_MASK_VARS": b"V"})
    result = subprocess.run(
        [sys.executable, "-m", "jobsecrets", "redact"],
        input=b"a " + value + b" b\n" * 1000,
        env=env,
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0
    assert (value in result.stdout) is False, "the value was let through"
    assert result.stdout.startswith(b"a *** b\n") and result.stdout.count(b" b\n") == 1000


def test_filter_withholds_and_reads_to_the_end_when_masks_cannot_be_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise MemoryError

    monkeypatch.setattr(jfilter, "build_masks", broken)
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    payload = b"secret output\n" * 20000  # more than a pipe holds: the filter must read it all
    writer = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=in_w)
    os.close(in_w)
    assert writer.stdin is not None
    stdin = writer.stdin

    def feed() -> None:
        stdin.write(payload)
        stdin.close()

    # Written from a thread: the payload is bigger than the pipes hold until the filter reads.
    feeding = threading.Thread(target=feed)
    feeding.start()
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGHUP)}
    try:
        code = jfilter.run_filter({}, ["V"], [], in_fd=in_r, out_fd=out_w)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    os.close(out_w)
    out = os.read(out_r, 1 << 16)
    os.close(in_r)
    os.close(out_r)
    feeding.join(timeout=10)
    assert writer.wait(timeout=10) == 0, "the writer was cut off"
    assert code == 1
    assert b"withheld" in out and b"secret output" not in out


def test_any_bytes_value_builds_its_forms() -> None:
    # A value that breaks a form builder would make the filter withhold the job's whole log.
    alphabet = b"\\\\\\\"'$`%\n\r\t \x00\x1b\xff\xc3\xa9{}[]:,=&<>+/" + bytes(range(48, 58))
    rng = __import__("random").Random(5)
    for _ in range(400):
        n = rng.randint(3, 60)
        value = bytes(rng.choice(alphabet) for _ in range(n)) + os.urandom(rng.randint(0, 4))
        masks = one(value)
        ok = (value in masks.redact(b"<" + value + b">")) is False
        assert ok, "a value was not masked"


MASKING_DOC = (Path(__file__).resolve().parents[2] / "docs" / "masking.md").read_text()


def documented(pattern: str) -> list[int]:
    """The numbers docs/masking.md states in the sentence ``pattern`` matches (one line)."""
    match = re.search(pattern, " ".join(MASKING_DOC.split()))
    assert match is not None, "docs/masking.md no longer says this"
    return [int(group) for group in match.groups()]


def stream_masked(size: int, before: int, wrap: bool, rng: random.Random) -> bool:
    """Whether a value of ``size`` bytes after ``before`` bytes inside a longer base64 stream
    (``before`` < 0: encoded on its own) is wholly masked; ``wrap``: the stream is cut by a
    line break in the middle of the value's stable characters."""
    value = bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(size))
    alone = before < 0
    prefix = b"" if alone else bytes(rng.choice(b"ABCDEFGHIJ:") for _ in range(before))
    encoded = base64.b64encode(value if alone else prefix + value + b"XYZQRSTU" * 4)
    start = (8 * len(prefix) + 5) // 6
    end = len(encoded) if alone else (8 * (len(prefix) + size)) // 6
    width = max(31, (start + end) // 2) if wrap else len(encoded)
    lines = [encoded[i : i + width] for i in range(0, len(encoded), width)]
    out = one(value).redact(b"x " + b"\n".join(lines) + b" y\n").split(b"\n")
    stable = encoded[start:end]
    return not any(stable[i : i + 4] in line for line in out for i in range(len(stable) - 3))


def test_base64_limits_are_as_documented() -> None:
    """The sizes docs/masking.md gives for base64 inside a stream and wrapped are the exact
    bounds: from each stated size on a value is masked, one byte less it is not."""
    rng = random.Random(9)
    (inside,) = documented(r"at every offset for values of (\d+) bytes or more")
    aligned, other = documented(
        r"values of (\d+) bytes or more after a multiple of 3 bytes, (\d+) bytes or more after"
    )
    cases = [(inside, 30 + k, False) for k in (0, 1, 2)]
    cases += [(aligned, 30, True), (other, 31, True), (other, 32, True)]
    # A value's own encoding, whenever a width of 31 or more cuts it (32 characters: 22 bytes).
    ok = all(stream_masked(22, -1, True, rng) for _ in range(5))
    assert ok, "a value's own encoding wrapped at 31 columns was not masked"
    for size, before, wrap in cases:
        ok = all(stream_masked(size, before, wrap, rng) for _ in range(5))
        assert ok, f"not masked from the documented size {size} (before={before}, wrap={wrap})"
        ok = not any(stream_masked(size - 1, before, wrap, rng) for _ in range(5))
        assert ok, f"masked below the documented size {size} (before={before}, wrap={wrap})"
