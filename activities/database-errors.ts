import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../contracts/errors';

const SQLSTATE = /^[0-9A-Z]{5}$/;

/**
 * The SQLSTATE of a database error, wherever the driver put it: node-postgres's DatabaseError
 * (`code`, with a `severity`), or Prisma's driver-adapter error (`originalCode`, under
 * `meta.driverAdapterError.cause`), possibly wrapped as a `cause`.
 */
export function sqlStateOf(err: unknown, depth = 0): string | undefined {
  if (!err || typeof err !== 'object' || depth > 5) return undefined;
  const e = err as { code?: unknown; severity?: unknown; originalCode?: unknown; meta?: { driverAdapterError?: unknown }; cause?: unknown };
  if (typeof e.originalCode === 'string' && SQLSTATE.test(e.originalCode)) return e.originalCode;
  if (typeof e.code === 'string' && SQLSTATE.test(e.code) && typeof e.severity === 'string') return e.code;
  return sqlStateOf(e.meta?.driverAdapterError, depth + 1) ?? sqlStateOf(e.cause, depth + 1);
}

/**
 * Errors no retry can fix: the data itself is refused. SQLSTATE class 22 (data exception: a NUL
 * in text, a lone surrogate in JSON, a value out of range) and class 23 (integrity constraint
 * violation: a missing parent row, a NOT NULL, a CHECK). Unique violations the activities expect
 * are absorbed by their own ON CONFLICT / skipDuplicates, so one that gets here is a real refusal.
 * Everything else (a lost connection, a deadlock, a serialization failure, a server shutting
 * down) is retried as before.
 */
export const isDataError = (state: string | undefined): boolean => !!state && (state.startsWith('22') || state.startsWith('23'));

/**
 * The activities, each turning a data error into a non-retryable `InvalidData` failure that names
 * the SQLSTATE: the order then fails with a reason and its compensations, instead of an activity
 * retrying one bad row forever. Every pool's activities are wrapped (workers/run.ts).
 */
export function classifyDatabaseErrors<T extends object>(activities: T): T {
  return Object.fromEntries(
    Object.entries(activities).map(([name, fn]) => [
      name,
      typeof fn !== 'function'
        ? fn
        : async (...args: unknown[]) => {
            try {
              return await (fn as (...a: unknown[]) => Promise<unknown>)(...args);
            } catch (err) {
              const state = sqlStateOf(err);
              if (!isDataError(state)) throw err;
              throw ApplicationFailure.create({
                type: ErrorType.InvalidData,
                message: `${name}: the database refused the data (SQLSTATE ${state})`,
                nonRetryable: true,
                details: [{ sqlState: state }],
              });
            }
          },
    ]),
  ) as T;
}
