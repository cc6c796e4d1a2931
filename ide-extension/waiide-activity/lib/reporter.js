'use strict';
/**
 * The report queue: coalesces causes, rate-limits reports, re-sends busy work periodically and
 * retries when the gateway does not answer. Independent of VS Code (tests drive it with node).
 *
 * One report (see ../CONTRACT.md):
 *   {"v": 1, "session": "…", "cause": "editor", "causes": ["editor", "save"], "at": 1760000000.123,
 *    "busy": [{"kind": "terminal", "name": "sleep 30"}], "busy_ttl_s": 90}
 * "cause"/"causes"/"at" are null/[]/null in a report that only carries busy work.
 */

const crypto = require('crypto');

const CONTRACT_VERSION = 1;
const RETRY_MAX_S = 30;
const BUSY_TTL_FACTOR = 3; // the server drops a session's busy work after 3 missed heartbeats

function monotonicMs() {
  return performance.now();
}

function busyKey(items) {
  return JSON.stringify(items);
}

/** Sorted, de-duplicated copies of `{kind, name}` items, so that equal lists compare equal. */
function normaliseBusy(items) {
  const seen = new Map();
  for (const item of items) {
    const clean = { kind: String(item.kind), name: String(item.name).slice(0, 200) };
    seen.set(busyKey(clean), clean);
  }
  return [...seen.values()].sort((a, b) => (busyKey(a) < busyKey(b) ? -1 : 1));
}

class Reporter {
  /**
   * @param {object} options
   * @param {{send(report: object): Promise<void>}} options.transport
   * @param {number} options.minIntervalS at most one report per this many seconds
   * @param {number} options.busyIntervalS re-send busy work this often while there is some
   * @param {(message: string) => void} options.log
   */
  constructor({ transport, minIntervalS, busyIntervalS, log }) {
    this.transport = transport;
    this.minIntervalMs = minIntervalS * 1000;
    this.busyIntervalS = busyIntervalS;
    this.log = log;
    this.session = crypto.randomBytes(8).toString('hex');
    this.pendingCauses = new Set();
    this.pendingAtMs = null;
    this.pendingCause = null;
    this.sentAtMs = 0; // the newest "at" the server accepted
    this.busy = [];
    this.sentBusyKey = busyKey([]);
    this.heartbeatDue = false;
    this.lastSendMono = -Infinity;
    this.failures = 0;
    this.timer = null;
    this.inFlight = null;
    this.disposed = false;
    this.heartbeat = setInterval(() => this._onHeartbeat(), busyIntervalS * 1000);
  }

  /** A user-caused event of kind `cause` that happened at `atMs` (wall clock, default now). */
  activity(cause, atMs = Date.now()) {
    if (atMs <= this.sentAtMs || (this.pendingAtMs !== null && atMs < this.pendingAtMs)) {
      // Nothing newer than what is known: an "input" lower bound that has not moved, say.
      if (atMs > this.sentAtMs) {
        this.pendingCauses.add(cause);
      }
      return;
    }
    this.pendingCauses.add(cause);
    this.pendingAtMs = atMs;
    this.pendingCause = cause;
    this._schedule();
  }

  /** Reports `cause` now, ahead of the rate limit (the notice's "Keep working" button). */
  urgent(cause) {
    this.activity(cause);
    this.lastSendMono = -Infinity;
    this._reschedule();
  }

  /** The complete list of busy work now (`[{kind, name}]`); reported when it changed. */
  setBusy(items) {
    const next = normaliseBusy(items);
    if (busyKey(next) === busyKey(this.busy)) {
      return;
    }
    this.busy = next;
    this._schedule();
  }

  /** Stops the timers; sends a last report with no busy work if busy work was reported. */
  async dispose() {
    if (this.disposed) {
      return;
    }
    this.disposed = true;
    clearInterval(this.heartbeat);
    clearTimeout(this.timer);
    this.timer = null;
    if (this.inFlight) {
      await this.inFlight.catch(() => undefined); // its failure was logged by _flush
    }
    if (this.sentBusyKey !== busyKey([])) {
      await this.transport.send(this._report([], null, [], null)).then(
        () => { this.sentBusyKey = busyKey([]); },
        (err) => this.log(`last report failed: ${err.message}`),
      );
    }
  }

  _onHeartbeat() {
    if (this.busy.length > 0) {
      this.heartbeatDue = true;
      this._schedule();
    }
  }

  _hasSomethingToSend() {
    return this.pendingAtMs !== null || this.heartbeatDue || busyKey(this.busy) !== this.sentBusyKey;
  }

  _delayMs() {
    const wait = this.lastSendMono + this.minIntervalMs - monotonicMs();
    if (this.failures > 0) {
      const backoff = Math.min(RETRY_MAX_S * 1000, Math.max(this.minIntervalMs, 1000) * 2 ** (this.failures - 1));
      return Math.max(wait, backoff - (monotonicMs() - this.lastSendMono), 0);
    }
    return Math.max(wait, 0);
  }

  _schedule() {
    if (this.disposed || this.timer !== null || this.inFlight !== null || !this._hasSomethingToSend()) {
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      this._flush();
    }, this._delayMs());
  }

  _reschedule() {
    clearTimeout(this.timer);
    this.timer = null;
    this._schedule();
  }

  _report(busy, cause, causes, atMs) {
    return {
      v: CONTRACT_VERSION,
      session: this.session,
      cause,
      causes,
      at: atMs === null ? null : Math.round(atMs) / 1000,
      busy,
      busy_ttl_s: this.busyIntervalS * BUSY_TTL_FACTOR,
    };
  }

  _flush() {
    if (!this._hasSomethingToSend()) {
      return;
    }
    const causes = [...this.pendingCauses];
    const atMs = this.pendingAtMs;
    const cause = this.pendingCause;
    const busy = this.busy;
    const report = this._report(busy, cause, causes, atMs);
    this.pendingCauses = new Set();
    this.pendingAtMs = null;
    this.pendingCause = null;
    this.heartbeatDue = false;
    this.lastSendMono = monotonicMs();
    this.inFlight = this.transport.send(report).then(
      () => {
        this.failures = 0;
        this.sentBusyKey = busyKey(busy);
        if (atMs !== null) {
          this.sentAtMs = Math.max(this.sentAtMs, atMs);
        }
      },
      (err) => {
        this.failures += 1;
        if (this.failures === 1 || this.failures % 10 === 0) {
          this.log(`report failed (${this.failures}x), will retry: ${err.message}`);
        }
        this._restore(causes, cause, atMs);
      },
    ).finally(() => {
      this.inFlight = null;
      this._schedule();
    });
  }

  /** Puts an unsent report's activity back, merged with what came meanwhile. */
  _restore(causes, cause, atMs) {
    for (const each of causes) {
      this.pendingCauses.add(each);
    }
    if (atMs !== null && (this.pendingAtMs === null || atMs > this.pendingAtMs)) {
      this.pendingAtMs = atMs;
      this.pendingCause = cause;
    }
    this.heartbeatDue = this.heartbeatDue || this.busy.length > 0;
  }
}

module.exports = { Reporter, CONTRACT_VERSION, BUSY_TTL_FACTOR, normaliseBusy };
