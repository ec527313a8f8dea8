import type { ErrorRequestHandler } from 'express';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import { ZodError } from 'zod';
import { fieldErrors, type FieldError } from './schemas';

/** An error that already knows its HTTP answer. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fields?: FieldError[],
  ) {
    super(message);
  }
}

export const validationFailed = (fields: FieldError[]) => new HttpError(400, 'validation_failed', 'the request has fields at fault', fields);

export const noOrder = (orderId: string) => new HttpError(404, 'not_found', `no order ${orderId}`);

/**
 * The one place errors become responses. No stack leaves; a 5xx is handed to the request log
 * (pino-http logs it once, with the request id), nothing below 500 is logged as an error.
 */
export function errorHandler(): ErrorRequestHandler {
  return (err, _req, res, _next) => {
    const answer = toHttpError(err);
    if (answer.status >= 500) res.err = err instanceof Error ? err : new Error(String(err));
    res.status(answer.status).json({
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
  const parseFailure = err as { type?: string; status?: number };
  if (parseFailure.type === 'entity.parse.failed') {
    return validationFailed([{ field: 'body', message: 'the body is not valid JSON' }]);
  }
  if (parseFailure.type === 'entity.too.large') return new HttpError(413, 'too_large', 'the body is too large');
  return new HttpError(500, 'internal', 'internal error');
}
