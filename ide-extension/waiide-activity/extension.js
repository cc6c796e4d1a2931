'use strict';
/**
 * WAIIDE activity: reports real use of the IDE and its busy work to the WAIIDE Hub gateway and
 * shows the gateway's idle-shutdown warning. The contract it speaks is CONTRACT.md.
 *
 * Runs in the remote extension host (extensionKind "workspace"), which inherits code-server's
 * environment: WAIIDE_ACTIVITY_URL and WAIIDE_ACTIVITY_SECRET come from the supervisor. Without
 * them it does nothing.
 */

const vscode = require('vscode');
const { fromEnv, ConfigError } = require('./lib/config');
const { Transport } = require('./lib/transport');
const { Reporter } = require('./lib/reporter');
const { ActivitySources } = require('./lib/sources');
const { BusyWatcher } = require('./lib/busy');
const { NoticePoller } = require('./lib/notice');

let reporter = null;

function activate(context) {
  const log = vscode.window.createOutputChannel('WAIIDE activity', { log: true });
  context.subscriptions.push(log);
  let config;
  try {
    config = fromEnv(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) {
      throw err;
    }
    // A bad value is the supervisor's bug; without reports the server would look idle.
    log.error(`not reporting activity: ${err.message}`);
    vscode.window.showErrorMessage(`WAIIDE activity reporting is off: ${err.message}`);
    return;
  }
  if (config === null) {
    log.info('not reporting activity: WAIIDE_ACTIVITY_URL and WAIIDE_ACTIVITY_SECRET are not set');
    return;
  }
  const transport = new Transport(config);
  reporter = new Reporter({
    transport,
    minIntervalS: config.minIntervalS,
    busyIntervalS: config.busyIntervalS,
    log: (message) => log.warn(message),
  });
  const parts = [
    new ActivitySources(vscode, reporter, log),
    new BusyWatcher(vscode, reporter, log),
    new NoticePoller(vscode, transport, reporter, config.noticeIntervalS, log),
  ];
  for (const part of parts) {
    part.start();
    context.subscriptions.push(part);
  }
  log.info(`reporting activity to ${config.url} (session ${reporter.session}, `
    + `at most every ${config.minIntervalS} s, busy every ${config.busyIntervalS} s, `
    + `notice poll every ${config.noticeIntervalS} s)`);
}

function deactivate() {
  // The extension host waits (a few seconds) for this promise: the last report says that this
  // session's busy work is gone.
  return reporter ? reporter.dispose() : undefined;
}

module.exports = { activate, deactivate };
