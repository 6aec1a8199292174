// Post step (post-if: always()): revoke every lease and token the main step recorded, also when a
// later step failed or the job was cancelled, then delete the state directory (file: true values
// live there too).
'use strict';

const fs = require('fs');
const path = require('path');
const lib = require('./lib');

async function post() {
  if (lib.getState('mode') === 'scan') return; // a scan step obtained nothing
  const statePath = lib.getState('state_path');
  const venvPython = lib.getState('venv_python');
  if (!statePath || !venvPython) {
    console.log('jobsecrets: nothing to revoke (the main step obtained nothing)');
    return;
  }
  const stateDir = path.dirname(statePath);
  // The step's own directory in RUNNER_TEMP, which a later step of the job can replace: a link
  // there leads somewhere else, whose files are not this step's to hand to revoke or delete.
  let kind = null;
  try {
    kind = fs.lstatSync(stateDir);
  } catch {
    // Gone: nothing recorded is left (below: nothing to revoke).
  }
  if (kind && !kind.isDirectory()) {
    lib.warning(
      `the state directory ${stateDir} was replaced by ${kind.isSymbolicLink() ? 'a link' : 'a file'}: ` +
        'nothing revoked or deleted through it (leases end at their TTL)'
    );
    return;
  }
  let ok = false;
  try {
    if (!fs.existsSync(statePath)) {
      // export writes no state when it got no lease or token, or revoked them itself on failure.
      console.log('jobsecrets: nothing to revoke (no leases or tokens were handed to the job)');
      ok = true;
      return;
    }
    const bytecode = lib.getState('bytecode') !== 'false';
    const result = await lib.runCli(venvPython, ['revoke', '--state', statePath], {}, bytecode);
    ok = result.code === 0;
    if (!ok) {
      const detail = result.errors.map((l) => l.replace(/^jobsecrets: /, '')).join('\n');
      lib.error(`jobsecrets revoke failed (exit ${result.code})${detail ? ':\n' + detail : ''}`);
      process.exitCode = result.code;
    }
  } finally {
    // Secret files go in any case; a state file that still lists live leases is kept for a manual
    // `jobsecrets revoke --state` on a self-hosted runner (the runner deletes RUNNER_TEMP later).
    for (const name of fs.existsSync(stateDir) ? fs.readdirSync(stateDir) : []) {
      if (ok || name !== path.basename(statePath)) {
        fs.rmSync(path.join(stateDir, name), { recursive: true, force: true });
      }
    }
    if (ok) fs.rmSync(stateDir, { recursive: true, force: true });
  }
}

post().catch((err) => {
  lib.error(err.message);
  process.exitCode = 1;
});
