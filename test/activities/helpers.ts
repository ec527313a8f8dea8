import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { expect } from 'vitest';

/**
 * Runs one activity attempt in a fresh mocked Activity Context, the way a worker would run it.
 * `attempt` is what the activity sees as its attempt number: retries ask the outside world first.
 */
export function runActivity<A, R>(fn: (input: A) => Promise<R>, input: A, attempt = 1): Promise<R> {
  return new MockActivityEnvironment({ attempt }).run<[A], R, typeof fn>(fn, input);
}

/** The ApplicationFailure a promise rejects with; fails the test if it resolves or throws anything else. */
export async function failureOf(promise: Promise<unknown>): Promise<ApplicationFailure> {
  let outcome: { resolved: unknown } | { rejected: unknown };
  try {
    outcome = { resolved: await promise };
  } catch (err) {
    outcome = { rejected: err };
  }
  if ('resolved' in outcome) {
    expect.fail(`expected an ApplicationFailure, but it resolved with ${JSON.stringify(outcome.resolved)}`);
  }
  expect(outcome.rejected).toBeInstanceOf(ApplicationFailure);
  return outcome.rejected as ApplicationFailure;
}

/**
 * A meeting point for `parties` concurrent calls: each waits until all have arrived (or until
 * `timeoutMs`, so a implementation that serialises the calls does not hang the test). Used to hold
 * two attempts of one activity at the provider together, the way a retry overlaps a stuck attempt.
 */
export function barrier(parties: number, timeoutMs = 2_000): () => Promise<void> {
  let arrived = 0;
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return async () => {
    arrived += 1;
    if (arrived >= parties) open();
    await Promise.race([opened, new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref())]);
  };
}
