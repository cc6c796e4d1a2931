'use strict';
/**
 * Child processes from /proc, to tell whether a terminal's shell is running something.
 *
 * /proc/<pid>/task/<tid>/children needs CONFIG_PROC_CHILDREN, which not every kernel (nor
 * gVisor) has, so this reads the parent pid from each /proc/<pid>/stat instead: one pass over
 * /proc answers for all terminals at once.
 */

const fs = require('fs');

/** Map of parent pid -> [child pid], from one pass over /proc (empty off Linux). */
function childrenByParent(procRoot = '/proc') {
  const byParent = new Map();
  let entries;
  try {
    entries = fs.readdirSync(procRoot);
  } catch (err) {
    return byParent; // no /proc: no busy terminals can be seen (documented in CONTRACT.md)
  }
  for (const entry of entries) {
    if (!/^[0-9]+$/.test(entry)) {
      continue;
    }
    let stat;
    try {
      stat = fs.readFileSync(`${procRoot}/${entry}/stat`, 'utf8');
    } catch (err) {
      continue; // the process exited between readdir and read
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the
    // last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(fields[1]);
    if (!byParent.has(ppid)) {
      byParent.set(ppid, []);
    }
    byParent.get(ppid).push(Number(entry));
  }
  return byParent;
}

/** The command line of `pid` as one string (at most 200 characters), or '' if it is gone. */
function commandLine(pid, procRoot = '/proc') {
  try {
    const raw = fs.readFileSync(`${procRoot}/${pid}/cmdline`, 'utf8');
    return raw.split('\0').filter(Boolean).join(' ').slice(0, 200);
  } catch (err) {
    return '';
  }
}

module.exports = { childrenByParent, commandLine };
