import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPaymentActivities, type PaymentActivities } from '../../activities/payments';
import { createPaymentsDb, type PaymentsDb } from '../../activities/payments/db';
import type { PaymentProvider } from '../../activities/payments/provider';
import { createSimulatedPaymentProvider } from '../../activities/payments/simulated-provider';
import type { AuthorisePaymentInput } from '../../contracts/payments';
import { createPool, type Pool } from '../../lib/db';
import { NO_FAULTS, SimulatedFault, deterministicId } from '../../lib/sandbox';
import { createTestDatabases } from '../support/databases';
import { barrier, failureOf, runActivity } from './helpers';

let pool: Pool;
let sandbox: Pool;
let db: PaymentsDb;
let provider: PaymentProvider;
let acts: PaymentActivities;

beforeAll(async () => {
  const urls = await createTestDatabases('act_payments');
  pool = createPool(urls.payments, 3, 'test');
  sandbox = createPool(urls.sandbox, 3, 'test');
  db = createPaymentsDb(pool);
  provider = createSimulatedPaymentProvider(sandbox);
  acts = createPaymentActivities({ db, provider });
});

afterAll(async () => {
  await db?.$disconnect();
  await Promise.all([pool?.end(), sandbox?.end()]);
});

const newPayment = (token = 'tok_visa', amount = 2598): AuthorisePaymentInput => {
  const orderId = randomUUID();
  return { paymentId: `order-${orderId}:payment`, orderId, amount, currency: 'EUR', token };
};
const refOf = ({ paymentId, orderId }: AuthorisePaymentInput) => ({ paymentId, orderId });

/** What the provider's ledger holds for one payment: every operation made with one of its keys. */
async function providerOperations(paymentId: string) {
  const { rows } = await sandbox.query<{ idempotency_key: string; kind: string; subject: string | null; amount: number | null; response: unknown }>(
    `SELECT idempotency_key, kind, subject, amount, response FROM sim_operations
      WHERE starts_with(idempotency_key, $1) ORDER BY created_at, idempotency_key`,
    [`${paymentId}:`],
  );
  return rows;
}

async function providerAuthorisations(id: string) {
  const { rows } = await sandbox.query<{ amount: number; currency: string; status: string; captured: number; refunded: number }>(
    'SELECT amount, currency, status, captured, refunded FROM sim_authorisations WHERE id = $1',
    [id],
  );
  return rows;
}

async function paymentRows(paymentId: string) {
  const { rows } = await pool.query<{
    status: string;
    amount: number;
    currency: string;
    authorisation_id: string | null;
    captured_amount: number;
    refunded_amount: number;
    decline_reason: string | null;
  }>(
    `SELECT status, amount, currency, authorisation_id, captured_amount, refunded_amount, decline_reason
       FROM payments WHERE id = $1`,
    [paymentId],
  );
  return rows;
}

async function localOperations(paymentId: string) {
  const { rows } = await pool.query<{ kind: string; amount: number; outcome: string }>(
    'SELECT kind, amount, outcome FROM payment_operations WHERE payment_id = $1 ORDER BY created_at, kind',
    [paymentId],
  );
  return rows;
}

/** A provider whose answers to `kind` calls are lost on the way back, after the provider applied them. */
function losingAnswersTo(kind: 'authorise' | 'capture'): PaymentProvider {
  return {
    ...provider,
    [kind]: async (req: never) => {
      await (provider[kind] as (r: never) => Promise<unknown>)(req);
      throw new Error('connection reset by peer');
    },
  };
}

describe('payment activities against PostgreSQL and the simulated provider', () => {
  it('authorisePayment called twice authorises once at the provider', async () => {
    const input = newPayment();

    const first = await runActivity(acts.authorisePayment, input);
    const second = await runActivity(acts.authorisePayment, input, 2);

    const authorisationId = deterministicId('auth', `${input.paymentId}:authorise`);
    expect(first).toEqual({ paymentId: input.paymentId, authorisationId, amount: 2598, currency: 'EUR' });
    expect(second).toEqual(first);
    expect(await providerOperations(input.paymentId)).toEqual([
      {
        idempotency_key: `${input.paymentId}:authorise`,
        kind: 'authorise',
        subject: authorisationId,
        amount: 2598,
        response: { outcome: 'approved', authorisationId },
      },
    ]);
    expect(await providerAuthorisations(authorisationId)).toEqual([{ amount: 2598, currency: 'EUR', status: 'AUTHORISED', captured: 0, refunded: 0 }]);
    expect(await paymentRows(input.paymentId)).toEqual([
      {
        status: 'AUTHORISED',
        amount: 2598,
        currency: 'EUR',
        authorisation_id: authorisationId,
        captured_amount: 0,
        refunded_amount: 0,
        decline_reason: null,
      },
    ]);
    expect(await localOperations(input.paymentId)).toEqual([{ kind: 'AUTHORISE', amount: 2598, outcome: 'approved' }]);
  });

  it('two attempts overlapping at the provider authorise once and both succeed', async () => {
    const input = newPayment('tok_mastercard', 999);
    const together = barrier(2);
    const overlapping = createPaymentActivities({
      db,
      provider: {
        ...provider,
        authorise: async (req) => {
          await together();
          return provider.authorise(req);
        },
      },
    });

    const [a, b] = await Promise.all([runActivity(overlapping.authorisePayment, input), runActivity(overlapping.authorisePayment, input, 2)]);

    expect(b).toEqual(a);
    expect((await providerOperations(input.paymentId)).map((o) => o.kind)).toEqual(['authorise']);
    expect(await providerAuthorisations(a.authorisationId)).toMatchObject([{ status: 'AUTHORISED', amount: 999 }]);
    expect((await paymentRows(input.paymentId)).map((p) => p.status)).toEqual(['AUTHORISED']);
    expect((await localOperations(input.paymentId)).map((o) => o.kind)).toEqual(['AUTHORISE']);
  });

  it('a declined card is a non-retryable PaymentDeclined, and a repeat asks the provider nothing more', async () => {
    const input = newPayment('tok_declined');

    const first = await failureOf(runActivity(acts.authorisePayment, input));
    const second = await failureOf(runActivity(acts.authorisePayment, input, 2));

    for (const failure of [first, second]) {
      expect(failure.type).toBe('PaymentDeclined');
      expect(failure.nonRetryable).toBe(true);
      expect(failure.message).toContain('card_declined');
    }
    const ops = await providerOperations(input.paymentId);
    expect(ops).toEqual([
      {
        idempotency_key: `${input.paymentId}:authorise`,
        kind: 'authorise',
        subject: null,
        amount: 2598,
        response: { outcome: 'declined', reason: 'card_declined' },
      },
    ]);
    expect(await providerAuthorisations(deterministicId('auth', `${input.paymentId}:authorise`))).toEqual([]);
    expect(await paymentRows(input.paymentId)).toMatchObject([{ status: 'DECLINED', authorisation_id: null, decline_reason: 'card_declined' }]);
  });

  it('capturePayment called twice captures once', async () => {
    const input = newPayment('tok_visa', 4999);
    const { authorisationId } = await runActivity(acts.authorisePayment, input);

    const first = await runActivity(acts.capturePayment, refOf(input));
    const second = await runActivity(acts.capturePayment, refOf(input), 2);

    const captureId = deterministicId('cap', `${input.paymentId}:capture`);
    expect(first).toEqual({ paymentId: input.paymentId, captureId, amount: 4999 });
    expect(second).toEqual(first);
    const captures = (await providerOperations(input.paymentId)).filter((o) => o.kind === 'capture');
    expect(captures).toEqual([
      { idempotency_key: `${input.paymentId}:capture`, kind: 'capture', subject: authorisationId, amount: 4999, response: { captureId } },
    ]);
    expect(await providerAuthorisations(authorisationId)).toEqual([{ amount: 4999, currency: 'EUR', status: 'CAPTURED', captured: 4999, refunded: 0 }]);
    expect(await paymentRows(input.paymentId)).toMatchObject([{ status: 'CAPTURED', captured_amount: 4999, refunded_amount: 0 }]);
    expect((await localOperations(input.paymentId)).map((o) => o.kind).sort()).toEqual(['AUTHORISE', 'CAPTURE']);
  });

  it('voidPayment called twice voids once', async () => {
    const input = newPayment('tok_visa', 1299);
    const { authorisationId } = await runActivity(acts.authorisePayment, input);

    const first = await runActivity(acts.voidPayment, refOf(input));
    const second = await runActivity(acts.voidPayment, refOf(input), 2);

    expect(first).toEqual({ paymentId: input.paymentId, action: 'VOIDED', amount: 1299 });
    expect(second).toEqual({ paymentId: input.paymentId, action: 'NONE', amount: 0 });
    const voids = (await providerOperations(input.paymentId)).filter((o) => o.kind === 'void');
    expect(voids).toEqual([{ idempotency_key: `${input.paymentId}:void`, kind: 'void', subject: authorisationId, amount: null, response: { voided: true } }]);
    expect(await providerAuthorisations(authorisationId)).toMatchObject([{ status: 'VOIDED', captured: 0 }]);
    expect(await paymentRows(input.paymentId)).toMatchObject([{ status: 'VOIDED', authorisation_id: authorisationId }]);

    // a late capture of a voided payment is refused without calling the provider
    const failure = await failureOf(runActivity(acts.capturePayment, refOf(input)));
    expect(failure.type).toBe('AlreadyCompensated');
    expect(failure.nonRetryable).toBe(true);
    expect((await providerOperations(input.paymentId)).map((o) => o.kind)).toEqual(['authorise', 'void']);
  });

  it('refundPayment after capture, called twice, refunds once', async () => {
    const input = newPayment('tok_visa', 3499);
    const { authorisationId } = await runActivity(acts.authorisePayment, input);
    await runActivity(acts.capturePayment, refOf(input));

    const first = await runActivity(acts.refundPayment, refOf(input));
    const second = await runActivity(acts.refundPayment, refOf(input), 2);

    expect(first).toEqual({ paymentId: input.paymentId, action: 'REFUNDED', amount: 3499 });
    expect(second).toEqual({ paymentId: input.paymentId, action: 'NONE', amount: 0 });
    const refunds = (await providerOperations(input.paymentId)).filter((o) => o.kind === 'refund');
    expect(refunds).toEqual([
      {
        idempotency_key: `${input.paymentId}:refund`,
        kind: 'refund',
        subject: authorisationId,
        amount: 3499,
        response: { refundId: deterministicId('ref', `${input.paymentId}:refund`) },
      },
    ]);
    expect(await providerAuthorisations(authorisationId)).toEqual([{ amount: 3499, currency: 'EUR', status: 'REFUNDED', captured: 3499, refunded: 3499 }]);
    expect(await paymentRows(input.paymentId)).toMatchObject([{ status: 'REFUNDED', captured_amount: 3499, refunded_amount: 3499 }]);
  });

  it('refundPayment of a payment never captured refunds nothing', async () => {
    const input = newPayment();
    await runActivity(acts.authorisePayment, input);

    expect(await runActivity(acts.refundPayment, refOf(input))).toEqual({ paymentId: input.paymentId, action: 'NONE', amount: 0 });
    expect((await providerOperations(input.paymentId)).map((o) => o.kind)).toEqual(['authorise']);
    expect((await paymentRows(input.paymentId)).map((p) => p.status)).toEqual(['AUTHORISED']);
  });

  it('voidPayment before authorisePayment leaves a VOIDED marker; the late authorisation is refused with no provider call', async () => {
    const input = newPayment();

    const voided = await runActivity(acts.voidPayment, refOf(input));
    expect(voided).toEqual({ paymentId: input.paymentId, action: 'NONE', amount: 0 });
    expect(await paymentRows(input.paymentId)).toMatchObject([{ status: 'VOIDED', amount: 0, authorisation_id: null }]);

    const failure = await failureOf(runActivity(acts.authorisePayment, input, 3));

    expect(failure.type).toBe('AlreadyCompensated');
    expect(failure.nonRetryable).toBe(true);
    expect(await providerOperations(input.paymentId)).toEqual([]);
    expect(await providerAuthorisations(deterministicId('auth', `${input.paymentId}:authorise`))).toEqual([]);
    expect(await paymentRows(input.paymentId)).toMatchObject([{ status: 'VOIDED', amount: 0, authorisation_id: null }]);
  });

  it('voidPayment voids an authorisation whose answer was lost, and the retried authorisation is refused', async () => {
    const input = newPayment('tok_visa', 1799);
    const lossy = createPaymentActivities({ db, provider: losingAnswersTo('authorise') });

    await expect(runActivity(lossy.authorisePayment, input)).rejects.toThrow('connection reset');
    const authorisationId = deterministicId('auth', `${input.paymentId}:authorise`);
    expect(await providerAuthorisations(authorisationId)).toMatchObject([{ status: 'AUTHORISED' }]);
    expect((await paymentRows(input.paymentId)).map((p) => p.status)).toEqual(['PENDING']);

    const voided = await runActivity(acts.voidPayment, refOf(input));

    expect(voided).toEqual({ paymentId: input.paymentId, action: 'VOIDED', amount: 1799 });
    expect(await providerAuthorisations(authorisationId)).toMatchObject([{ status: 'VOIDED' }]);
    expect(await paymentRows(input.paymentId)).toMatchObject([{ status: 'VOIDED', authorisation_id: authorisationId }]);

    const failure = await failureOf(runActivity(acts.authorisePayment, input, 2));
    expect(failure.type).toBe('AlreadyCompensated');
    expect((await providerOperations(input.paymentId)).map((o) => o.kind)).toEqual(['authorise', 'void']);
  });

  it('refundPayment refunds a capture whose answer was lost', async () => {
    const input = newPayment('tok_visa', 2499);
    const { authorisationId } = await runActivity(acts.authorisePayment, input);
    const lossy = createPaymentActivities({ db, provider: losingAnswersTo('capture') });

    await expect(runActivity(lossy.capturePayment, refOf(input))).rejects.toThrow('connection reset');
    expect(await providerAuthorisations(authorisationId)).toMatchObject([{ status: 'CAPTURED', captured: 2499 }]);
    expect((await paymentRows(input.paymentId)).map((p) => p.status)).toEqual(['AUTHORISED']);

    const refunded = await runActivity(acts.refundPayment, refOf(input));

    expect(refunded).toEqual({ paymentId: input.paymentId, action: 'REFUNDED', amount: 2499 });
    expect(await providerAuthorisations(authorisationId)).toMatchObject([{ status: 'REFUNDED', captured: 2499, refunded: 2499 }]);
    expect(await paymentRows(input.paymentId)).toMatchObject([{ status: 'REFUNDED', captured_amount: 2499, refunded_amount: 2499 }]);
    expect((await providerOperations(input.paymentId)).map((o) => o.kind).sort()).toEqual(['authorise', 'capture', 'refund']);
  });

  it('reauthorisePayment twice makes one new authorisation, voids the old one once, and capture uses the new one', async () => {
    const input = newPayment();
    const first = await runActivity(acts.authorisePayment, input);
    const again = { paymentId: input.paymentId, orderId: input.orderId, token: input.token, round: 1 };
    const renewed = await runActivity(acts.reauthorisePayment, again);
    const repeated = await runActivity(acts.reauthorisePayment, again);
    expect(repeated).toEqual(renewed);
    expect(renewed.authorisationId).not.toBe(first.authorisationId);

    const ops = await providerOperations(input.paymentId);
    expect(ops.filter((o) => o.kind === 'authorise')).toHaveLength(2);
    expect(ops.filter((o) => o.kind === 'void')).toHaveLength(1);
    expect((await providerAuthorisations(first.authorisationId))[0]!.status).toBe('VOIDED');
    expect((await providerAuthorisations(renewed.authorisationId))[0]!.status).toBe('AUTHORISED');

    await runActivity(acts.capturePayment, refOf(input));
    expect((await providerAuthorisations(renewed.authorisationId))[0]!.status).toBe('CAPTURED');
  });

  it('after an answer lost on the way back, the retry asks the provider by key and authorises nothing more', async () => {
    const lossy = createPaymentActivities({ db, provider: createSimulatedPaymentProvider(sandbox, { ...NO_FAULTS, unknownOutcomeRate: 1 }) });
    const input = newPayment();
    await expect(runActivity(lossy.authorisePayment, input, 1)).rejects.toBeInstanceOf(SimulatedFault);
    // applied at the provider although the caller never heard back
    expect((await providerOperations(input.paymentId)).map((o) => o.kind)).toEqual(['authorise']);
    const retried = await runActivity(lossy.authorisePayment, input, 2);
    expect(retried.authorisationId).toBe(deterministicId('auth', `${input.paymentId}:authorise`));
    expect((await providerOperations(input.paymentId)).map((o) => o.kind)).toEqual(['authorise']);
    expect((await paymentRows(input.paymentId))[0]?.status).toBe('AUTHORISED');
  });

  it('a provider that is down or times out does nothing, and the retry does it once', async () => {
    const input = newPayment();
    const down = createPaymentActivities({ db, provider: createSimulatedPaymentProvider(sandbox, { ...NO_FAULTS, failureRate: 1 }) });
    const slow = createPaymentActivities({ db, provider: createSimulatedPaymentProvider(sandbox, { ...NO_FAULTS, timeoutRate: 1, timeoutMs: 50 }) });
    await expect(runActivity(down.authorisePayment, input, 1)).rejects.toThrow(/unavailable/);
    await expect(runActivity(slow.authorisePayment, input, 2)).rejects.toThrow(/timeout/);
    expect(await providerOperations(input.paymentId)).toEqual([]);
    await runActivity(acts.authorisePayment, input, 3);
    expect((await providerOperations(input.paymentId)).map((o) => o.kind)).toEqual(['authorise']);
  });
});
