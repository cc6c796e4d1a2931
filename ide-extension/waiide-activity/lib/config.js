'use strict';
/**
 * The extension's settings, read once from the environment of the extension host (which
 * inherits code-server's, where the supervisor puts them). See ../CONTRACT.md.
 *
 * Plain JavaScript, no dependencies, so that it can be loaded by the extension host and by
 * node alone (the tests do).
 */

const net = require('net');

const ENV_URL = 'WAIIDE_ACTIVITY_URL';
const ENV_SECRET = 'WAIIDE_ACTIVITY_SECRET';
const ENV_MIN_INTERVAL = 'WAIIDE_ACTIVITY_MIN_INTERVAL';
const ENV_BUSY_INTERVAL = 'WAIIDE_ACTIVITY_BUSY_INTERVAL';
const ENV_NOTICE_INTERVAL = 'WAIIDE_ACTIVITY_NOTICE_INTERVAL';

const DEFAULTS = {
  minIntervalS: 5, // at most one report per 5 s; causes in between are coalesced
  busyIntervalS: 30, // busy work is re-reported this often, so the server can expire it
  noticeIntervalS: 10, // GET <url>/notice this often; 0 = never
};
// Bounds that keep a typo from turning the extension into a flood or a mute.
const BOUNDS = {
  minIntervalS: [0.5, 300],
  busyIntervalS: [1, 3600],
  noticeIntervalS: [0, 3600],
};
const LOOPBACK_NAMES = new Set(['localhost', 'localhost.localdomain', 'ip6-localhost']);

class ConfigError extends Error {}

/** True if `host` (a URL hostname, IPv6 without brackets) is a loopback address or name. */
function isLoopback(host) {
  if (LOOPBACK_NAMES.has(host.toLowerCase())) {
    return true;
  }
  if (net.isIPv4(host)) {
    return host.split('.')[0] === '127';
  }
  return net.isIPv6(host) && host === '::1';
}

function parseUrl(value) {
  let url;
  try {
    url = new URL(value);
  } catch (err) {
    throw new ConfigError(`${ENV_URL} has value '${value}': not a URL`);
  }
  if (url.protocol !== 'http:') {
    throw new ConfigError(`${ENV_URL} has value '${value}': only http:// on loopback is supported`);
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!isLoopback(host)) {
    // The secret travels in clear text: it must never leave the machine.
    throw new ConfigError(`${ENV_URL} has value '${value}': the host must be loopback`);
  }
  if (url.search || url.hash) {
    throw new ConfigError(`${ENV_URL} has value '${value}': no query or fragment allowed`);
  }
  return value.replace(/\/+$/, '');
}

function parseSeconds(environ, key, name) {
  const raw = environ[key];
  if (raw === undefined || raw === '') {
    return DEFAULTS[name];
  }
  const value = Number(raw);
  const [low, high] = BOUNDS[name];
  if (!Number.isFinite(value) || !/^\s*[0-9.]+\s*$/.test(raw)) {
    throw new ConfigError(`${key} has value '${raw}': not a number of seconds`);
  }
  if (value < low || value > high) {
    throw new ConfigError(`${key} has value '${raw}': must be between ${low} and ${high}`);
  }
  return value;
}

/**
 * The settings from `environ`, or null when reporting is not configured (no URL and no secret:
 * code-server started by something other than the supervisor).
 *
 * Throws ConfigError naming the variable and the value when a value is bad, or only one of URL
 * and secret is set.
 */
function fromEnv(environ) {
  const url = environ[ENV_URL] || '';
  const secret = environ[ENV_SECRET] || '';
  if (!url && !secret) {
    return null;
  }
  if (!url || !secret) {
    const missing = url ? ENV_SECRET : ENV_URL;
    throw new ConfigError(`${missing} is not set but ${url ? ENV_URL : ENV_SECRET} is`);
  }
  return Object.freeze({
    url: parseUrl(url),
    secret,
    minIntervalS: parseSeconds(environ, ENV_MIN_INTERVAL, 'minIntervalS'),
    busyIntervalS: parseSeconds(environ, ENV_BUSY_INTERVAL, 'busyIntervalS'),
    noticeIntervalS: parseSeconds(environ, ENV_NOTICE_INTERVAL, 'noticeIntervalS'),
  });
}

module.exports = { fromEnv, isLoopback, ConfigError, DEFAULTS };
