import type { ErrorRequestHandler } from 'express';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, isGrpcDeadlineError } from '@temporalio/client';
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
  const bodyError = err as { type?: string; status?: number; expose?: boolean; message: string };
  const known = bodyError.type ? BODY_ERRORS[bodyError.type] : undefined;
  if (known) return known(bodyError);
  // Any other refusal of the body (a corrupt gzip stream, …) that the parser marked as the caller's.
  if (bodyError.expose && bodyError.status && bodyError.status >= 400 && bodyError.status < 500) {
    return new HttpError(400, 'bad_request', 'the request body cannot be read (a corrupt or truncated encoding?)');
  }
  return new HttpError(500, 'internal', 'internal error');
}
