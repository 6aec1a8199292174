// Shared by main.js and post.js. No npm dependencies: only Node's standard library, so the action
// runs from a plain checkout of this repository with nothing to download but jobsecrets' own PyPI
// dependencies. Nothing here resolves secrets: it installs the jobsecrets CLI and spawns it.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn, spawnSync } = require('child_process');
const actionsCache = require('./cache');

// The repository checkout this action lives in (actions/inject/ -> the root): the jobsecrets
// package installed is the one at the same ref as the action itself.
const REPO_ROOT = path.resolve(__dirname, '..', '..');

// Every Python this action starts runs isolated (-I): `python -m X` and `python -c` put the
// working directory (the workspace, or the user's working-directory) first on sys.path, so a
// repository file yaml.py, click.py, pip/ or jobsecrets/__init__.py would be imported instead of
// the real module, with the job's runtime and OIDC request tokens in its environment. -I keeps
// the working directory and the user's site-packages off sys.path on every Python the action
// supports (-P and PYTHONSAFEPATH exist only from 3.11), and ignores PYTHON* variables: what the
// action needs of those is passed as flags (-B, -u, see runCli).
const ISOLATED = '-I';

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

/**
 * The version of the pip next to `python`, read from its metadata (importing pip, or running
 * `pip --version`, costs ~0.4 s), or '' without one: a cold install needs pip >= 23 for
 * `pip --python`.
 */
function pipVersion(python) {
  const probe =
    'try:\n import importlib.metadata as m;print(m.version("pip"))\nexcept Exception:\n print("")';
  const result = spawnSync(python.command, [ISOLATED, '-c', probe], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : '';
}

/** The Python to build the tool's venv from: >= 3.10 (jobsecrets' own minimum). */
function findPython(env = process.env) {
  const candidates = [env.JOBSECRETS_PYTHON, 'python3', 'python'].filter(Boolean);
  // -S: no site import, which nothing here needs (~0.05 s of every step, a reused or restored
  // install included); the pip version, which only an install needs, is read by pipVersion.
  const probe =
    'import sys;print("%d.%d" % sys.version_info[:2]);print(sys.version.split()[0]);' +
    'print(sys.executable);print(int(sys.version_info >= (3, 10)))';
  for (const candidate of candidates) {
    const result = spawnSync(candidate, [ISOLATED, '-S', '-c', probe], { encoding: 'utf8', env });
    if (result.status !== 0) continue;
    const [short, full, executable, ok] = result.stdout.trim().split('\n');
    // Spawn the interpreter itself from now on, not a launcher (a pyenv shim adds ~0.1 s a run).
    const command = executable && fs.existsSync(executable) ? executable : candidate;
    if (ok === '1') return { command, short, full, executable };
  }
  throw new Error(
    'jobsecrets needs Python 3.10 or newer on the runner (tried: ' +
      candidates.join(', ') +
      '); add actions/setup-python before this step or set JOBSECRETS_PYTHON'
  );
}

/**
 * The identity of the file `executable` names (symlinks followed): changes when the interpreter
 * there is replaced or upgraded in place. Null when it is gone.
 */
function fileSignature(executable) {
  try {
    const st = fs.statSync(executable);
    return st.isFile() ? `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}` : null;
  } catch {
    return null;
  }
}

const PYTHON_MEMO = 'python.json';

/**
 * The text of `file` if it is a regular file of at most `limit` bytes, else null. The tool cache
 * of a self-hosted runner outlives its jobs: a symlink there is not followed (`follow` to allow
 * one), and a FIFO or a device (which would block the read, or never end) is not read.
 */
function readSmallFile(file, limit = 64 * 1024, { follow = false } = {}) {
  const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
  let fd;
  try {
    fd = fs.openSync(file, O_RDONLY | O_NONBLOCK | (follow ? 0 : O_NOFOLLOW));
  } catch {
    return null;
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.size > limit) return null;
    const buffer = Buffer.alloc(st.size);
    const got = fs.readSync(fd, buffer, 0, st.size, 0);
    return buffer.subarray(0, got).toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * findPython's answer, remembered in the tool cache `cacheRoot` for the next step on this runner.
 *
 * The probe is a process: ~15 ms for /usr/bin/python3, 80-100 ms where `python3` is a pyenv shim
 * (a shell script that runs pyenv), which a self-hosted runner paid on every step. The memo is
 * used only while the environment that chose the interpreter is the same (JOBSECRETS_PYTHON,
 * PATH, PYENV_VERSION) and the interpreter's file is the very one probed (device, inode, size,
 * mtime): an interpreter replaced or upgraded in place is probed again. Not the working
 * directory (act gives every run a new one): a .python-version that a later commit changes is
 * not followed, which costs nothing, as the venv is the tool's own and any Python >= 3.10 runs
 * it. Anything unreadable or odd in the memo: probe again and rewrite it.
 */
function findPythonMemo(cacheRoot, env = process.env) {
  const file = path.join(cacheRoot, PYTHON_MEMO);
  const chosenBy = [env.JOBSECRETS_PYTHON || '', env.PATH || '', env.PYENV_VERSION || ''];
  try {
    const memo = JSON.parse(readSmallFile(file) ?? 'null');
    const py = memo && memo.python;
    const valid =
      memo &&
      JSON.stringify(memo.chosenBy) === JSON.stringify(chosenBy) &&
      py &&
      ['command', 'short', 'full', 'executable'].every((k) => typeof py[k] === 'string') &&
      /^3\.(1\d|[2-9]\d)$/.test(py.short) &&
      path.isAbsolute(py.command) &&
      memo.signature === fileSignature(py.executable);
    if (valid) return { command: py.command, short: py.short, full: py.full, executable: py.executable };
  } catch {
    // No memo yet, or one this code cannot read: probe.
  }
  const python = findPython(env);
  const signature = fileSignature(python.executable);
  if (signature && path.isAbsolute(python.command)) {
    // Best effort: a memo that cannot be written only costs the next step a probe. Written whole
    // and renamed, so a concurrent step reads the old memo or the new one, never half of one.
    const tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
    try {
      fs.mkdirSync(cacheRoot, { recursive: true });
      const text = JSON.stringify({ chosenBy, python, signature }) + '\n';
      fs.writeFileSync(tmp, text, { mode: 0o644, flag: 'wx' }); // a new file, never one planted there
      fs.renameSync(tmp, file); // replaces a symlink or file at `file` itself, follows nothing
    } catch {
      // Read-only or full tool cache: nothing lost (and no half-written memo left behind).
      try {
        fs.rmSync(tmp, { force: true });
      } catch {
        // the tool cache is not even a directory
      }
    }
  }
  return python;
}

// jobsecrets' runtime dependencies pinned with hashes, one file per group (scripts/lock-action-deps
// writes them): core.lock always, plus <type>.lock for each backend type the spec uses.
const LOCK_DIR = path.join('actions', 'inject', 'locks');
// Every locked wheel's PyPI address (scripts/lock-action-deps writes it with the locks).
const LINKS_PAGE = path.join(LOCK_DIR, 'pypi-links.html');
// pip settings that name where packages come from: any of them, and pip is not left to PyPI alone.
const PIP_SOURCE_ENV = ['PIP_INDEX_URL', 'PIP_EXTRA_INDEX_URL', 'PIP_FIND_LINKS', 'PIP_NO_INDEX', 'PIP_INDEX'];
const PIP_SOURCE_KEY = /^\s*(index-url|extra-index-url|find-links|no-index|index)\s*[=:]/m;

// What `pip install jobsecrets` brings (its dependencies without extras): installed when the spec
// cannot be read with certainty, or names a backend type that has no lock of its own.
const BASE_GROUPS = ['core', 'vault', 'aws'];
// Backend types that need nothing beyond core (the testing backend of jobsecrets.testing).
const CORE_TYPES = ['fake'];
// Lock groups of commands no step of this action runs (`jobsecrets import`: ruamel.yaml): never
// installed here, and no backend type (a backend named `import` must not select them).
const COMMAND_GROUPS = ['import'];
// Other ways a reference names a backend type without its name: vals' `ref+awssecrets://`.
const TYPE_ALIASES = { aws: ['awssecrets'] };
// Keys whose text is not where the scanner looks (see specGroups): an explicit key `? KEY` (at a
// line's start, after `- `, or in a flow collection), and an alias used as a key (`*k :`). Either
// may be harmless; the scanner cannot tell, so the base install.
const UNREADABLE_KEYS = [
  /(?:^|[[{,])[ \t\ufeff]*(?:-[ \t]+)*\?(?:[ \t\r\n]|$)/m,
  /(?:^|[\s[{,?])\*[^\s[\]{},]+?[ \t]*:(?=[\s,[\]{}]|$)/m,
];
// Larger specs are not scanned (jobsecrets' own limit is lower): the base install is used.
const MAX_SPEC_BYTES = 4 * 1024 * 1024;

/** The lock groups this checkout has: ['aws', 'core', 'github', 'import', 'vault']. */
function lockGroups(root) {
  const dir = path.join(root, LOCK_DIR);
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((name) => /^[a-z0-9-]+\.lock$/.test(name))
    .map((name) => name.slice(0, -'.lock'.length))
    .sort();
}

/**
 * The lock groups a spec needs, from its text.
 *
 * No YAML parser here (the action has no npm dependencies, and parsing the spec in Python would
 * need PyYAML installed first: a second pip run, ~1 s more measured). Instead an over-estimate that
 * does not depend on the layout (block or flow style, quoting, comments): a type is needed when
 * the text has `type: T` (a declared backend), or `T:` anywhere (a backend named like its type,
 * which needs no `type:`, or a reference `T:path` to the implicit backend of that type), or a vals
 * form `ref+T://`. A word `type` followed by a colon whose value is not a plain name, or names a
 * type with no lock here (a third party's backend), adds the base install (what `pip install
 * jobsecrets` has); so do the YAML forms that can make a key `type` (or a backend's name) out of
 * other text: an explicit key (`? type` with `: aws` on the next line), an alias as a key (`*k :
 * aws`), a double-quoted key with an escape (`"t\x79pe": aws`). Installing a group too many only
 * costs time; one too few takes a form none of these catch, and then the CLI fails naming the
 * missing module and the extra that has it.
 */
function specGroups(text, locked) {
  const groups = new Set(['core']);
  const types = locked.filter((g) => g !== 'core' && !COMMAND_GROUPS.includes(g));
  const escape = (word) => word.replace(/[-]/g, '\\-');
  let certain = true;
  // `type` as a key (maybe quoted) and the start of what follows its colon on the same line,
  // captured in a lookahead (so `{a: {type: vault}, b: {type: aws}}` gives both) and bounded
  // (a long flow-style line with many `type:` stays linear).
  const typeKey = /(?:^|[\s{,\["'])type["']?[ \t]*:(?=([^\n]{0,200}))/g;
  // A double-quoted key (its text captured): with an escape it may spell anything.
  const escapedKey = /"((?:[^"\\]|\\[\s\S])*)"[ \t]*:/g;
  const plainName = /^[ \t]*(?:!!str[ \t]+)?(["']?)([A-Za-z][A-Za-z0-9_-]*)\1[ \t]*(?:$|[,}#\s])/;
  if (UNREADABLE_KEYS.some((form) => form.test(text))) certain = false;
  for (const match of text.matchAll(escapedKey)) {
    if (match[1].includes('\\')) certain = false;
  }
  for (const match of text.matchAll(typeKey)) {
    const value = plainName.exec(match[1]);
    if (value && types.includes(value[2])) groups.add(value[2]);
    else if (!value || !CORE_TYPES.includes(value[2])) certain = false;
  }
  for (const type of types) {
    const words = [type, ...(TYPE_ALIASES[type] ?? [])].map(escape).join('|');
    if (new RegExp(`(?:^|[^A-Za-z0-9_-])(?:${words})["']?[ \\t]*:`).test(text)) groups.add(type);
  }
  if (!certain) for (const group of BASE_GROUPS) groups.add(group);
  return [...groups].sort();
}

/** The lock groups for the spec at `specPath` (see specGroups); null (the base install) when it
 * cannot be read. */
function specGroupsOf(specPath, locked) {
  // The spec comes from the repository, which may hold a symlink to /dev/zero or a FIFO's
  // path: stat() says size 0 for both, and readFileSync would read without end or wait for
  // ever. A symlink to a regular file is followed, as the CLI follows it.
  const text = readSmallFile(specPath, MAX_SPEC_BYTES, { follow: true });
  // null: the base install; the CLI then reports a missing or unreadable spec.
  return text === null ? null : specGroups(text, locked);
}

/** What the locks are made from: pyproject.toml's dependencies, then each locked extra's. */
function lockInputs(project, locked) {
  const inputs = [...project.dependencies];
  for (const extra of locked.filter((g) => g in project.optional).sort()) {
    inputs.push(...project.optional[extra].map((req) => `[${extra}] ${req}`));
  }
  return inputs;
}

/** sha256 of the lock inputs: each lock file's header names the one it was made from. */
function depsHash(inputs) {
  return crypto.createHash('sha256').update(inputs.join('\n')).digest('hex');
}

/**
 * The lock files of `groups` if they all exist and were generated from pyproject.toml as it is,
 * else null (with a warning: the install then resolves from pyproject.toml, slower).
 */
function usableLocks(root, project, groups) {
  const locked = lockGroups(root);
  const expected = depsHash(lockInputs(project, locked));
  const files = groups.map((g) => path.join(root, LOCK_DIR, `${g}.lock`));
  const ok = files.every((file) => {
    if (!fs.existsSync(file)) return false;
    const header = /^# dependencies-sha256: ([0-9a-f]{64})$/m.exec(fs.readFileSync(file, 'utf8'));
    return header !== null && header[1] === expected;
  });
  if (ok) return files;
  warning(
    `${LOCK_DIR} does not match pyproject.toml's dependencies (run scripts/lock-action-deps); ` +
      'resolving them instead'
  );
  return null;
}

/**
 * The configuration files pip reads on this runner (pip's documented places on Linux and macOS):
 * global (/etc/pip.conf, $XDG_CONFIG_DIRS), user ($XDG_CONFIG_HOME, ~/.config, ~/.pip, macOS's
 * Application Support) and site (the prefix of the interpreter pip runs under, `python`).
 */
function pipConfigFiles(env = process.env, python = null) {
  const home = env.HOME || os.homedir();
  const files = ['/etc/pip.conf'];
  for (const dir of (env.XDG_CONFIG_DIRS || '/etc/xdg').split(':').filter(Boolean)) {
    files.push(path.join(dir, 'pip', 'pip.conf'));
  }
  files.push(path.join(env.XDG_CONFIG_HOME || path.join(home, '.config'), 'pip', 'pip.conf'));
  files.push(path.join(home, '.pip', 'pip.conf'));
  files.push(path.join(home, 'Library', 'Application Support', 'pip', 'pip.conf'));
  if (python?.executable) {
    // sys.prefix is the directory above bin/ (a venv's pyvenv.cfg home aside, which pip ignores).
    for (const exe of new Set([python.executable, safeRealpath(python.executable)])) {
      if (exe) files.push(path.join(path.dirname(path.dirname(exe)), 'pip.conf'));
    }
  }
  return files;
}

function safeRealpath(file) {
  try {
    return fs.realpathSync(file);
  } catch {
    return null;
  }
}

/**
 * Whether pip, run in `env`, takes packages from PyPI and nowhere else: no index, extra index,
 * find-links or no-index in the environment or in any config file it reads. Only then are the
 * locked wheels fetched from their PyPI addresses (LINKS_PAGE): a runner that sets an index (a
 * mirror, a proxy, an air-gapped copy) keeps it. A config file that exists but cannot be read,
 * or is not a regular file, counts as setting one. PIP_CONFIG_FILE=/dev/null (pip's own way to read no file) reads none.
 */
function pipUsesPyPIOnly(env = process.env, configFiles = pipConfigFiles(env)) {
  if (PIP_SOURCE_ENV.some((name) => env[name])) return false;
  if (env.PIP_CONFIG_FILE) {
    if (env.PIP_CONFIG_FILE === os.devNull) return true;
    configFiles = [...configFiles, env.PIP_CONFIG_FILE];
  }
  const { O_RDONLY, O_NONBLOCK } = fs.constants;
  for (const file of configFiles) {
    let fd;
    try {
      // O_NONBLOCK: a FIFO where a config file should be is not waited on (it counts as unreadable).
      fd = fs.openSync(file, O_RDONLY | O_NONBLOCK);
    } catch (err) {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') continue;
      return false;
    }
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile() || st.size > 1024 * 1024) return false;
      if (PIP_SOURCE_KEY.test(fs.readFileSync(fd, 'utf8'))) return false;
    } catch {
      return false;
    } finally {
      fs.closeSync(fd);
    }
  }
  return true;
}

/** LINKS_PAGE when it exists and was made with the locks from pyproject.toml as it is; else null. */
function usableLinksPage(root, project) {
  const file = path.join(root, LINKS_PAGE);
  const text = readSmallFile(file, 1024 * 1024);
  if (text === null) return null;
  const header = /^\s*dependencies-sha256: ([0-9a-f]{64})$/m.exec(text);
  const expected = depsHash(lockInputs(project, lockGroups(root)));
  return header !== null && header[1] === expected ? file : null;
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

// The file that builds an install (ensureInstalled and its helpers): part of the install's key.
const INSTALLER = path.join('actions', 'inject', 'lib.js');

/**
 * The cache key of an install: a hash of the package's files, its locks, the code that builds it
 * (this file: a release that changes only how an install is made must not reuse installs made the
 * old way) and the Python it runs on. The same action ref always gives the same key (a moved
 * branch gives a new one), so a runner's tool cache can hold installs of several refs side by
 * side and never serves a stale one.
 */
function installKey(root, python) {
  const hash = crypto.createHash('sha256');
  hash.update(`python ${python.full} ${python.executable}\n`);
  const files = sourceFiles(root);
  files.push(...lockGroups(root).map((g) => path.join(LOCK_DIR, `${g}.lock`)));
  files.push(INSTALLER);
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

// A GitHub-hosted runner's install lives in memory: the machine, and the install with it, is thrown
// away after the job, and on its disk creating the install's files is most of a restore from the
// Actions cache (Vault + AWS, ~2,400 files: 3.3-4.1 s onto this VM's disk against 0.6 s onto tmpfs)
// and much of pip's cold install (docs/benchmarks.md).
const MEMORY_FS = '/dev/shm';
const TMPFS_MAGIC = 0x01021994;
// Less free than this (a container job's /dev/shm: 64 MiB by default), and the disk it is. An
// install with every backend takes ~40 MiB, and pip's downloads and unpacking as much again.
const MEMORY_MIN_FREE = 1024 * 1024 * 1024;

/**
 * This user's directory in memory for installs (`/dev/shm/jobsecrets-<uid>`), or null: `base` is
 * not a tmpfs with MEMORY_MIN_FREE free, or the directory there is not this user's alone (made by
 * another user, a link, open to others: `base` is shared by every user of the machine, so such a
 * directory is left as it is, mode and all, and the install goes to the disk).
 */
function memoryRoot(base = MEMORY_FS) {
  if (typeof process.getuid !== 'function' || typeof fs.statfsSync !== 'function') return null;
  try {
    if (!fs.lstatSync(base).isDirectory()) return null;
    const info = fs.statfsSync(base);
    if (info.type !== TMPFS_MAGIC || info.bavail * info.bsize < MEMORY_MIN_FREE) return null;
    const dir = path.join(base, `jobsecrets-${process.getuid()}`);
    try {
      fs.mkdirSync(dir, { mode: 0o700 });
    } catch (err) {
      if (err.code !== 'EEXIST') return null;
    }
    const own = fs.lstatSync(dir);
    if (!own.isDirectory() || own.uid !== process.getuid() || (own.mode & 0o077) !== 0) return null;
    return dir;
  } catch {
    return null; // no such place, or no statfs: the disk
  }
}

/**
 * Where installs go: $JOBSECRETS_TOOL_CACHE (a directory of the user's choice: a persistent volume,
 * or a path actions/cache saves); on a GitHub-hosted runner, memory (memoryRoot) where there is
 * enough of it; else $RUNNER_TOOL_CACHE/jobsecrets, which a self-hosted runner keeps between jobs.
 */
function toolCacheRoot(env = process.env, memory = memoryRoot) {
  if (env.JOBSECRETS_TOOL_CACHE) return env.JOBSECRETS_TOOL_CACHE;
  if (env.RUNNER_ENVIRONMENT === 'github-hosted') {
    const dir = memory();
    if (dir) return dir;
  }
  return path.join(env.RUNNER_TOOL_CACHE || path.join(os.homedir(), '.cache'), 'jobsecrets');
}

/**
 * For a step that is about to look its install up in the Actions cache (input `cache`, a cache
 * service, and no complete install in the tool cache: a fresh runner), open the connection to the
 * cache now, while the step reads the spec, finds Python and hashes the install's files: the
 * lookup then starts on an open connection (one round trip less; two with TLS). A runner with an
 * install (of this ref or another) opens nothing: it most likely reuses one.
 */
function openCacheAhead(useCache, env = process.env) {
  if (!useCache) return;
  const svc = actionsCache.service(env);
  if (!svc) return;
  const root = toolCacheRoot(env);
  let installed = false;
  try {
    installed = fs
      .readdirSync(root)
      .some((dir) => fs.existsSync(path.join(root, dir, '.jobsecrets-complete')));
  } catch {
    // No tool cache yet: nothing installed.
  }
  if (!installed) actionsCache.preconnect(svc);
}

/**
 * Make sure the jobsecrets CLI for this ref is installed with the dependencies of `groups` (lock
 * groups: 'core' and backend types, see specGroups; null for the base install) and `extras`;
 * return the venv's python. With `cache` (the input), an install not on this runner is first
 * looked up in the Actions cache, and a fresh one comes back with `saveAs` for saveInstall.
 *
 * Installs go to toolCacheRoot() ($JOBSECRETS_TOOL_CACHE, memory on a GitHub-hosted runner, or
 * $RUNNER_TOOL_CACHE/jobsecrets), in <version>-<key>-<groups> (a self-hosted runner keeps its tool
 * cache between jobs). An install of
 * this ref with more groups is reused too: a scan step (core only) after an inject step, or a
 * Vault-only step after a Vault+AWS one, install nothing.
 * They are built in a temporary directory and renamed into place when complete, so a job that was
 * cancelled mid-install, or two jobs installing at once, never leave a half-built venv in use.
 * The CLI is started as `<venv>/bin/python -I -m jobsecrets` (runCli), which works from any
 * directory the venv was renamed to (console-script shebangs would still name the temporary one).
 */
async function ensureInstalled(groups = null, extras = [], { cache = false } = {}) {
  const started = Date.now();
  const cacheRoot = toolCacheRoot();
  const python = findPythonMemo(cacheRoot);
  const project = readProject(REPO_ROOT);
  const locked = lockGroups(REPO_ROOT);
  // Extras with a lock of their own (github) are lock groups; the others (zstd) pip resolves.
  const wanted = new Set(groups ?? BASE_GROUPS);
  wanted.add('core');
  const pipExtras = [];
  for (const extra of extras) {
    if (locked.includes(extra) && extra in project.optional) wanted.add(extra);
    else pipExtras.push(extra);
  }
  // Checked before anything is installed; part of the directory name, so an install without the
  // extra is never reused for a step that needs it.
  const extraDeps = extraRequirements(project, pipExtras);
  const prefix = `${project.version}-${installKey(REPO_ROOT, python)}-`;
  const label = [...wanted, ...pipExtras.map((e) => `extra.${e}`)].sort().join('+');
  const reusable = reusableInstall(cacheRoot, prefix, label);
  if (reusable) {
    const venvPython = path.join(reusable, 'bin', 'python');
    const seconds = (Date.now() - started) / 1000;
    return { venvPython, venv: reusable, cached: true, groups: [...wanted].sort(), seconds };
  }
  const venv = path.join(cacheRoot, prefix + label);
  const venvPython = path.join(venv, 'bin', 'python');
  // The Actions cache (input `cache`): what a later job on a fresh hosted runner restores instead
  // of installing. The key names everything the install depends on: this ref's package files, the
  // locks and the Python (all in `prefix`), the groups (`label`), OS and architecture, and the
  // runner image where the runner says which (ImageOS: the same Python path can be another build).
  const svc = cache ? actionsCache.service() : null;
  const saveAs = svc
    ? {
        svc,
        root: cacheRoot,
        name: prefix + label,
        key: ['jobsecrets', prefix + label, process.platform, process.arch, process.env.ImageOS]
          .filter(Boolean)
          .join('-'),
      }
    : null;
  if (saveAs) {
    try {
      const restored = await actionsCache.restore(svc, cacheRoot, saveAs.name, saveAs.key);
      if (restored) {
        const seconds = (Date.now() - started) / 1000;
        const groupList = [...wanted].sort();
        return { venvPython, venv, cached: true, restored, groups: groupList, seconds };
      }
    } catch (err) {
      // A cache is an optimisation: never the reason a step fails (as @actions/cache warns too).
      warning(`could not restore the install from the Actions cache (${err.message}); installing`);
    }
  }
  fs.mkdirSync(cacheRoot, { recursive: true });
  const tmp = `${venv}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  try {
    // Without pip the venv takes ~0.1 s; the host's pip installs into it (--target, --python).
    let pip = [python.command, ISOLATED, '-m', 'pip', '--python', path.join(tmp, 'bin', 'python')];
    const sitePackages = path.join(tmp, 'lib', `python${python.short}`, 'site-packages');
    // The locks are installed by the host's pip straight into the venv's site-packages
    // (--target): the venv is of this very interpreter, so the same wheels fit, and pip does not
    // start a second time inside the venv as --python makes it (~0.25 s of CPU, 0.2-0.3 s of a
    // cold Vault-only install here). Only for --no-deps installs into the new, empty venv: pip
    // does not look at what --target already holds when it resolves.
    let lockedTarget = true;
    if ((await run(python.command, [ISOLATED, '-m', 'venv', '--without-pip', tmp])) !== 0) {
      throw new Error(`'${python.command} -m venv' failed`);
    }
    const pipMajor = /^(\d+)\./.exec(pipVersion(python));
    if (!pipMajor || Number(pipMajor[1]) < 23) {
      // No usable pip next to the host Python (--python needs pip >= 22.3): bootstrap one.
      fs.rmSync(tmp, { recursive: true, force: true });
      if ((await run(python.command, [ISOLATED, '-m', 'venv', tmp])) !== 0) {
        throw new Error(`'${python.command} -m venv' failed`);
      }
      pip = [path.join(tmp, 'bin', 'python'), ISOLATED, '-m', 'pip'];
      lockedTarget = false;
    }
    // pip's temporary files (downloads, unpacked wheels, --target's staging directory) on the
    // install's own file system: --target then renames into place instead of copying every file
    // from /tmp (onto memory: a cold Vault + AWS pip install 1.8-2.0 s here, 2.7-3.4 s with /tmp
    // on the disk). Inside the install being built, so whatever is left goes with it.
    const scratch = path.join(tmp, '.install-tmp');
    fs.mkdirSync(scratch, { mode: 0o700 });
    const installEnv = { ...process.env, TMPDIR: scratch };
    const pipInstall = (args, { locked = false } = {}) =>
      runKeepingStderr(
        pip[0],
        [
          ...(locked && lockedTarget ? [ISOLATED, '-m', 'pip'] : pip.slice(1)),
          'install',
          ...(locked && lockedTarget ? ['--target', sitePackages] : []),
          '--quiet',
          '--no-input',
          '--disable-pip-version-check',
          '--progress-bar=off',
          // Modules are compiled on first import instead (the CLI writes the .pyc files into
          // this install, see runCli): a job imports a small part of botocore.
          '--no-compile',
          ...args,
        ],
        { env: { ...installEnv, PIP_REQUIRE_VIRTUALENV: '0' } }
      );
    const lockGroupsWanted = [...wanted].filter((g) => locked.includes(g)).sort();
    const locks =
      lockGroupsWanted.length === wanted.size ? usableLocks(REPO_ROOT, project, lockGroupsWanted) : null;
    let result = { code: 1, stderr: '' };
    const uv = locks ? findUv() : null;
    if (uv) {
      // The same locks, hashes checked the same way; uv fetches in parallel and writes the files
      // faster: a cold Vault-only install 0.9 s instead of 2.9 s with pip, all three backends
      // ~5.5 s instead of ~9.5 s (docs/benchmarks.md). It writes no bytecode by default.
      result = await runKeepingStderr(
        uv,
        [
          'pip',
          'install',
          '--quiet',
          '--python',
          path.join(tmp, 'bin', 'python'),
          '--no-deps',
          '--require-hashes',
          '--only-binary',
          ':all:',
          ...locks.flatMap((file) => ['-r', file]),
        ],
        { env: uvEnv(installEnv, scratch) }
      );
      if (/Hash mismatch/i.test(result.stderr)) {
        throw new Error(`a download did not match its hash in ${LOCK_DIR}; not installing`);
      }
      if (result.code !== 0) {
        // E.g. a runner whose index is set in pip.conf only (uv does not read it): pip next.
        warning(`uv could not install from ${LOCK_DIR} (exit ${result.code}); trying pip`);
      }
    }
    // Exact versions and hashes: no resolver. Wheels only: a runner no locked wheel fits
    // resolves instead. One pip run for all the groups (a package two groups share, such as
    // urllib3, is pinned identically in both files).
    const lockArgs = locks
      ? ['--no-deps', '--require-hashes', '--only-binary=:all:', ...locks.flatMap((f) => ['-r', f])]
      : null;
    const page = lockArgs && result.code !== 0 ? usableLinksPage(REPO_ROOT, project) : null;
    if (page && pipUsesPyPIOnly(process.env, pipConfigFiles(process.env, python))) {
      // Where pip would go anyway (PyPI), but told each locked wheel's address: pip then weighs
      // ~100 links instead of every file of every release on each project's index page (7,620
      // for the Vault-only locks), most of its CPU in a cold install (pip download of those
      // locks: 0.7-0.85 s against 1.7 s, docs/benchmarks.md). Same wheels, same hashes.
      result = await pipInstall(['--no-index', '--find-links', page, ...lockArgs], { locked: true });
      if (/DO NOT MATCH THE HASHES/.test(result.stderr)) {
        throw new Error(`a download did not match its hash in ${LOCK_DIR}; not installing`);
      }
      if (result.code !== 0) {
        warning(`installing the locked wheels from PyPI's file addresses failed (pip exit ${result.code}); trying the index`);
      }
    }
    if (lockArgs && result.code !== 0) {
      result = await pipInstall(lockArgs, { locked: true });
      if (/DO NOT MATCH THE HASHES/.test(result.stderr)) {
        // Not a runner the lock does not fit: what was downloaded is not what was locked.
        throw new Error(`a download did not match its hash in ${LOCK_DIR}; not installing`);
      }
      if (result.code !== 0) {
        warning(
          `installing from ${LOCK_DIR} failed (pip exit ${result.code}); resolving from pyproject.toml`
        );
      }
    }
    if (result.code !== 0) {
      // Resolved by pip: the base dependencies and the extras of the groups that are extras.
      const extrasOfGroups = [...wanted].filter((g) => g in project.optional);
      result = await pipInstall([
        ...project.dependencies,
        ...extraRequirements(project, extrasOfGroups),
      ]);
    }
    const code = result.code;
    if (code !== 0) throw new Error(`installing jobsecrets' dependencies failed (pip exit ${code})`);
    if (extraDeps.length) {
      // Not in the locks: resolved by pip.
      const extra = await pipInstall(extraDeps);
      if (extra.code !== 0) {
        throw new Error(`installing the extras ${pipExtras.join(', ')} failed (pip exit ${extra.code})`);
      }
    }
    fs.rmSync(scratch, { recursive: true, force: true });
    installSource(REPO_ROOT, path.join(tmp, 'lib', `python${python.short}`, 'site-packages'), project);
    fs.writeFileSync(path.join(tmp, '.jobsecrets-complete'), `${new Date().toISOString()}\n`);
    try {
      fs.renameSync(tmp, venv);
    } catch (err) {
      // An incomplete install at the name (a tmp cleaner took its marker, a partial rm -rf):
      // out of the way, then the rename again; else every later job reinstalls and fails here.
      if (
        (err.code === 'ENOTEMPTY' || err.code === 'EEXIST') &&
        !fs.existsSync(path.join(venv, '.jobsecrets-complete')) &&
        removeIncompleteInstall(venv)
      ) {
        try {
          fs.renameSync(tmp, venv);
        } catch (again) {
          if (!fs.existsSync(path.join(venv, '.jobsecrets-complete'))) throw again;
          fs.rmSync(tmp, { recursive: true, force: true });
        }
      } else {
        // Another job finished the same install first: use theirs.
        if (!fs.existsSync(path.join(venv, '.jobsecrets-complete'))) throw err;
        fs.rmSync(tmp, { recursive: true, force: true });
      }
    }
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  const seconds = (Date.now() - started) / 1000;
  return { venvPython, venv, cached: false, groups: [...wanted].sort(), seconds, saveAs };
}

/**
 * Take the directory `venv` (an install without its marker) out of the tool cache; true if it is
 * gone. Only a directory of its own: a symlink there (or anything else) is left as it is, and
 * never followed. Renamed aside first (atomically, to a `.tmp-` name no lookup takes), so a
 * concurrent job never sees half of it removed; if what was moved has the marker after all (a
 * complete install renamed in since it was looked at), it is put back.
 */
function removeIncompleteInstall(venv) {
  try {
    if (!fs.lstatSync(venv).isDirectory()) return false;
  } catch (err) {
    return err.code === 'ENOENT';
  }
  const aside = `${venv}.tmp-stale-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  try {
    fs.renameSync(venv, aside); // the directory entry itself: a link that replaced it moves as a link
  } catch (err) {
    return err.code === 'ENOENT';
  }
  const st = fs.lstatSync(aside);
  if (st.isDirectory() && fs.existsSync(path.join(aside, '.jobsecrets-complete'))) {
    try {
      fs.renameSync(aside, venv);
    } catch {
      // Another install took the name meanwhile: either is complete.
    }
    return true;
  }
  fs.rmSync(aside, { recursive: true, force: true }); // removes links inside, never follows them
  return true;
}

/**
 * Save a fresh install in the Actions cache (`install.saveAs` from ensureInstalled). Called once
 * the CLI has run in it, so the archive has the .pyc files that run wrote and a restoring job
 * compiles nothing; and in the main step, before any later step of the job could change the
 * install. A failure is a warning: the step's outcome is the CLI's.
 */
async function saveInstall(install) {
  const saveAs = install.saveAs;
  if (!saveAs) return;
  const started = Date.now();
  try {
    const size = await actionsCache.save(saveAs.svc, saveAs.root, saveAs.name, saveAs.key);
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    console.log(
      size
        ? `jobsecrets: saved the install in the Actions cache (${(size / 1048576).toFixed(1)} MB, ${seconds} s)`
        : 'jobsecrets: the Actions cache already has (or is saving) this install'
    );
  } catch (err) {
    warning(`could not save the install in the Actions cache (${err.message})`);
  }
}

/**
 * The `uv` executable on PATH, found without running anything, or null. $JOBSECRETS_INSTALLER=pip
 * keeps to pip.
 */
function findUv(env = process.env) {
  if (env.JOBSECRETS_INSTALLER === 'pip') return null;
  for (const dir of (env.PATH || '').split(path.delimiter)) {
    if (!dir || !path.isAbsolute(dir)) continue; // never a relative PATH entry (the workspace)
    const candidate = path.join(dir, 'uv');
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not there
    }
  }
  return null;
}

/**
 * The environment for uv: the index pip is told to use through the environment, if uv has none;
 * on a GitHub-hosted runner with no uv cache named, a cache in `scratch` (the install's temporary
 * directory). That runner's cache starts empty and is thrown away with the machine, so uv might as
 * well unpack each wheel on the install's file system (memory, see memoryRoot) instead of writing
 * it to the disk first and copying it over (Vault + AWS: 0.34-0.38 s against 0.5-1.1 s here).
 */
function uvEnv(env, scratch = null) {
  const out = { ...env };
  if (scratch && env.RUNNER_ENVIRONMENT === 'github-hosted' && !env.UV_CACHE_DIR && !env.UV_NO_CACHE) {
    out.UV_CACHE_DIR = path.join(scratch, 'uv-cache');
  }
  if (env.PIP_INDEX_URL && !env.UV_INDEX_URL && !env.UV_DEFAULT_INDEX) {
    out.UV_INDEX_URL = env.PIP_INDEX_URL;
  }
  if (env.PIP_EXTRA_INDEX_URL && !env.UV_EXTRA_INDEX_URL && !env.UV_INDEX) {
    out.UV_EXTRA_INDEX_URL = env.PIP_EXTRA_INDEX_URL;
  }
  return out;
}

/**
 * Whether the CLI should write .pyc files into the install: when the install outlives this job,
 * or lives in memory. The next run then imports without compiling (~0.7 s less with boto3); in a
 * throwaway install on the disk the writes (~325 files, 0.1-0.3 s here) are wasted. Throwaway: a
 * GitHub-hosted runner (a fresh machine per job) with neither $JOBSECRETS_TOOL_CACHE (a directory
 * the user saves with actions/cache) nor this action's own cache saving it. In memory (`inMemory`:
 * the install is on a tmpfs, a hosted runner's default) the writes cost nothing measurable and the
 * post step's revoke, and every later step of the job, import without compiling: measured here,
 * importing hvac, botocore and the CLI from a tmpfs install took 0.72-0.92 s without writing, 0.76-
 * 0.89 s writing, and 0.32-0.35 s the next time against 0.75-1.02 s without the files.
 */
function keepsBytecode(savedByCache = false, env = process.env, inMemory = false) {
  // $JOBSECRETS_BYTECODE=true/false decides instead (an ephemeral self-hosted runner: false).
  if (env.JOBSECRETS_BYTECODE === 'true' || env.JOBSECRETS_BYTECODE === 'false') {
    return env.JOBSECRETS_BYTECODE === 'true';
  }
  return (
    env.RUNNER_ENVIRONMENT !== 'github-hosted' ||
    Boolean(env.JOBSECRETS_TOOL_CACHE) ||
    savedByCache ||
    inMemory
  );
}

/** Whether `dir` is on a tmpfs (the install in memory, see memoryRoot); false if unknown. */
function onTmpfs(dir) {
  if (typeof fs.statfsSync !== 'function') return false;
  try {
    return fs.statfsSync(dir).type === TMPFS_MAGIC;
  } catch {
    return false;
  }
}

/**
 * A complete install in `cacheRoot` named `prefix` + a label whose groups include all of
 * `label`'s ('core+vault' is served by 'aws+core+vault'); the exact one first. Null if none.
 */
function reusableInstall(cacheRoot, prefix, label) {
  const complete = (dir) => fs.existsSync(path.join(cacheRoot, dir, '.jobsecrets-complete'));
  if (complete(prefix + label)) return path.join(cacheRoot, prefix + label);
  if (!fs.existsSync(cacheRoot)) return null;
  const need = label.split('+');
  const candidates = fs
    .readdirSync(cacheRoot)
    .filter((dir) => dir.startsWith(prefix) && !dir.includes('.tmp-'))
    .map((dir) => ({ dir, has: dir.slice(prefix.length).split('+') }))
    .filter(({ dir, has }) => need.every((g) => has.includes(g)) && complete(dir))
    // The smallest install that fits (fewest groups), then by name: the same pick every time.
    .sort((a, b) => a.has.length - b.has.length || a.dir.localeCompare(b.dir));
  return candidates.length ? path.join(cacheRoot, candidates[0].dir) : null;
}

/**
 * Run `python -I -u -m jobsecrets ARGS` (see ISOLATED). stdout is inherited: the runner must read
 * the ::add-mask:: commands directly. stderr is passed through line by line, and error lines are
 * also returned so the caller can raise an annotation (the CLI never puts a value in a message).
 */
function runCli(venvPython, args, options = {}, bytecode = true) {
  // The install is private to this action, and it is installed without .pyc files: when it
  // outlives the job (keepsBytecode), let the first run write them (atomically, next to the
  // sources), or every later run compiles hvac/boto3/botocore again (~0.7 s); in a throwaway
  // install, write none (-B). -I ignores a runner's PYTHONDONTWRITEBYTECODE either way.
  // -u: the CLI's stdout (workflow commands) and stderr reach the log in the order written.
  const flags = [ISOLATED, ...(bytecode ? [] : ['-B']), '-u'];
  const env = options.env ?? process.env;
  return new Promise((resolve, reject) => {
    // A cancelled step signals this node process only, and node's default is to exit at once:
    // pass the signal on and wait, so the CLI revokes what it obtained instead of running on
    // unseen after the step (and the post step) ended. Listening starts before the spawn: until
    // a listener exists a signal ends node at once, and a runner busy enough to deschedule node
    // right after the fork could signal it after the CLI started and before listening (a test
    // saw that once in 20 runs). Node runs the listener on a later turn, when `child` is set.
    let child = null;
    const forward = (signal) => child?.kill(signal);
    const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    for (const signal of signals) process.on(signal, forward);
    try {
      child = spawn(venvPython, [...flags, '-m', 'jobsecrets', ...args], {
        stdio: ['ignore', 'inherit', 'pipe'],
        ...options,
        env,
      });
    } catch (err) {
      for (const name of signals) process.removeListener(name, forward);
      reject(err);
      return;
    }
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
 * Put a `jobsecrets` command on PATH for the job's later steps ($GITHUB_PATH): a small shell
 * script that runs this install, so `jobsecrets plan --check` (the hint of a failed step) or
 * `jobsecrets run -- CMD` work in a later `run:` step as written. Returns the directory.
 */
function addToPath(venvPython, bytecode = true) {
  const dir = fs.mkdtempSync(path.join(process.env.RUNNER_TEMP || os.tmpdir(), 'jobsecrets-bin-'));
  const script = path.join(dir, 'jobsecrets');
  const quoted = `'${venvPython.replace(/'/g, `'\\''`)}'`;
  // Isolated (see ISOLATED): a later step runs it from any directory, the workspace included.
  // The two PYTHON* variables a step may set for the CLI keep their meaning, as flags; a
  // throwaway install writes no .pyc files whatever the step sets (runCli).
  const lines = [
    '#!/bin/sh',
    'set -- -m jobsecrets "$@"',
    bytecode
      ? 'if [ -n "${PYTHONDONTWRITEBYTECODE:-}" ]; then set -- -B "$@"; fi'
      : 'set -- -B "$@"',
    'if [ -n "${PYTHONUNBUFFERED:-}" ]; then set -- -u "$@"; fi',
    `exec ${quoted} ${ISOLATED} "$@"`,
  ];
  fs.writeFileSync(script, lines.join('\n') + '\n', { mode: 0o755 });
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
  if ((await run(python.command, [ISOLATED, '-m', 'venv', venv])) !== 0) {
    throw new Error(`'${python.command} -m venv' failed`);
  }
  const venvPython = path.join(venv, 'bin', 'python');
  // --no-compile: this venv lives for this step only; pip would compile all of botocore (seconds).
  const args = [
    ISOLATED,
    '-m',
    'pip',
    'install',
    '--quiet',
    '--no-input',
    '--disable-pip-version-check',
    '--no-compile',
    requirement,
  ];
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
  LOCK_DIR,
  BASE_GROUPS,
  lockGroups,
  pipConfigFiles,
  pipUsesPyPIOnly,
  usableLinksPage,
  findUv,
  findPythonMemo,
  keepsBytecode,
  onTmpfs,
  memoryRoot,
  toolCacheRoot,
  openCacheAhead,
  uvEnv,
  specGroups,
  specGroupsOf,
  reusableInstall,
  addToPath,
  installRequirement,
  REPO_ROOT,
  command,
  depsHash,
  ensureInstalled,
  saveInstall,
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
