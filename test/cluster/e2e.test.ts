import { describe, expect, inject, it } from 'vitest';
import { temporalConnectionSettings } from '../../lib/temporal/connection';
import { describeE2eSuite } from '../support/e2e-suite';

/**
 * The e2e suite (test/support/e2e-suite.ts) on the multi-node cluster: every platform process gets
 * the cluster's settings through its environment alone (TEMPORAL_ADDRESS and TEMPORAL_TLS_*: TLS
 * on, a client certificate of the cluster's CA), as a deployment sets them, and the frontend
 * serves no client without that certificate (test/cluster/cluster.test.ts), so every order that
 * ends here went through the connection factory's mTLS. Skipped outside the cluster suite.
 */
const env = inject('clusterEnv') as Record<string, string> | undefined;
const NAMESPACE = 'e2e';

describe.skipIf(!env)('on the Temporal cluster', () => {
  it('gives the platform’s processes mTLS from the environment alone', () => {
    expect(temporalConnectionSettings({ ...env, TEMPORAL_NAMESPACE: NAMESPACE }).summary).toBe(
      `${env!.TEMPORAL_ADDRESS}, namespace ${NAMESPACE}, TLS on, authentication mTLS`,
    );
  });

  if (env) describeE2eSuite({ title: 'the platform end to end, on the multi-node cluster (mTLS)', temporalEnv: env, namespace: NAMESPACE });
});
