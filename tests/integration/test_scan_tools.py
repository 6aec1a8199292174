"""jobsecrets scan against leaks made by the real tools that make them (issue 19).

Each tree is built twice by the same tools: once with the job's value (the scan must find it,
name the variable, the file and the form) and once with another value (the scan must find
nothing: zero false positives). Values reach the tools through the environment, as in a job.

Tools: esbuild from npm (in .tools, installed by scripts/bootstrap) inlining a value into a
minified bundle with a source map; pip + setuptools building a wheel; GNU tar + gzip for a
source tarball and a Docker-style image (``docker save`` layout: an outer tar with a gzipped
layer tar holding ``app/.env``); coreutils ``base64`` (76-column wraps) and ``fold``.

PYTEST_DONT_REWRITE: plain asserts here, so a failing one prints its message and no value it
compared (pytest's rewriting shows the operands even of ``(value in log) is False``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jobsecrets.errors import LeakFound
from support.cli import clean_env, jobsecrets

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ESBUILD_MODULES = REPO / ".tools" / "node_modules"
SECRET = "sk_live_51Hq8ZtL2eXample0Secr3tKey9x"
OTHER = "sk_live_51Hq8ZtL2eXample0Other0Key9x"

BUILD_JS = """
const esbuild = require('esbuild');
esbuild.buildSync({
  entryPoints: ['src/index.js'], bundle: true, minify: true, sourcemap: true,
  outfile: 'dist/app.min.js', platform: 'browser',
  define: { 'process.env.STRIPE_KEY': JSON.stringify(process.env.STRIPE_KEY) },
});
"""

KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- cluster: {server: https://k8s.example.com}
  name: prod
users:
- name: ci
  user:
    token: {token}
contexts:
- context: {cluster: prod, user: ci}
  name: prod
current-context: prod
"""


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{args[0]} failed: {done.stderr[-2000:]}"


def build_tree(root: Path, value: str) -> Path:
    """A job's workspace after its build, every artifact made by a real tool with ``value``."""
    env = clean_env({"STRIPE_KEY": value, "NODE_PATH": str(ESBUILD_MODULES)})
    root.mkdir()
    # 1. A Node bundle with the value inlined by esbuild's define (a classic frontend leak).
    (root / "src").mkdir()
    (root / "src" / "index.js").write_text(
        "export function pay(amount) {\n"
        "  return fetch('/charge', {headers: {Authorization: 'Bearer ' + process.env.STRIPE_KEY},"
        " body: JSON.stringify({amount})});\n}\npay(1);\n"
    )
    (root / "build.js").write_text(BUILD_JS)
    _run(["node", "build.js"], root, env)
    # 2. A wheel and a source tarball whose package has the value baked into its config.
    pkg = root / "pkg"
    (pkg / "payments").mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "payments"\nversion = "1.0"\n'
    )
    _run(
        ["sh", "-c", 'printf "STRIPE_KEY = %s\\n" "$STRIPE_KEY" > payments/_config.py'],
        pkg,
        env,
    )
    (pkg / "payments" / "__init__.py").write_text("from ._config import STRIPE_KEY\n")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(root / "dist"),
            ".",
        ],
        pkg,
        env,
    )
    _run(["tar", "czf", str(root / "dist" / "payments-1.0.tar.gz"), "pkg"], root)
    shutil.rmtree(pkg)
    # 3. A Docker-style image: a .env copied into a layer (docker save layout).
    rootfs = root / "rootfs"
    (rootfs / "app").mkdir(parents=True)
    _run(["sh", "-c", 'printf "STRIPE_KEY=%s\\nDEBUG=0\\n" "$STRIPE_KEY" > app/.env'], rootfs, env)
    image = root / "image"
    (image / "blobs").mkdir(parents=True)
    _run(["tar", "czf", str(image / "blobs" / "layer.tar.gz"), "-C", str(rootfs), "."], root)
    (image / "manifest.json").write_text(json.dumps([{"Layers": ["blobs/layer.tar.gz"]}]))
    _run(["tar", "cf", str(root / "dist" / "image.tar"), "-C", str(image), "."], root)
    shutil.rmtree(rootfs)
    shutil.rmtree(image)
    # 4. A kubeconfig holding the value, base64-encoded into a Secret manifest (one line), and
    #    the same wrapped at 76 columns in an indented YAML block (`base64` without -w0).
    (root / "deploy").mkdir()
    kubeconfig = root / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG.replace("{token}", value))
    one_line = subprocess.run(
        ["base64", "-w0", str(kubeconfig)], capture_output=True, text=True, check=True
    ).stdout
    (root / "deploy" / "secret.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: kubeconfig}\n"
        f"data:\n  config: {one_line}\n"
    )
    wrapped = subprocess.run(
        ["base64", str(kubeconfig)], capture_output=True, text=True, check=True
    ).stdout
    block = "".join(f"    {line}\n" for line in wrapped.splitlines())
    (root / "deploy" / "values.yaml").write_text(f"kube:\n  config: |\n{block}")
    kubeconfig.unlink()
    # 5. The value wrapped across lines by `fold` (a log or report with a fixed width).
    _run(
        [
            "sh",
            "-c",
            'printf "charge failed for key %s (retry later)\\n" "$STRIPE_KEY"'
            " | fold -w 30 > report.txt",
        ],
        root,
        env,
    )
    return root


def scan(tree: Path) -> tuple[int, list[dict[str, object]], str]:
    env = {"JOBSECRETS_MASK_VARS": "STRIPE_KEY", "STRIPE_KEY": SECRET}
    result = jobsecrets(["scan", ".", "--format", "json"], cwd=tree, env=env, timeout=120)
    findings = json.loads(result.stdout)["findings"] if result.stdout.strip() else []
    return result.returncode, findings, result.stdout + result.stderr


def test_leaks_made_by_real_tools_are_found_and_named(tmp_path: Path) -> None:
    assert (ESBUILD_MODULES / ".bin" / "esbuild").exists(), "run ./scripts/bootstrap (esbuild)"
    tree = build_tree(tmp_path / "job", SECRET)
    code, findings, output = scan(tree)
    assert code == LeakFound.exit_code, output[-3000:] if SECRET not in output else "(hidden)"
    assert (SECRET[4:20] in output) is False, "the report must not show the value"
    places = {
        ("!".join([str(f["file"]), *map(str, f["members"])]), str(f["form"])) for f in findings
    }
    expected = {
        ("dist/app.min.js", "value"),
        ("dist/payments-1.0-py3-none-any.whl!payments/_config.py", "value"),
        ("dist/payments-1.0.tar.gz!pkg/payments/_config.py", "value"),
        # pip left setuptools' build/ directory in the package: it went into the tarball too.
        ("dist/payments-1.0.tar.gz!pkg/build/lib/payments/_config.py", "value"),
        ("dist/image.tar!./blobs/layer.tar.gz!./app/.env", "value"),
        ("deploy/secret.yaml", "base64"),
        # Wrapped at 76 columns: this value's base64 happens to sit inside one line.
        ("deploy/values.yaml", "base64"),
        ("report.txt", "value, split across lines"),
    }
    assert places == expected, sorted(places - expected) + sorted(expected - places)
    assert all(f["variables"] == ["STRIPE_KEY"] for f in findings)
    js = next(f for f in findings if f["file"] == "dist/app.min.js")
    assert isinstance(js["line"], int) and js["line"] >= 1
    # The source map holds the source, not the defined value: nothing to report there.
    assert not any(str(f["file"]).endswith(".map") for f in findings)


def test_the_same_tree_without_the_value_is_clean(tmp_path: Path) -> None:
    tree = build_tree(tmp_path / "job", OTHER)
    code, findings, output = scan(tree)
    assert (code, findings) == (0, []), output[-2000:]
    assert "0 finding(s), 0 error(s)" in output
