import { pino, type Logger } from 'pino';

/** JSON lines on stdout, one event per line; the process name tells pools apart in a shared stream. */
export function createLogger(name: string, level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({
    name,
    level,
    base: { pid: process.pid, service: name },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['token', '*.token', 'payment.token', '*.payment.token'], censor: '[redacted]' },
  });
}
export type { Logger };
