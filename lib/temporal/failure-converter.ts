import { DefaultFailureConverter } from '@temporalio/common';

/**
 * Failures with their message and stack trace moved into an encoded attribute, so the payload
 * codec seals them like any other payload: what Temporal stores and serves of a failure is only
 * "Encoded failure". Loaded by path, in the worker's main thread and inside the workflow bundle.
 */
export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
