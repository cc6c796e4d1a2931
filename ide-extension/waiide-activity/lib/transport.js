'use strict';
/**
 * HTTP to the gateway's activity route (loopback only, see config.js): POST a report, GET the
 * pending notice. Every request carries the secret header and has a deadline.
 */

const http = require('http');

const SECRET_HEADER = 'X-WAIIDE-Activity-Secret';
const REQUEST_TIMEOUT_MS = 5000;
const MAX_RESPONSE_BYTES = 64 * 1024;

class TransportError extends Error {}

/**
 * One request; resolves `{status, body}` (body a string), rejects with TransportError on a
 * network error, a timeout, or a response larger than MAX_RESPONSE_BYTES.
 */
function request(method, url, secret, body) {
  return new Promise((resolve, reject) => {
    const headers = { [SECRET_HEADER]: secret, Accept: 'application/json' };
    let payload = null;
    if (body !== undefined) {
      payload = Buffer.from(JSON.stringify(body), 'utf8');
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = String(payload.length);
    }
    // agent: false: a fresh connection each time. Reports are seconds apart, and a pooled
    // socket the gateway closed meanwhile would fail the next request (ECONNRESET).
    const req = http.request(url, { method, headers, agent: false, timeout: REQUEST_TIMEOUT_MS });
    req.on('timeout', () => req.destroy(new TransportError(`${method} ${url}: no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', (err) => reject(err instanceof TransportError ? err : new TransportError(`${method} ${url}: ${err.message}`)));
    req.on('response', (res) => {
      const chunks = [];
      let size = 0;
      res.on('data', (chunk) => {
        size += chunk.length;
        if (size > MAX_RESPONSE_BYTES) {
          req.destroy(new TransportError(`${method} ${url}: response over ${MAX_RESPONSE_BYTES} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (err) => reject(new TransportError(`${method} ${url}: ${err.message}`)));
    });
    req.end(payload);
  });
}

/** Sends reports and polls notices for one configuration. */
class Transport {
  constructor(config) {
    this.reportUrl = config.url;
    this.noticeUrl = `${config.url}/notice`;
    this.secret = config.secret;
  }

  /** POST a report; resolves when the server accepted it (2xx), rejects otherwise. */
  async send(report) {
    const { status, body } = await request('POST', this.reportUrl, this.secret, report);
    if (status < 200 || status > 299) {
      throw new TransportError(`POST ${this.reportUrl}: status ${status} ${body.slice(0, 200)}`);
    }
  }

  /** The pending notice (an object), or null when there is none (204). */
  async notice() {
    const { status, body } = await request('GET', this.noticeUrl, this.secret);
    if (status === 204) {
      return null;
    }
    if (status !== 200) {
      throw new TransportError(`GET ${this.noticeUrl}: status ${status} ${body.slice(0, 200)}`);
    }
    let parsed;
    try {
      parsed = JSON.parse(body);
    } catch (err) {
      throw new TransportError(`GET ${this.noticeUrl}: not JSON: ${body.slice(0, 200)}`);
    }
    if (!parsed || typeof parsed.id !== 'string' || !parsed.id || typeof parsed.stops_at !== 'number') {
      throw new TransportError(`GET ${this.noticeUrl}: a notice needs "id" (string) and "stops_at" (number): ${body.slice(0, 200)}`);
    }
    return parsed;
  }
}

module.exports = { Transport, TransportError, SECRET_HEADER, REQUEST_TIMEOUT_MS };
