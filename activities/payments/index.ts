import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../../contracts/errors';
import type { OpenItem } from '../../contracts/orders';
import type {
  Authorisation,
  AuthorisePaymentInput,
  Capture,
  PaymentRef,
  PaymentReversal,
  PaymentStatus,
  ReauthorisePaymentInput,
} from '../../contracts/payments';
import type { PaymentsDb } from './db';
import type { AuthoriseResponse, PaymentProvider } from './provider';
import { callWithKey } from '../outside-world';

export interface PaymentsDeps {
  db: PaymentsDb;
  provider: PaymentProvider;
}

type OperationKind = 'AUTHORISE' | 'CAPTURE' | 'VOID' | 'REFUND';

/**
 * Payment activities. The provider is called with a key derived from the payment ID (itself the
 * workflow ID + step), so a retried call is answered from the provider's memory; the local row
 * moves between statuses with a conditional update, so a retried write changes nothing.
 */
export function createPaymentActivities({ db, provider }: PaymentsDeps) {
  const atProvider = <R>(key: string, call: () => Promise<R>) => callWithKey(provider.lookup, key, call);
  const operationKey = (paymentId: string, kind: OperationKind) => `${paymentId}:${kind.toLowerCase()}`;

  /**
   * Moves a payment from one status to the next and records the provider operation, in one
   * statement: both commit together, in one round trip. The operation's key makes a repeat insert
   * nothing; a payment no longer in `from` is left as it is, and the answer is false.
   */
  async function settle(
    paymentId: string,
    from: PaymentStatus,
    data: { status: PaymentStatus; authorisationId?: string; capturedAmount?: number; refundedAmount?: number; declineReason?: string },
    operation: { kind: OperationKind; amount: number; providerRef?: string; outcome: string },
  ): Promise<boolean> {
    const [{ moved }] = await db.$queryRaw<[{ moved: number }]>`
      WITH moved AS (
        UPDATE payments SET
          status = ${data.status},
          authorisation_id = coalesce(${data.authorisationId ?? null}::text, authorisation_id),
          captured_amount = coalesce(${data.capturedAmount ?? null}::int, captured_amount),
          refunded_amount = coalesce(${data.refundedAmount ?? null}::int, refunded_amount),
          decline_reason = coalesce(${data.declineReason ?? null}::text, decline_reason),
          updated_at = now()
        WHERE id = ${paymentId} AND status = ${from}
        RETURNING id
      ), operation AS (
        INSERT INTO payment_operations (idempotency_key, payment_id, kind, amount, provider_ref, outcome)
        VALUES (${operationKey(paymentId, operation.kind)}, ${paymentId}, ${operation.kind}, ${operation.amount}, ${operation.providerRef ?? null}, ${operation.outcome})
        ON CONFLICT (idempotency_key) DO NOTHING
      )
      SELECT count(*)::int AS moved FROM moved`;
    return moved === 1;
  }

  async function voidAt(paymentId: string, authorisationId: string, from: PaymentStatus, amount: number): Promise<void> {
    const key = operationKey(paymentId, 'VOID');
    await atProvider(key, () => provider.void({ idempotencyKey: key, authorisationId }));
    await settle(paymentId, from, { status: 'VOIDED', authorisationId }, { kind: 'VOID', amount, providerRef: authorisationId, outcome: 'voided' });
  }

  const declined = (reason: string | null) =>
    ApplicationFailure.create({ type: ErrorType.PaymentDeclined, message: `payment declined: ${reason ?? 'unknown'}`, nonRetryable: true });

  const alreadyCompensated = (paymentId: string, status: string) =>
    ApplicationFailure.create({
      type: ErrorType.AlreadyCompensated,
      message: `payment ${paymentId} is ${status}`,
      nonRetryable: true,
    });

  return {
    async authorisePayment({ paymentId, orderId, amount, currency, token }: AuthorisePaymentInput): Promise<Authorisation> {
      const created = await db.payment.createMany({
        data: [{ id: paymentId, orderId, status: 'PENDING' satisfies PaymentStatus, amount, currency }],
        skipDuplicates: true,
      });
      // A row that was already there belongs to an earlier attempt, or to a void that came first.
      if (created.count === 0) {
        const payment = await db.payment.findUniqueOrThrow({ where: { id: paymentId } });
        const status = payment.status as PaymentStatus;
        if ((status === 'AUTHORISED' || status === 'CAPTURED') && payment.authorisationId) {
          return { paymentId, authorisationId: payment.authorisationId, amount: payment.amount, currency: payment.currency };
        }
        if (status === 'DECLINED') throw declined(payment.declineReason);
        if (status !== 'PENDING') throw alreadyCompensated(paymentId, status);
      }

      const key = operationKey(paymentId, 'AUTHORISE');
      const answer = await atProvider(key, () => provider.authorise({ idempotencyKey: key, amount, currency, token }));
      if (answer.outcome === 'declined') {
        await settle(paymentId, 'PENDING', { status: 'DECLINED', declineReason: answer.reason }, { kind: 'AUTHORISE', amount, outcome: answer.reason });
        throw declined(answer.reason);
      }
      const { authorisationId } = answer;
      const moved = await settle(
        paymentId,
        'PENDING',
        { status: 'AUTHORISED', authorisationId },
        {
          kind: 'AUTHORISE',
          amount,
          providerRef: authorisationId,
          outcome: 'approved',
        },
      );
      if (!moved) {
        const now = await db.payment.findUniqueOrThrow({ where: { id: paymentId } });
        if (now.status === 'VOIDED') {
          // Compensation ran while this attempt was at the provider: undo what it just did.
          await voidAt(paymentId, authorisationId, 'VOIDED', amount);
          throw alreadyCompensated(paymentId, now.status);
        }
      }
      return { paymentId, authorisationId, amount, currency };
    },

    /**
     * Replaces an authorisation about to expire with a fresh one for the same amount, then voids
     * the old one. Round N uses its own keys, so a retry of round N repeats nothing.
     */
    async reauthorisePayment({ paymentId, token, round }: ReauthorisePaymentInput): Promise<Authorisation> {
      const key = `${operationKey(paymentId, 'AUTHORISE')}:${round}`;
      const payment = await db.payment.findUniqueOrThrow({ where: { id: paymentId } });
      const done = await db.paymentOperation.findUnique({ where: { idempotencyKey: key } });
      if (done?.outcome === 'approved' && done.providerRef) {
        return { paymentId, authorisationId: done.providerRef, amount: payment.amount, currency: payment.currency };
      }
      if (payment.status !== 'AUTHORISED' || !payment.authorisationId) throw alreadyCompensated(paymentId, payment.status);
      const previous = payment.authorisationId;
      const answer = await atProvider(key, () => provider.authorise({ idempotencyKey: key, amount: payment.amount, currency: payment.currency, token }));
      if (answer.outcome === 'declined') {
        await db.paymentOperation.createMany({
          data: [{ idempotencyKey: key, paymentId, kind: 'AUTHORISE', amount: payment.amount, outcome: answer.reason }],
          skipDuplicates: true,
        });
        throw declined(answer.reason);
      }
      // The new authorisation first, then the old one goes: the order is never without one.
      const voidKey = `${operationKey(paymentId, 'VOID')}:${round}`;
      await atProvider(voidKey, () => provider.void({ idempotencyKey: voidKey, authorisationId: previous }));
      await db.$transaction([
        db.payment.updateMany({ where: { id: paymentId, authorisationId: previous }, data: { authorisationId: answer.authorisationId } }),
        db.paymentOperation.createMany({
          data: [
            { idempotencyKey: key, paymentId, kind: 'AUTHORISE', amount: payment.amount, providerRef: answer.authorisationId, outcome: 'approved' },
            { idempotencyKey: voidKey, paymentId, kind: 'VOID', amount: payment.amount, providerRef: previous, outcome: 'voided' },
          ],
          skipDuplicates: true,
        }),
      ]);
      return { paymentId, authorisationId: answer.authorisationId, amount: payment.amount, currency: payment.currency };
    },

    async capturePayment({ paymentId }: PaymentRef): Promise<Capture> {
      const payment = await db.payment.findUniqueOrThrow({ where: { id: paymentId } });
      const key = operationKey(paymentId, 'CAPTURE');
      if (payment.status === 'CAPTURED') {
        const op = await db.paymentOperation.findUnique({ where: { idempotencyKey: key } });
        return { paymentId, captureId: op?.providerRef ?? '', amount: payment.capturedAmount };
      }
      if (payment.status !== 'AUTHORISED' || !payment.authorisationId) throw alreadyCompensated(paymentId, payment.status);
      const authorisationId = payment.authorisationId;
      const { captureId } = await atProvider(key, () => provider.capture({ idempotencyKey: key, authorisationId, amount: payment.amount }));
      await settle(
        paymentId,
        'AUTHORISED',
        { status: 'CAPTURED', capturedAmount: payment.amount },
        {
          kind: 'CAPTURE',
          amount: payment.amount,
          providerRef: captureId,
          outcome: 'captured',
        },
      );
      return { paymentId, captureId, amount: payment.amount };
    },

    /** Compensation for authorisePayment. Voiding a payment that was never made leaves a VOIDED marker. */
    async voidPayment({ paymentId, orderId }: PaymentRef): Promise<PaymentReversal> {
      const marker = await db.payment.createMany({
        data: [{ id: paymentId, orderId, status: 'VOIDED' satisfies PaymentStatus, amount: 0, currency: '' }],
        skipDuplicates: true,
      });
      if (marker.count === 1) return { paymentId, action: 'NONE', amount: 0 };
      const payment = await db.payment.findUniqueOrThrow({ where: { id: paymentId } });
      if (payment.status === 'AUTHORISED' && payment.authorisationId) {
        await voidAt(paymentId, payment.authorisationId, 'AUTHORISED', payment.amount);
        return { paymentId, action: 'VOIDED', amount: payment.amount };
      }
      if (payment.status === 'PENDING') {
        // The authorisation's answer was lost: ask the provider what it did with the key.
        const answer = await provider.lookup<AuthoriseResponse>(operationKey(paymentId, 'AUTHORISE'));
        if (answer?.outcome === 'approved') {
          await voidAt(paymentId, answer.authorisationId, 'PENDING', payment.amount);
          return { paymentId, action: 'VOIDED', amount: payment.amount };
        }
        await db.payment.updateMany({ where: { id: paymentId, status: 'PENDING' }, data: { status: 'VOIDED' } });
      }
      return { paymentId, action: 'NONE', amount: 0 };
    },

    /** Compensation for capturePayment: refunds what was captured, and nothing if nothing was. */
    async refundPayment({ paymentId }: PaymentRef): Promise<PaymentReversal> {
      const payment = await db.payment.findUnique({ where: { id: paymentId } });
      if (!payment?.authorisationId) return { paymentId, action: 'NONE', amount: 0 };
      let captured = payment.status === 'CAPTURED' ? payment.capturedAmount : 0;
      if (payment.status === 'AUTHORISED') {
        // A capture whose answer was lost may still have happened at the provider.
        const capture = await provider.lookup<{ captureId: string }>(operationKey(paymentId, 'CAPTURE'));
        if (!capture) return { paymentId, action: 'NONE', amount: 0 };
        await settle(
          paymentId,
          'AUTHORISED',
          { status: 'CAPTURED', capturedAmount: payment.amount },
          {
            kind: 'CAPTURE',
            amount: payment.amount,
            providerRef: capture.captureId,
            outcome: 'captured',
          },
        );
        captured = payment.amount;
      }
      if (captured === 0) return { paymentId, action: 'NONE', amount: 0 };
      const refundKey = operationKey(paymentId, 'REFUND');
      const authorisationId = payment.authorisationId;
      const { refundId } = await atProvider(refundKey, () => provider.refund({ idempotencyKey: refundKey, authorisationId, amount: captured }));
      await settle(
        paymentId,
        'CAPTURED',
        { status: 'REFUNDED', refundedAmount: captured },
        {
          kind: 'REFUND',
          amount: captured,
          providerRef: refundId,
          outcome: 'refunded',
        },
      );
      return { paymentId, action: 'REFUNDED', amount: captured };
    },

    /** Payments PENDING (answer unknown) or AUTHORISED and untouched for `olderThanMs`: for the sweep. */
    async findOpenPayments({ olderThanMs, limit }: { olderThanMs: number; limit: number }): Promise<OpenItem[]> {
      return db.payment.findMany({
        where: { status: { in: ['PENDING', 'AUTHORISED'] }, updatedAt: { lt: new Date(Date.now() - olderThanMs) } },
        orderBy: { updatedAt: 'asc' },
        take: limit,
        select: { id: true, orderId: true, status: true },
      });
    },
  };
}

export type PaymentActivities = ReturnType<typeof createPaymentActivities>;
