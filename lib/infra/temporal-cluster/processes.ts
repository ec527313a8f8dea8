import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** One server process: its own process group, its output appended to its log file. */
export interface NodeProcess {
  readonly name: string;
  readonly logFile: string;
  /** the running process's id; undefined while it is down */
  pid(): number | undefined;
  running(): boolean;
  /** starts it (again); it must not be running */
  start(): void;
  /** SIGKILL to its process group, and waits for it to be gone */
  kill(): Promise<void>;
  /** SIGTERM to its process group, SIGKILL after the grace period */
  stop(graceMs?: number): Promise<void>;
  /** settles when the current run exits, with how it ended */
  exited(): Promise<string>;
}

export interface NodeCommand {
  name: string;
  command: string;
  args: string[];
  logFile: string;
  /** pid files live here, so the next start can end processes a crashed run left behind */
  runDir: string;
  /** called when the process ends without having been asked to */
  onUnexpectedExit?: (name: string, how: string) => void;
}

/** Written to a log before each start, so the tail of a failed start shows that start's lines only. */
const START_MARK = '--- start of';

/** Groups that must not outlive this Node process, whatever way it exits (tests that throw, Ctrl-C handled elsewhere). */
const liveGroups = new Set<number>();
let exitHookInstalled = false;
function killGroupsOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const pid of liveGroups) signalGroup(pid, 'SIGKILL');
  });
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

export function nodeProcess({ name, command, args, logFile, runDir, onUnexpectedExit }: NodeCommand): NodeProcess {
  let child: ChildProcess | undefined;
  let exit: Promise<string> = Promise.resolve('not started');
  let expected = false;
  const pidFile = join(runDir, `${name}.pid`);

  const node: NodeProcess = {
    name,
    logFile,
    pid: () => (node.running() ? child?.pid : undefined),
    running: () => !!child && child.exitCode === null && child.signalCode === null,
    start() {
      if (node.running()) throw new Error(`${name} is already running (pid ${child?.pid})`);
      killGroupsOnExit();
      // The log file is the child's own stdout and stderr: it keeps every line even when this process is busy or gone.
      const fd = openSync(logFile, 'a');
      try {
        writeSync(fd, `${START_MARK} ${name} ${new Date().toISOString()}\n`);
        child = spawn(command, args, { detached: true, stdio: ['ignore', fd, fd] });
      } finally {
        closeSync(fd);
      }
      expected = false;
      const started = child;
      const pid = started.pid;
      if (pid !== undefined) {
        liveGroups.add(pid);
        void writeFile(pidFile, `${pid}\n${command}\n${args.join('\n')}\n`).catch(() => undefined);
      }
      exit = new Promise((resolve) => {
        started.once('error', (err) => resolve(`could not start: ${err.message}`));
        started.once('exit', (code, signal) => {
          if (pid !== undefined) liveGroups.delete(pid);
          const how = signal ? `killed by ${signal}` : `exit code ${code}`;
          if (!expected) onUnexpectedExit?.(name, how);
          resolve(how);
        });
      });
    },
    async kill() {
      const pid = node.pid();
      if (pid === undefined) return;
      expected = true;
      signalGroup(pid, 'SIGKILL');
      await exit;
    },
    async stop(graceMs = 15_000) {
      const pid = node.pid();
      if (pid === undefined) return;
      expected = true;
      signalGroup(pid, 'SIGTERM');
      const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), graceMs);
      await exit;
      clearTimeout(timer);
      await rm(pidFile, { force: true });
    },
    exited: () => exit,
  };
  return node;
}

/**
 * Ends the server processes a previous run in `runDir` left behind (its Node process killed with
 * SIGKILL, say): nodes still heartbeating into the same databases would join the new cluster's
 * ring with stale ports. Only a process whose command line is still the one recorded is touched.
 */
export async function endLeftoverNodes(runDir: string, log: (msg: string) => void = () => undefined): Promise<void> {
  await mkdir(runDir, { recursive: true });
  for (const file of await readdir(runDir)) {
    if (!file.endsWith('.pid')) continue;
    const [pidLine = '', ...recorded] = (await readFile(join(runDir, file), 'utf8')).trimEnd().split('\n');
    const pid = Number(pidLine);
    const cmdline = `/proc/${pid}/cmdline`;
    if (
      Number.isInteger(pid) &&
      pid > 0 &&
      existsSync(cmdline) &&
      readFileSync(cmdline, 'utf8').split('\0').filter(Boolean).join('\n') === recorded.join('\n')
    ) {
      log(`ending ${file.replace(/\.pid$/, '')} (pid ${pid}), left running by an earlier start`);
      signalGroup(pid, 'SIGKILL');
      for (let i = 0; i < 50 && existsSync(cmdline); i++) await new Promise((r) => setTimeout(r, 100));
    }
    await rm(join(runDir, file), { force: true });
  }
}

/**
 * The end of a log file, for an error message: the last lines, each cut to its level, message and
 * error (the server logs JSON lines with whole stack traces), so the reason a node stopped shows.
 */
export async function tailLog(file: string, lines = 15): Promise<string> {
  let text: string;
  try {
    const handle = await open(file, 'r');
    try {
      const { size } = await handle.stat();
      const length = Math.min(size, 256 * 1024);
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, size - length);
      text = buffer.toString('utf8');
    } finally {
      await handle.close();
    }
  } catch (err) {
    return `(no log: ${(err as Error).message})`;
  }
  const thisRun = text.slice(Math.max(0, text.lastIndexOf(START_MARK)));
  return thisRun.split('\n').filter(Boolean).slice(-lines).map(summariseLine).join('\n');
}

function summariseLine(line: string): string {
  try {
    const entry = JSON.parse(line) as { level?: string; msg?: string; error?: string };
    return `${entry.level ?? '?'}: ${entry.msg ?? ''}${entry.error ? `: ${entry.error}` : ''}`.slice(0, 600);
  } catch {
    return line.slice(0, 1000);
  }
}
