'use strict';
/**
 * Polls GET <url>/notice for the server's pending idle-shutdown warning and shows it once per
 * notice id, as a warning notification with a "Keep working" button; the button is reported as
 * use (cause "keep-working"). The poll itself is not use: the gateway does not count requests
 * to this route (see ../CONTRACT.md).
 */

const KEEP_WORKING = 'Keep working';

/** The notification's text for `notice` at `nowMs`. */
function noticeText(notice, nowMs) {
  if (typeof notice.message === 'string' && notice.message) {
    return notice.message;
  }
  const minutes = Math.max(1, Math.ceil((notice.stops_at * 1000 - nowMs) / 60000));
  const when = minutes === 1 ? '1 minute' : `${minutes} minutes`;
  return `This server stops in ${when} because nobody used it.`;
}

class NoticePoller {
  /**
   * @param {typeof import('vscode')} vscode
   * @param {{notice(): Promise<object|null>}} transport
   * @param {{urgent(cause: string): void}} reporter
   * @param {number} intervalS
   * @param {{warn(message: string): void}} log
   */
  constructor(vscode, transport, reporter, intervalS, log) {
    this.vscode = vscode;
    this.transport = transport;
    this.reporter = reporter;
    this.intervalMs = intervalS * 1000;
    this.log = log;
    this.shownId = null;
    this.timer = null;
    this.failures = 0;
    this.stopped = false;
  }

  start() {
    if (this.intervalMs > 0) {
      this._next(0);
    }
  }

  dispose() {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  _next(delayMs) {
    if (!this.stopped) {
      this.timer = setTimeout(() => this._poll(), delayMs);
    }
  }

  async _poll() {
    try {
      const notice = await this.transport.notice();
      if (this.failures > 0) {
        this.log.info(`notice poll works again after ${this.failures} failure(s)`);
      }
      this.failures = 0;
      if (notice && notice.id !== this.shownId) {
        this.shownId = notice.id;
        this._show(notice);
      }
    } catch (err) {
      this.failures += 1;
      if (this.failures === 1 || this.failures % 30 === 0) {
        this.log.warn(`notice poll failed (${this.failures}x): ${err.message}`);
      }
    }
    this._next(this.intervalMs);
  }

  _show(notice) {
    const text = noticeText(notice, Date.now());
    this.vscode.window.showWarningMessage(text, KEEP_WORKING).then((choice) => {
      if (choice === KEEP_WORKING) {
        this.reporter.urgent('keep-working');
      }
    });
  }
}

module.exports = { NoticePoller, noticeText, KEEP_WORKING };
