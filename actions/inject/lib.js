// Shared by main.js and post.js. No npm dependencies: only Node's standard library, so the action
// runs from a plain checkout of this repository with nothing to download but jobsecrets' own PyPI
// dependencies. Nothing here resolves secrets: it installs the jobsecrets CLI and spawns it.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn, spawnSync } = require('child_process');

// The repository checkout this action lives in (actions/inject/ -> the root): the jobsecrets
// package installed is the one at the same ref as the action itself.
const REPO_ROOT = path.resolve(__dirname, '..', '..');

/** The value of input `name` (GitHub keeps hyphens in INPUT_ names; accept underscores too). */
function getInput(name, fallback = '') {
  const upper = name.toUpperCase();
  const raw = process.env[`INPUT_${upper}`] ?? process.env[`INPUT_${upper.replace(/-/g, '_')}`];
  const value = (raw ?? '').trim();
  return value === '' ? fallback : value;
}

/** A boolean input, strict like @actions/core: a typo fails instead of silently meaning false. */
function getBooleanInput(name, fallback) {
  const value = getInput(name, fallback ? 'true' : 'false');
  if (['true', 'True', 'TRUE'].includes(value)) return true;
  if (['false', 'False', 'FALSE'].includes(value)) return false;
  throw new Error(`input '${name}' must be true or false, got '${value}'`);
}

/** Escape the data part of a workflow command (the runner unescapes %25, %0D, %0A). */
function escapeData(text) {
  return String(text).replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

function escapeProperty(text) {
  return escapeData(text).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

function command(name, message, properties = {}) {
  const props = Object.entries(properties)
    .map(([k, v]) => `${k}=${escapeProperty(v)}`)
    .join(',');
  process.stdout.write(`::${name}${props ? ' ' + props : ''}::${escapeData(message)}${os.EOL}`);
}

const error = (message, title = 'jobsecrets') => command('error', message, { title });
const warning = (message, title = 'jobsecrets') => command('warning', message, { title });

/** Remember `value` for the post step (it reads it back as $STATE_<name>). */
function saveState(name, value) {
  const file = process.env.GITHUB_STATE;
  if (!file) {
    command('save-state', String(value), { name });
    return;
  }
  const delimiter = `ghadelimiter_${crypto.randomUUID()}`;
  fs.appendFileSync(file, `${name}<<${delimiter}${os.EOL}${value}${os.EOL}${delimiter}${os.EOL}`);
}

const getState = (name) => process.env[`STATE_${name}`] || '';

/** The Python to build the tool's venv from: >= 3.10 (jobsecrets' own minimum). */
function findPython() {
  const candidates = [process.env.JOBSECRETS_PYTHON, 'python3', 'python'].filter(Boolean);
  // Also the version of the pip next to it, read from its metadata (importing pip, or running
  // `pip --version`, costs ~0.4 s): a cold install needs pip >= 23 for `pip --python`.
  const probe =
    'import sys;print("%d.%d" % sys.version_info[:2]);print(sys.version.split()[0]);' +
    'print(sys.executable);print(int(sys.version_info >= (3, 10)))\n' +
    'try:\n import importlib.metadata as m;print(m.version("pip"))\nexcept Exception:\n print("")';
  for (const candidate of candidates) {
    const result = spawnSync(candidate, ['-c', probe], { encoding: 'utf8' });
    if (result.status !== 0) continue;
    const [short, full, executable, ok, pip = ''] = result.stdout.trim().split('\n');
    // Spawn the interpreter itself from now on, not a launcher (a pyenv shim adds ~0.1 s a run).
    const command = executable && fs.existsSync(executable) ? executable : candidate;
    if (ok === '1') return { command, short, full, executable, pip: pip.trim() };
  }
  throw new Error(
    'jobsecrets needs Python 3.10 or newer on the runner (tried: ' +
      candidates.join(', ') +
      '); add actions/setup-python before this step or set JOBSECRETS_PYTHON'
  );
}

// jobsecrets' runtime dependencies pinned with hashes (scripts/lock-action-deps writes it).
const LOCK_FILE = path.join('actions', 'inject', 'requirements.lock');

/** sha256 of pyproject.toml's dependency list: the lock file's header names the one it was made for. */
function depsHash(dependencies) {
  return crypto.createHash('sha256').update(dependencies.join('\n')).digest('hex');
}

/**
 * The lock file's path if it exists and was generated from these dependencies, else null (with a
 * warning when it exists but is stale: the install then resolves from pyproject.toml, slower).
 */
function usableLock(root, project) {
  const file = path.join(root, LOCK_FILE);
  if (!fs.existsSync(file)) return null;
  const header = /^# dependencies-sha256: ([0-9a-f]{64})$/m.exec(fs.readFileSync(file, 'utf8'));
  if (header && header[1] === depsHash(project.dependencies)) return file;
  warning(
    `${LOCK_FILE} does not match pyproject.toml's dependencies (run scripts/lock-action-deps); ` +
      'resolving them instead'
  );
  return null;
}

/** Every file that makes up the installed tool, relative to the repository root, sorted. */
function sourceFiles(root) {
  const files = ['pyproject.toml'];
  const walk = (dir) => {
    for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      if (entry.name === '__pycache__' || entry.name.endsWith('.pyc')) continue;
      const rel = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(rel);
      else if (entry.isFile()) files.push(rel);
    }
  };
  walk(path.join('src', 'jobsecrets'));
  return files.sort();
}

/**
 * The cache key of an install: a hash of the package's files and the Python it runs on. The same
 * action ref always gives the same key (a moved branch gives a new one), so a runner's tool cache
 * can hold installs of several refs side by side and never serves a stale one.
 */
function installKey(root, python) {
  const hash = crypto.createHash('sha256');
  hash.update(`python ${python.full} ${python.executable}\n`);
  const files = sourceFiles(root);
  if (fs.existsSync(path.join(root, LOCK_FILE))) files.push(LOCK_FILE);
  for (const rel of files) {
    hash.update(`${rel}\n`);
    hash.update(fs.readFileSync(path.join(root, rel)));
  }
  return hash.digest('hex').slice(0, 20);
}

/** pyproject.toml's [project] dependencies and its entry points, read with a small parser. */
function readProject(root) {
  const text = fs.readFileSync(path.join(root, 'pyproject.toml'), 'utf8');
  const strings = (block) =>
    block
      .split('\n')
      .map((line) => line.replace(/#.*$/, ''))
      .join('\n')
      .match(/"[^"]*"/g)
      ?.map((s) => s.slice(1, -1)) ?? [];
  const version = /^version\s*=\s*"([^"]+)"/m.exec(text)?.[1];
  const deps = /^dependencies\s*=\s*\[([\s\S]*?)^\]/m.exec(text);
  if (!version || !deps) throw new Error(`cannot read version/dependencies from ${root}/pyproject.toml`);
  // Tables like [project.scripts] and [project.entry-points."group"]: `name = "module:attr"` lines.
  const entryPoints = {};
  let group = null;
  for (const line of text.split('\n')) {
    const header = /^\[(.+)\]\s*$/.exec(line.trim());
    if (header) {
      const name = header[1].trim();
      if (name === 'project.scripts') group = 'console_scripts';
      else if (name.startsWith('project.entry-points.')) {
        group = name.slice('project.entry-points.'.length).replace(/^"|"$/g, '');
      } else group = null;
      continue;
    }
    const item = /^([A-Za-z0-9_.-]+)\s*=\s*"([^"]+)"/.exec(line.trim());
    if (group && item) (entryPoints[group] ??= []).push(`${item[1]} = ${item[2]}`);
  }
  // [project.optional-dependencies]: `name = ["req", ...]` on one line each (extras the action may add).
  const optional = {};
  const extrasBlock = /^\[project\.optional-dependencies\]\s*$([\s\S]*?)(?=^\[)/m.exec(text);
  for (const m of (extrasBlock?.[1] ?? '').matchAll(/^([A-Za-z0-9_-]+)\s*=\s*\[([^\]\n]*)\]/gm)) {
    optional[m[1]] = strings(m[2]);
  }
  return { version, dependencies: strings(deps[1]), optional, entryPoints };
}

/** The requirements of the extras named in `extras` (e.g. ['github']); unknown names are an error. */
function extraRequirements(project, extras) {
  const requirements = [];
  for (const name of extras) {
    if (!(name in project.optional)) {
      throw new Error(`unknown extra '${name}' (known: ${Object.keys(project.optional).sort().join(', ')})`);
    }
    requirements.push(...project.optional[name]);
  }
  return requirements;
}

/** Run a command with its output going to this step's log; resolve with the exit code. */
function run(cmd, args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: 'inherit', ...options });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

/** Like run(), but stderr is also kept (still passed through): resolve with { code, stderr }. */
function runKeepingStderr(cmd, args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'pipe'], ...options });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      process.stderr.write(chunk);
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stderr }));
  });
}

/**
 * Copy the package into site-packages and write its .dist-info by hand. This is what `pip install`
 * of the checkout would leave behind, without building a wheel in an isolated environment first
 * (2-4 s, most of a cold install). The metadata importlib reads is all there: the entry points
 * (backends are found through them) and the version.
 */
function installSource(root, sitePackages, project) {
  fs.cpSync(path.join(root, 'src', 'jobsecrets'), path.join(sitePackages, 'jobsecrets'), {
    recursive: true,
    filter: (src) => !src.endsWith('__pycache__') && !src.endsWith('.pyc'),
  });
  const distInfo = path.join(sitePackages, `jobsecrets-${project.version}.dist-info`);
  fs.mkdirSync(distInfo, { recursive: true });
  const requires = project.dependencies.map((d) => `Requires-Dist: ${d}`).join('\n');
  fs.writeFileSync(
    path.join(distInfo, 'METADATA'),
    `Metadata-Version: 2.1\nName: jobsecrets\nVersion: ${project.version}\n${requires}\n`
  );
  fs.writeFileSync(path.join(distInfo, 'INSTALLER'), 'jobsecrets-action\n');
  const groups = Object.entries(project.entryPoints)
    .map(([group, lines]) => `[${group}]\n${lines.join('\n')}\n`)
    .join('\n');
  fs.writeFileSync(path.join(distInfo, 'entry_points.txt'), groups);
}

/**
 * Make sure the jobsecrets CLI for this ref is installed; return the venv's python.
 *
 * Installs go to $JOBSECRETS_TOOL_CACHE or $RUNNER_TOOL_CACHE/jobsecrets, in <version>-<key> (a
 * self-hosted runner keeps its tool cache between jobs; on hosted runners actions/cache can save
 * the directory).
 * They are built in a temporary directory and renamed into place when complete, so a job that was
 * cancelled mid-install, or two jobs installing at once, never leave a half-built venv in use.
 * The CLI is started as `<venv>/bin/python -m jobsecrets`, which works from any directory the venv
 * was renamed to (console-script shebangs would still name the temporary one).
 */
async function ensureInstalled(extras = []) {
  const started = Date.now();
  const python = findPython();
  const project = readProject(REPO_ROOT);
  // Checked before anything is installed; part of the cache key, so an install without the
  // extra is never reused for a step that needs it.
  const extraDeps = extraRequirements(project, extras);
  // $JOBSECRETS_TOOL_CACHE: a directory of the user's choice (a persistent volume, or a path
  // actions/cache saves); default: the runner's tool cache.
  const cacheRoot =
    process.env.JOBSECRETS_TOOL_CACHE ||
    path.join(process.env.RUNNER_TOOL_CACHE || path.join(os.homedir(), '.cache'), 'jobsecrets');
  const suffix = extras.length ? `-${[...extras].sort().join('+')}` : '';
  const venv = path.join(cacheRoot, `${project.version}-${installKey(REPO_ROOT, python)}${suffix}`);
  const venvPython = path.join(venv, 'bin', 'python');
  if (fs.existsSync(path.join(venv, '.jobsecrets-complete'))) {
    return { venvPython, venv, cached: true, seconds: (Date.now() - started) / 1000 };
  }
  fs.mkdirSync(cacheRoot, { recursive: true });
  const tmp = `${venv}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  try {
    // Without pip the venv takes ~0.1 s; the host's pip installs into it with --python.
    let pip = [python.command, '-m', 'pip', '--python', path.join(tmp, 'bin', 'python')];
    if ((await run(python.command, ['-m', 'venv', '--without-pip', tmp])) !== 0) {
      throw new Error(`'${python.command} -m venv' failed`);
    }
    const pipVersion = /^(\d+)\./.exec(python.pip);
    if (!pipVersion || Number(pipVersion[1]) < 23) {
      // No usable pip next to the host Python (--python needs pip >= 22.3): bootstrap one.
      fs.rmSync(tmp, { recursive: true, force: true });
      if ((await run(python.command, ['-m', 'venv', tmp])) !== 0) {
        throw new Error(`'${python.command} -m venv' failed`);
      }
      pip = [path.join(tmp, 'bin', 'python'), '-m', 'pip'];
    }
    const pipInstall = (args) =>
      runKeepingStderr(
        pip[0],
        [
          ...pip.slice(1),
          'install',
          '--quiet',
          '--no-input',
          '--disable-pip-version-check',
          '--progress-bar=off',
          // Modules are compiled on first import instead (the CLI writes the .pyc files into
          // this install, see runCli): a job imports a small part of botocore.
          '--no-compile',
          ...args,
        ],
        { env: { ...process.env, PIP_REQUIRE_VIRTUALENV: '0' } }
      );
    const lock = usableLock(REPO_ROOT, project);
    let result = { code: 1, stderr: '' };
    if (lock) {
      // Exact versions and hashes: no resolver. Wheels only: a runner no locked wheel fits
      // resolves instead.
      result = await pipInstall(['--no-deps', '--require-hashes', '--only-binary=:all:', '-r', lock]);
      if (/DO NOT MATCH THE HASHES/.test(result.stderr)) {
        // Not a runner the lock does not fit: what was downloaded is not what was locked.
        throw new Error(`a download did not match its hash in ${LOCK_FILE}; not installing`);
      }
      if (result.code !== 0) {
        warning(
          `installing from ${LOCK_FILE} failed (pip exit ${result.code}); resolving from pyproject.toml`
        );
      }
    }
    if (result.code !== 0) result = await pipInstall(project.dependencies);
    const code = result.code;
    if (code !== 0) throw new Error(`installing jobsecrets' dependencies failed (pip exit ${code})`);
    if (extraDeps.length) {
      // Not in the lock (it pins the base dependencies only): resolved by pip.
      const extra = await pipInstall(extraDeps);
      if (extra.code !== 0) {
        throw new Error(`installing the extras ${extras.join(', ')} failed (pip exit ${extra.code})`);
      }
    }
    installSource(REPO_ROOT, path.join(tmp, 'lib', `python${python.short}`, 'site-packages'), project);
    fs.writeFileSync(path.join(tmp, '.jobsecrets-complete'), `${new Date().toISOString()}\n`);
    try {
      fs.renameSync(tmp, venv);
    } catch (err) {
      // Another job finished the same install first: use theirs.
      if (!fs.existsSync(path.join(venv, '.jobsecrets-complete'))) throw err;
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  return { venvPython, venv, cached: false, seconds: (Date.now() - started) / 1000 };
}

/**
 * Run `python -m jobsecrets ARGS`. stdout is inherited: the runner must read the ::add-mask::
 * commands directly. stderr is passed through line by line, and error lines are also returned so
 * the caller can raise an annotation (the CLI never puts a value in a message).
 */
function runCli(venvPython, args, options = {}) {
  // The install is private to this action, and it is installed without .pyc files: let the
  // first run write them (atomically, next to the sources), or every later run compiles
  // hvac/boto3/botocore again (~0.5 s) on a runner that sets PYTHONDONTWRITEBYTECODE.
  const env = { ...(options.env ?? process.env) };
  delete env.PYTHONDONTWRITEBYTECODE;
  return new Promise((resolve, reject) => {
    const child = spawn(venvPython, ['-m', 'jobsecrets', ...args], {
      stdio: ['ignore', 'inherit', 'pipe'],
      ...options,
      env,
    });
    // A cancelled step signals this node process only, and node's default is to exit at once:
    // pass the signal on and wait, so the CLI revokes what it obtained instead of running on
    // unseen after the step (and the post step) ended.
    const forward = (signal) => child.kill(signal);
    const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    for (const signal of signals) process.on(signal, forward);
    // The whole error for the annotation: its first line, every indented line after it (one per
    // failed variable) and the hint; not just the lines that start with "jobsecrets: error:".
    const errors = [];
    let inError = false;
    const collect = (line) => {
      if (/^jobsecrets: (error|hint):/.test(line)) {
        inError = true;
        errors.push(line);
      } else if (inError && /^\s+\S/.test(line)) {
        errors.push(line);
      } else {
        inError = false;
      }
    };
    let pending = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      process.stderr.write(chunk);
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop();
      for (const line of lines) collect(line);
    });
    child.on('error', (err) => {
      for (const name of signals) process.removeListener(name, forward);
      reject(err);
    });
    child.on('close', (code, signal) => {
      for (const name of signals) process.removeListener(name, forward);
      if (pending) collect(pending);
      resolve({ code: code ?? (signal ? 128 : 1), signal, errors });
    });
  });
}

/**
 * Put a `jobsecrets` command on PATH for the job's later steps ($GITHUB_PATH): a two-line shell
 * script that runs this install, so `jobsecrets plan --check` (the hint of a failed step) or
 * `jobsecrets run -- CMD` work in a later `run:` step as written. Returns the directory.
 */
function addToPath(venvPython) {
  const dir = fs.mkdtempSync(path.join(process.env.RUNNER_TEMP || os.tmpdir(), 'jobsecrets-bin-'));
  const script = path.join(dir, 'jobsecrets');
  const quoted = `'${venvPython.replace(/'/g, `'\\''`)}'`;
  fs.writeFileSync(script, `#!/bin/sh\nexec ${quoted} -m jobsecrets "$@"\n`, { mode: 0o755 });
  if (process.env.GITHUB_PATH) fs.appendFileSync(process.env.GITHUB_PATH, `${dir}\n`);
  return dir;
}

/**
 * `install:` other than `source`: pip installs a requirement into a fresh virtualenv of this step
 * (under $RUNNER_TEMP): `pypi` is `jobsecrets==<the version of this action's ref>`; anything else
 * is given to pip as it is, a path or wheel relative to the workspace, or `git+https://...@ref`.
 * Passed to pip as one argv element, never through a shell.
 */
async function installRequirement(install, extras = []) {
  const started = Date.now();
  const python = findPython();
  const project = readProject(REPO_ROOT);
  let requirement = install;
  // Extras (e.g. github) go with the PyPI requirement; any other requirement names its own.
  const withExtras = extras.length ? `[${[...extras].sort().join(',')}]` : '';
  if (install === 'pypi') requirement = `jobsecrets${withExtras}==${project.version}`;
  else if (!/^[a-z+]+:\/\//.test(install)) {
    requirement = path.resolve(process.env.GITHUB_WORKSPACE || process.cwd(), install);
  }
  const venv = fs.mkdtempSync(path.join(process.env.RUNNER_TEMP || os.tmpdir(), 'jobsecrets-venv-'));
  if ((await run(python.command, ['-m', 'venv', venv])) !== 0) {
    throw new Error(`'${python.command} -m venv' failed`);
  }
  const venvPython = path.join(venv, 'bin', 'python');
  const args = ['-m', 'pip', 'install', '--quiet', '--no-input', '--disable-pip-version-check', requirement];
  const code = await run(venvPython, args);
  if (code !== 0) {
    throw new Error(
      `pip could not install ${requirement} (exit ${code})` +
        (install === 'pypi' ? '; until that version is on PyPI, leave install at its default (source)' : '')
    );
  }
  return { venvPython, venv, cached: false, seconds: (Date.now() - started) / 1000 };
}

module.exports = {
  LOCK_FILE,
  addToPath,
  installRequirement,
  REPO_ROOT,
  command,
  depsHash,
  ensureInstalled,
  error,
  escapeData,
  getBooleanInput,
  getInput,
  getState,
  installKey,
  readProject,
  runCli,
  saveState,
  warning,
};
