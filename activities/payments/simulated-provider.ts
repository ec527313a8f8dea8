import type pg from 'pg';
import { NO_FAULTS, createLedger, deterministicId, type FaultConfig } from '../../lib/sandbox';
import { TEST_TOKENS, type AuthoriseResponse, type PaymentProvider } from './provider';

const SYSTEM = 'payment-provider';

/** A deterministic payment provider whose ledger lives in the sandbox database. */
export function createSimulatedPaymentProvider(pool: pg.Pool, faults: FaultConfig = NO_FAULTS): PaymentProvider {
  const ledger = createLedger(pool, SYSTEM, faults);
  async function authorisationStatus(client: pg.PoolClient, id: string) {
    const found = await client.query<{ status: string; amount: number; captured: number; refunded: number }>(
      'SELECT status, amount, captured, refunded FROM sim_authorisations WHERE id = $1 FOR UPDATE',
      [id],
    );
    const row = found.rows[0];
    if (!row) throw new Error(`provider: no authorisation ${id}`);
    return row;
  }

  return {
    authorise: ({ idempotencyKey, amount, currency, token }) =>
      ledger.once<AuthoriseResponse>(idempotencyKey, async (client) => {
        const verdict = (TEST_TOKENS as Record<string, string>)[token] ?? 'invalid_token';
        if (verdict !== 'approved') {
          return { kind: 'authorise', amount, response: { outcome: 'declined', reason: verdict } };
        }
        const authorisationId = deterministicId('auth', idempotencyKey);
        await client.query(`INSERT INTO sim_authorisations (id, amount, currency, status) VALUES ($1, $2, $3, 'AUTHORISED')`, [
          authorisationId,
          amount,
          currency,
        ]);
        return { kind: 'authorise', subject: authorisationId, amount, response: { outcome: 'approved', authorisationId } };
      }),

    capture: ({ idempotencyKey, authorisationId, amount }) =>
      ledger.once(idempotencyKey, async (client) => {
        const auth = await authorisationStatus(client, authorisationId);
        if (auth.status !== 'AUTHORISED') throw new Error(`provider: cannot capture a ${auth.status} authorisation`);
        if (amount > auth.amount) throw new Error(`provider: capture of ${amount} exceeds authorised ${auth.amount}`);
        await client.query(`UPDATE sim_authorisations SET status = 'CAPTURED', captured = $2 WHERE id = $1`, [authorisationId, amount]);
        const captureId = deterministicId('cap', idempotencyKey);
        return { kind: 'capture', subject: authorisationId, amount, response: { captureId } };
      }),

    void: ({ idempotencyKey, authorisationId }) =>
      ledger.once(idempotencyKey, async (client) => {
        const auth = await authorisationStatus(client, authorisationId);
        if (auth.status === 'CAPTURED') throw new Error('provider: a captured payment is refunded, not voided');
        await client.query(`UPDATE sim_authorisations SET status = 'VOIDED' WHERE id = $1`, [authorisationId]);
        return { kind: 'void', subject: authorisationId, response: { voided: auth.status === 'AUTHORISED' } };
      }),

    refund: ({ idempotencyKey, authorisationId, amount }) =>
      ledger.once(idempotencyKey, async (client) => {
        const auth = await authorisationStatus(client, authorisationId);
        if (auth.status !== 'CAPTURED') throw new Error(`provider: cannot refund a ${auth.status} payment`);
        if (amount > auth.captured - auth.refunded) throw new Error('provider: refund exceeds what was captured');
        await client.query(`UPDATE sim_authorisations SET status = 'REFUNDED', refunded = refunded + $2 WHERE id = $1`, [authorisationId, amount]);
        return { kind: 'refund', subject: authorisationId, amount, response: { refundId: deterministicId('ref', idempotencyKey) } };
      }),

    lookup: (idempotencyKey) => ledger.lookup(idempotencyKey),
  };
}
