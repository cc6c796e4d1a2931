'use strict';
/**
 * Drives the waiide-activity extension's VS Code-free parts under plain node, for
 * tests/ide_extension/. Usage:
 *
 *   node activity_driver.js config '<env as JSON>'
 *       prints {"config": {...}} or {"error": "<message>"}
 *   node activity_driver.js script '<env as JSON>' '<steps as JSON>'
 *       runs a Reporter (and Transport) from that env through the steps, then exits:
 *       {"do": "activity", "cause": "editor"[, "ago_s": 80]} | {"do": "urgent", "cause": …}
 *       {"do": "busy", "items": [{kind, name}]} | {"do": "sleep", "s": 0.5}
 *       {"do": "notice"} (prints {"notice": …} or {"notice_error": …}) | {"do": "dispose"}
 */

const path = require('path');

const LIB = path.resolve(__dirname, '..', '..', 'ide-extension', 'waiide-activity', 'lib');
const { fromEnv } = require(path.join(LIB, 'config'));
const { Transport } = require(path.join(LIB, 'transport'));
const { Reporter } = require(path.join(LIB, 'reporter'));

function print(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

async function runScript(env, steps) {
  const config = fromEnv(env);
  const transport = new Transport(config);
  const reporter = new Reporter({
    transport,
    minIntervalS: config.minIntervalS,
    busyIntervalS: config.busyIntervalS,
    log: (message) => print({ log: message }),
  });
  print({ session: reporter.session });
  for (const step of steps) {
    if (step.do === 'activity') {
      reporter.activity(step.cause, Date.now() - (step.ago_s || 0) * 1000);
    } else if (step.do === 'urgent') {
      reporter.urgent(step.cause);
    } else if (step.do === 'busy') {
      reporter.setBusy(step.items);
    } else if (step.do === 'sleep') {
      await new Promise((resolve) => setTimeout(resolve, step.s * 1000));
    } else if (step.do === 'notice') {
      await transport.notice().then((notice) => print({ notice }), (err) => print({ notice_error: err.message }));
    } else if (step.do === 'dispose') {
      await reporter.dispose();
    } else {
      throw new Error(`unknown step ${JSON.stringify(step)}`);
    }
  }
  await reporter.dispose();
}

async function main() {
  const [mode, envJson, stepsJson] = process.argv.slice(2);
  const env = JSON.parse(envJson);
  if (mode === 'config') {
    try {
      print({ config: fromEnv(env) });
    } catch (err) {
      print({ error: err.message, name: err.constructor.name });
    }
    return;
  }
  await runScript(env, JSON.parse(stepsJson));
}

main().then(() => process.exit(0), (err) => {
  process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
