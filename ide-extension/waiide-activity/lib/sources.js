'use strict';
/**
 * The user-caused events this extension sees through VS Code's stable API, turned into causes
 * for the Reporter. What each cause means, and what is deliberately left out, is in
 * ../CONTRACT.md ("Causes").
 *
 * Nothing here fires for an open, visible, untouched workbench: every listener below needs a
 * keystroke, a click or a command from the user (or a task/debug session started by one).
 */

// Documents a user edits. Not "output" (output channels), "git", "vscode-scm", "debug", …:
// those change without anyone typing.
const USER_SCHEMES = new Set([
  'file', 'untitled', 'vscode-remote', 'vscode-userdata', 'vscode-notebook-cell', 'vscode-vfs',
]);
// Documents whose opening in an editor is the user's doing (a diff of a git change, too).
const OPEN_SCHEMES = new Set([...USER_SCHEMES, 'git']);
// VS Code's window "active" state (WindowState.active) comes from the workbench's
// DomActivityTracker (workbench.js of 1.139): a keydown, mousedown or touchstart in the page
// makes it active; it turns inactive 40-70 s after the last one (a 30 s check interval, two
// quiet intervals, then a 10 s debounce). While it stays active the last input was less than
// ACTIVE_HOLD_MS ago, which gives a lower bound for when the user last did something.
const ACTIVE_HOLD_MS = 70 * 1000;
const INPUT_CHECK_MS = 10 * 1000;

class ActivitySources {
  /**
   * @param {typeof import('vscode')} vscode
   * @param {{activity(cause: string, atMs?: number): void}} reporter
   * @param {{trace(message: string): void}} log
   */
  constructor(vscode, reporter, log) {
    this.vscode = vscode;
    this.reporter = reporter;
    this.log = log;
    this.disposables = [];
    this.windowState = { ...vscode.window.state };
    // When the window last became "active" through the user's doing; null while inactive or
    // while its activity is the workbench's own start-up value (active for ~1 min after load).
    this.activeSinceMs = null;
    this.interacted = new WeakSet();
  }

  start() {
    const { window, workspace, tasks, debug } = this.vscode;
    const on = (event, listener) => this.disposables.push(event((e) => listener(e)));
    on(workspace.onDidChangeTextDocument, (e) => this._onDocumentChange(e));
    on(window.onDidChangeTextEditorSelection, (e) => this._onSelection(e));
    on(workspace.onDidSaveTextDocument, (doc) => this._isUserDocument(doc)
      && this._user('save', doc.uri));
    on(workspace.onDidSaveNotebookDocument, (doc) => this._user('save', doc.uri));
    on(window.onDidChangeActiveTextEditor, (editor) => editor
      && OPEN_SCHEMES.has(editor.document.uri.scheme) && this._user('open', editor.document.uri));
    on(window.onDidChangeActiveNotebookEditor, (editor) => editor
      && this._user('open', editor.notebook.uri));
    on(window.tabGroups.onDidChangeTabs, (e) => e.opened.length > 0
      && this._user('open', `tab ${e.opened[0].label}`));
    on(window.onDidStartTerminalShellExecution, (e) => this._user('terminal-input',
      `command in ${e.terminal.name}`));
    on(window.onDidChangeTerminalState, (terminal) => this._onTerminalState(terminal));
    on(window.onDidChangeActiveTerminal, (terminal) => terminal
      && this._user('terminal-input', `active terminal ${terminal.name}`));
    on(tasks.onDidStartTask, (e) => this._user('task', e.execution.task.name));
    on(debug.onDidStartDebugSession, (session) => this._user('debug', session.name));
    on(window.onDidChangeWindowState, (state) => this._onWindowState(state));
    const check = setInterval(() => this._checkStillActive(), INPUT_CHECK_MS);
    this.disposables.push({ dispose: () => clearInterval(check) });
  }

  dispose() {
    for (const each of this.disposables.splice(0)) {
      each.dispose();
    }
  }

  _user(cause, detail) {
    const now = Date.now();
    // Trace level: "Developer: Set Log Level…" > WAIIDE activity shows why a server stayed up.
    this.log.trace(`${cause}: ${detail}`);
    // A user event while the window counts as active: from now on its staying active means
    // more use (see ACTIVE_HOLD_MS).
    if (this.activeSinceMs === null && this.vscode.window.state.active) {
      this.activeSinceMs = now;
    }
    this.reporter.activity(cause, now);
  }

  /**
   * A document of a user scheme shown in an editor. VS Code itself writes and saves documents
   * nobody looks at (settings.json when a setting is changed or migrated, say): those are not
   * the user typing or saving. Notebook cells are shown through their notebook.
   */
  _isUserDocument(doc) {
    const scheme = doc.uri.scheme;
    if (scheme === 'vscode-notebook-cell') {
      return true;
    }
    return USER_SCHEMES.has(scheme)
      && this.vscode.window.visibleTextEditors.some((editor) => editor.document === doc);
  }

  _onDocumentChange(e) {
    // An empty contentChanges is a dirty-state change only (e.g. after a save). A changed file
    // reloaded from disk also fires this; requiring a focused window keeps a background writer
    // from looking like typing while nobody is at the screen.
    if (e.contentChanges.length > 0 && this.vscode.window.state.focused
        && this._isUserDocument(e.document)) {
      this._user('editor', e.document.uri);
    }
  }

  _onSelection(e) {
    // kind is Keyboard, Mouse or Command when the user moved the cursor; undefined when the
    // editor did (restoring a view state, a reload, an edit by an extension).
    if (e.kind !== undefined) {
      this._user('editor', `selection (kind ${e.kind}) in ${e.textEditor.document.uri}`);
    }
  }

  _onTerminalState(terminal) {
    // Fires once per terminal on its first input (isInteractedWith), and also when the shell
    // type changes (not the user's doing as such): count only the first.
    if (terminal.state.isInteractedWith && !this.interacted.has(terminal)) {
      this.interacted.add(terminal);
      this._user('terminal-input', `first input in ${terminal.name}`);
    }
  }

  _onWindowState(state) {
    const before = this.windowState;
    this.windowState = { ...state };
    if (state.focused && !before.focused) {
      this._user('focus', 'window focused');
    }
    if (state.active === true && before.active === false) {
      this.activeSinceMs = Date.now();
      this._user('input', 'window became active');
    } else if (state.active === false) {
      this.activeSinceMs = null;
    }
  }

  _checkStillActive() {
    // Input keeps the window active without any event (typing in a terminal, say), so poll
    // the state and report the lower bound of the last input time; the Reporter drops it
    // unless it is newer than what the server already has.
    if (this.activeSinceMs === null || !this.vscode.window.state.active) {
      return;
    }
    this.reporter.activity('input', Math.max(this.activeSinceMs, Date.now() - ACTIVE_HOLD_MS));
  }
}

module.exports = { ActivitySources, USER_SCHEMES, ACTIVE_HOLD_MS };
