// Main step: install the jobsecrets CLI of this ref (or reuse the cached install), then run
// `jobsecrets export --format github`. The CLI registers the masks, writes $GITHUB_ENV / step
// outputs and the job summary, and records leases in a state file that post.js hands to `revoke`.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const lib = require('./lib');

// Scan mode (input `scan`): `jobsecrets scan PATHS` with the values this job holds, found by the
// names the inject step recorded in $GITHUB_ENV. A finding fails the step (before an upload
// step runs) and puts a table (variable, file, form) in the job summary; never a value.
async function scan(paths, cwd, useCache, extras) {
  // Scanning needs the CLI only, no backend: any install of this ref serves (see reusableInstall),
  // with the extras asked for (`fast`: ISA-L inflating, ~4x faster on archives).
  const install = await lib.ensureInstalled(['core'], extras, { cache: useCache });
  lib.saveState('mode', 'scan');
  const args = ['scan', ...paths];
  if (process.env.GITHUB_STEP_SUMMARY) args.push('--summary', process.env.GITHUB_STEP_SUMMARY);
  // Paths go in argv (they are not secrets); the values stay in the environment.
  const result = await lib.runCli(
    install.venvPython,
    args,
    { cwd },
    lib.keepsBytecode(Boolean(install.saveAs), process.env, lib.onTmpfs(install.venv))
  );
  await lib.saveInstall(install);
  if (result.code === 9) {
    lib.error('jobsecrets scan found secret values in files (see the job summary): nothing may be uploaded');
  } else if (result.code !== 0) {
    const detail = result.errors.map((l) => l.replace(/^jobsecrets: /, '')).join('\n');
    lib.error(`jobsecrets scan failed (exit ${result.code})${detail ? ':\n' + detail : ''}`);
  }
  process.exitCode = result.code;
}

async function main() {
  const config = lib.getInput('config', 'jobsecrets.yml');
  // Commas, spaces or newlines between names (a YAML block scalar is the natural way to list many).
  const only = lib.getInput('only').split(/[\s,]+/).filter(Boolean).join(',');
  const exportEnv = lib.getBooleanInput('export-env', true);
  const outputs = lib.getBooleanInput('outputs', false);
  const audience = lib.getInput('audience');
  const addToPath = lib.getBooleanInput('add-to-path', true);
  const workspace = process.env.GITHUB_WORKSPACE || process.cwd();
  const cwd = path.resolve(workspace, lib.getInput('working-directory', '.'));
  if (!fs.existsSync(cwd)) throw new Error(`working-directory '${cwd}' does not exist`);
  // Keep the install in the Actions cache (restore before installing, save a fresh one).
  const useCache = lib.getBooleanInput('cache', true);
  // Optional dependency sets of jobsecrets (e.g. `github`: pyjwt + cryptography for type: github).
  const extras = lib.getInput('extras').split(/[\s,]+/).filter(Boolean);
  const scanPaths = lib.getInput('scan').split(/[\s]+/).filter(Boolean);
  // `source` (default): the package at this action's ref, exactly the action's own version.
  const from = lib.getInput('install', 'source');
  // Both install this ref's package, looking it up in the Actions cache first.
  lib.openCacheAhead(useCache && (scanPaths.length > 0 || from === 'source'));
  if (scanPaths.length) return scan(scanPaths, cwd, useCache, extras);

  let install;
  if (from === 'source') {
    // Only what the spec's backend types need (a Vault-only spec gets no boto3/botocore, ~2,000
    // files, most of a cold install); the base install when the spec cannot be read with certainty.
    const groups = lib.specGroupsOf(path.resolve(cwd, config), lib.lockGroups(lib.REPO_ROOT));
    install = await lib.ensureInstalled(groups, extras, { cache: useCache });
  } else {
    install = await lib.installRequirement(from, extras);
  }
  const what = install.groups ? ` (${install.groups.join(', ')})` : '';
  // A restore says what it cost (archive size, lookup, download and unpack): what a user needs
  // to tell a slow cache from a slow runner, and what bench/github_step.py reports.
  const restored = install.restored;
  const cost = restored
    ? ` (${(restored.bytes / 1e6).toFixed(1)} MB; lookup ${restored.lookupSeconds.toFixed(2)} s, ` +
      `download and unpack ${restored.unpackSeconds.toFixed(2)} s)`
    : '';
  console.log(
    restored
      ? `jobsecrets: restored the install from the Actions cache into ${install.venv}${what} in ${install.seconds.toFixed(1)} s${cost}`
      : install.cached
        ? `jobsecrets: using the cached install ${install.venv}${what}`
        : `jobsecrets: installed into ${install.venv}${what} in ${install.seconds.toFixed(1)} s`
  );

  // One state directory per step, so two inject steps in a job each revoke their own leases.
  // Saved for the post step before anything is obtained: if this step is killed halfway through
  // the export, post still finds whatever was recorded.
  const stateDir = fs.mkdtempSync(path.join(process.env.RUNNER_TEMP || os.tmpdir(), 'jobsecrets-'));
  const statePath = path.join(stateDir, 'state.json');
  lib.saveState('venv_python', install.venvPython);
  // A `pypi` or other requirement goes into a venv of this step only: never worth .pyc files.
  // An install about to be saved in the Actions cache outlives the job: its .pyc files are kept;
  // so are those of an install in memory, which cost nothing to write and spare the post step.
  const bytecode =
    from === 'source' &&
    lib.keepsBytecode(Boolean(install.saveAs), process.env, lib.onTmpfs(install.venv));
  lib.saveState('bytecode', String(bytecode));
  lib.saveState('state_path', statePath);
  if (addToPath) {
    console.log(`jobsecrets: on PATH for later steps (${lib.addToPath(install.venvPython, bytecode)})`);
  }

  const args = ['export', '--format', 'github', '--config', config, '--state', statePath];
  if (only) args.push('--only', only);
  const env = {
    ...process.env,
    JOBSECRETS_GITHUB_EXPORT_ENV: String(exportEnv),
    JOBSECRETS_GITHUB_OUTPUTS: String(outputs),
  };
  if (audience) env.JOBSECRETS_AUDIENCE = audience;
  const result = await lib.runCli(install.venvPython, args, { cwd, env }, bytecode);
  if (result.code !== 0) {
    const detail = result.errors.map((l) => l.replace(/^jobsecrets: /, '')).join('\n');
    lib.error(`jobsecrets export failed (exit ${result.code})${detail ? ':\n' + detail : ''}`);
    process.exitCode = result.code;
  }
  // After the CLI ran (its .pyc files are in the install), before any later step of the job runs.
  await lib.saveInstall(install);
}

main().catch((err) => {
  lib.error(err.message);
  process.exitCode = 1;
});
