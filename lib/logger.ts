import { pino, type DestinationStream, type Logger } from 'pino';
import pretty from 'pino-pretty';

/**
 * JSON lines on stdout, one event per line; the process name tells pools apart in a shared stream.
 * With LOG_PRETTY=1 (set by `npm start` when its stdout is a terminal) the same events are
 * printed for a person instead; anything else (CI, files, the container) keeps JSON.
 */
export function createLogger(name: string, level = process.env.LOG_LEVEL ?? 'info', destination?: DestinationStream): Logger {
  const options = {
    name,
    level,
    base: { pid: process.pid, service: name },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['token', '*.token', 'payment.token', '*.payment.token'], censor: '[redacted]' },
  };
  if (destination) return pino(options, destination);
  if (process.env.LOG_PRETTY !== '1') return pino(options);
  // A stream in this thread, not a transport's worker thread: the last lines before process.exit still print.
  return pino(options, pretty({ colorize: true, sync: true, singleLine: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service' }));
}
export type { Logger };
