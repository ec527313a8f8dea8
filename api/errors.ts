import type { ErrorRequestHandler } from 'express';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, isGrpcDeadlineError, isGrpcServiceError } from '@temporalio/client';
import { ZodError } from 'zod';
import { sqlStateOf } from '../activities/database-errors';
import { fieldErrors, type FieldError } from './schemas';

/** An error that already knows its HTTP answer. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fields?: FieldError[],
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }
}

export const validationFailed = (fields: FieldError[]) => new HttpError(400, 'validation_failed', 'the request has fields at fault', fields);

export const noOrder = (orderId: string) => new HttpError(404, 'not_found', `no order ${orderId}`);

/** The request's deadline (api/limits.ts): its timer answers this, and so does a Temporal call that met the same deadline first. */
const deadlineExceeded = () => new HttpError(503, 'timeout', 'no answer within the request deadline; retry the request', undefined, { 'Retry-After': '1' });

/** A part the request needs (Temporal, a database) cannot take it right now: the caller retries, nothing was done. */
const unavailable = (what: string, retryAfterSeconds: number) =>
  new HttpError(503, 'unavailable', `${what}; retry the request`, undefined, { 'Retry-After': String(retryAfterSeconds) });

/** The gRPC status of a Temporal call's failure, wherever the client put it (the error, or a ServiceError's cause). */
function grpcStatusOf(err: unknown, depth = 0): number | undefined {
  if (!err || typeof err !== 'object' || depth > 3) return undefined;
  if (isGrpcServiceError(err)) return err.code;
  return grpcStatusOf((err as { cause?: unknown }).cause, depth + 1);
}

/**
 * Temporal refusing for now, not for good. CANCELLED: the call was cut off (its connection dropped
 * as a frontend restarted); UNAVAILABLE: the frontend cannot be reached (or a node restarts);
 * RESOURCE_EXHAUSTED: the namespace's rate limits; FAILED_PRECONDITION: the workflow cannot take a
 * message while its workflow task is failing (an update, a query), until a fix ships. Every request
 * that meets one is safe to retry: placing is idempotent on its key, cancels and reads too.
 */
const TEMPORAL_UNAVAILABLE: Partial<Record<number, () => HttpError>> = {
  /* CANCELLED */ 1: () => unavailable('the call to Temporal was cut off (a frontend restarting, say)', 1),
  /* DEADLINE_EXCEEDED, as the cause of an update's RPC timeout */ 4: deadlineExceeded,
  /* UNAVAILABLE */ 14: () => unavailable('Temporal cannot be reached right now', 1),
  /* RESOURCE_EXHAUSTED */ 8: () => unavailable('Temporal is over its rate limit right now', 1),
  /* FAILED_PRECONDITION */ 9: () => unavailable("the order's workflow cannot take requests right now (its workflow task is being retried)", 30),
};

/**
 * The database out of reach: a refused or dropped connection, no free connection in time, the
 * server shutting down or starting up, or over its connection limit (Prisma's P1001, P1002,
 * P1008, P1017, P2024; SQLSTATE classes 08 and 57P0x, and 53300).
 */
const DATABASE_UNAVAILABLE_CODES = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024']);
const DATABASE_UNAVAILABLE_KINDS = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections']);
function isDatabaseUnavailable(err: unknown): boolean {
  const e = err as { code?: unknown; meta?: { driverAdapterError?: { cause?: { kind?: unknown } } }; message?: unknown };
  if (typeof e?.code === 'string' && DATABASE_UNAVAILABLE_CODES.has(e.code)) return true;
  const kind = e?.meta?.driverAdapterError?.cause?.kind;
  if (typeof kind === 'string' && DATABASE_UNAVAILABLE_KINDS.has(kind)) return true;
  const state = sqlStateOf(err);
  if (state && (state.startsWith('08') || /^57P0[1-3]$/.test(state) || state === '53300')) return true;
  // node-postgres's own pool: no connection within connectionTimeoutMillis, or one that dropped.
  return typeof e?.message === 'string' && /timeout exceeded when trying to connect|Connection terminated/.test(e.message);
}

/**
 * The answers to what body-parser refuses (it tags its errors with a `type`): what the API cannot
 * read is the caller's fault, never a 500.
 */
const BODY_ERRORS: Record<string, (err: { message: string; charset?: string; encoding?: string }) => HttpError> = {
  'charset.unsupported': (e) => new HttpError(415, 'unsupported_media_type', `unsupported charset "${e.charset ?? ''}": send UTF-8 JSON`),
  'encoding.unsupported': (e) =>
    new HttpError(415, 'unsupported_media_type', `unsupported Content-Encoding "${e.encoding ?? ''}": send the body as identity, gzip, deflate or br`),
  'entity.too.large': () => new HttpError(413, 'too_large', 'the body is larger than 64 kB'),
  'entity.parse.failed': () => validationFailed([{ field: 'body', message: 'the body is not valid JSON' }]),
  'request.aborted': () => new HttpError(400, 'bad_request', 'the request body ended early'),
  'request.size.invalid': () => new HttpError(400, 'bad_request', 'the body is not as long as its Content-Length says'),
};

/**
 * The one place errors become responses. No stack leaves; a 5xx is handed to the request log
 * (pino-http logs it once, with the request id), nothing below 500 is logged as an error.
 */
export function errorHandler(): ErrorRequestHandler {
  return (err, _req, res, _next) => {
    if (res.headersSent) return;
    const answer = toHttpError(err);
    // A deadline is the caller's answer, not a fault of ours: logged as its 503, with no stack.
    // An unavailable part is logged with its error: an operator wants to know what was down.
    if (answer.status >= 500 && answer.code !== 'timeout') res.err = err instanceof Error ? err : new Error(String(err));
    res
      .status(answer.status)
      .set(answer.headers ?? {})
      .json({
        error: answer.code,
        message: answer.message,
        ...(answer.fields ? { fields: answer.fields } : {}),
      });
  };
}

function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof ZodError) return validationFailed(fieldErrors(err));
  if (err instanceof WorkflowNotFoundError) return new HttpError(404, 'not_found', 'no such order');
  if (err instanceof WorkflowExecutionAlreadyStartedError) return new HttpError(409, 'conflict', 'the order already exists');
  // The call carried the request's deadline (client.withDeadline) and its own timer fired before the request's: the same 503.
  if (isGrpcDeadlineError(err)) return deadlineExceeded();
  // The same for a database statement cut short by the pool's statement_timeout (the request's deadline): query_canceled.
  if (sqlStateOf(err) === '57014') return deadlineExceeded();
  const grpcStatus = grpcStatusOf(err);
  const temporalRefusal = grpcStatus === undefined ? undefined : TEMPORAL_UNAVAILABLE[grpcStatus];
  if (temporalRefusal) return temporalRefusal();
  if (isDatabaseUnavailable(err)) return unavailable('a database the request needs cannot be reached right now', 2);
  const bodyError = err as { type?: string; status?: number; expose?: boolean; message: string };
  const known = bodyError.type ? BODY_ERRORS[bodyError.type] : undefined;
  if (known) return known(bodyError);
  // Any other refusal of the body (a corrupt gzip stream, …) that the parser marked as the caller's.
  if (bodyError.expose && bodyError.status && bodyError.status >= 400 && bodyError.status < 500) {
    return new HttpError(400, 'bad_request', 'the request body cannot be read (a corrupt or truncated encoding?)');
  }
  return new HttpError(500, 'internal', 'internal error');
}
