import { Context } from '@temporalio/activity';

/**
 * Calls the outside world (provider, carrier) with an idempotency key. On a retry it first asks
 * what happened to the key: the previous attempt may have been applied with its answer lost in a
 * timeout, and the question is cheaper and safer than a second try.
 */
export async function callWithKey<R>(lookup: <T>(key: string) => Promise<T | undefined>, key: string, call: () => Promise<R>): Promise<R> {
  if (Context.current().info.attempt > 1) {
    const earlier = await lookup<R>(key);
    if (earlier !== undefined) return earlier;
  }
  return call();
}
