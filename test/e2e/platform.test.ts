import { inject } from 'vitest';
import { describeE2eSuite } from '../support/e2e-suite';

/**
 * The platform as a user runs it on the Temporal dev server of the main suite: the four pools as
 * separate `node` processes (payments scaled to two) and the API, all over real sockets. The same
 * suite runs on the multi-node cluster in test/cluster/e2e.test.ts.
 */
describeE2eSuite({
  title: 'the platform end to end',
  temporalEnv: { TEMPORAL_ADDRESS: inject('temporalAddress') },
  namespace: 'e2e',
});
