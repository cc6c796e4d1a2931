'use strict';
/**
 * Busy work: terminals running a command, tasks, debug sessions. Hands the complete list to the
 * Reporter whenever it may have changed and every BUSY_CHECK_MS (the Reporter sends it when it
 * changed, and re-sends it while not empty).
 *
 * A terminal is busy when its shell has a child process and, if shell integration is active
 * in it, a command is running by shell integration's account:
 * - shell integration alone is not enough: its start/end marks are parsed by the browser, so
 *   with the tab closed a command's end is never seen;
 * - child processes alone are not enough: some prompts keep a helper process (zsh's gitstatusd)
 *   under an idle shell.
 */

const { childrenByParent, commandLine } = require('./procs');

const BUSY_CHECK_MS = 5 * 1000;

class BusyWatcher {
  /**
   * @param {typeof import('vscode')} vscode
   * @param {{setBusy(items: {kind: string, name: string}[]): void}} reporter
   * @param {{warn(message: string): void}} log
   */
  constructor(vscode, reporter, log) {
    this.vscode = vscode;
    this.reporter = reporter;
    this.log = log;
    this.disposables = [];
    this.running = new Map(); // terminal -> command line of its running execution
    this.debugSessions = new Map(); // session id -> name
    this.checking = false;
    this.again = false;
  }

  start() {
    const { window, tasks, debug } = this.vscode;
    const on = (event, listener) => this.disposables.push(event((e) => listener(e)));
    on(window.onDidStartTerminalShellExecution, (e) => {
      this.running.set(e.terminal, e.execution.commandLine.value || e.terminal.name);
      this.check();
    });
    on(window.onDidEndTerminalShellExecution, (e) => {
      this.running.delete(e.terminal);
      this.check();
    });
    on(window.onDidCloseTerminal, (terminal) => {
      this.running.delete(terminal);
      this.check();
    });
    on(tasks.onDidStartTask, () => this.check());
    on(tasks.onDidEndTask, () => this.check());
    on(debug.onDidStartDebugSession, (session) => {
      this.debugSessions.set(session.id, session.name);
      this.check();
    });
    on(debug.onDidTerminateDebugSession, (session) => {
      this.debugSessions.delete(session.id);
      this.check();
    });
    const timer = setInterval(() => this.check(), BUSY_CHECK_MS);
    this.disposables.push({ dispose: () => clearInterval(timer) });
    this.check();
  }

  dispose() {
    for (const each of this.disposables.splice(0)) {
      each.dispose();
    }
  }

  /** Works out the busy list now and hands it to the reporter (one check at a time). */
  check() {
    if (this.checking) {
      this.again = true;
      return;
    }
    this.checking = true;
    this._busyNow().then(
      (items) => this.reporter.setBusy(items),
      (err) => this.log.warn(`busy check failed: ${err.message}`),
    ).finally(() => {
      this.checking = false;
      if (this.again) {
        this.again = false;
        this.check();
      }
    });
  }

  async _busyNow() {
    const items = [];
    for (const execution of this.vscode.tasks.taskExecutions) {
      items.push({ kind: 'task', name: execution.task.name });
    }
    for (const name of this.debugSessions.values()) {
      items.push({ kind: 'debug', name });
    }
    items.push(...await this._busyTerminals());
    return items;
  }

  async _busyTerminals() {
    // Terminals shell integration reports idle need no look at /proc.
    const candidates = this.vscode.window.terminals.filter(
      (terminal) => !terminal.shellIntegration || this.running.has(terminal));
    if (candidates.length === 0) {
      return [];
    }
    const pids = await Promise.all(candidates.map((terminal) => terminal.processId));
    const children = childrenByParent();
    const items = [];
    candidates.forEach((terminal, index) => {
      const kids = children.get(pids[index]) || [];
      if (kids.length > 0) {
        const name = this.running.get(terminal) || commandLine(kids[0]) || terminal.name;
        items.push({ kind: 'terminal', name });
      }
    });
    return items;
  }
}

module.exports = { BusyWatcher, BUSY_CHECK_MS };
