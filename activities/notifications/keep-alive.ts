import { Context } from '@temporalio/activity';

/**
 * Heartbeats while a long activity runs, so a worker that dies mid-way is noticed within the
 * activity's heartbeat timeout rather than its whole start-to-close timeout. Nothing is sent for
 * the first `everyMs` (each heartbeat is a billable action, and most calls end well before), and
 * the SDK throttles the rest to a fraction of the timeout. Returns the function that stops it.
 */
export function keepAlive(everyMs = 2_000): () => void {
  const context = Context.current();
  const timer = setInterval(() => context.heartbeat(), everyMs);
  return () => clearInterval(timer);
}
