import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import type { OrdersDb } from '../activities/orders/db';
import { SCOPES, identityKey } from '../contracts/auth';
import { ErrorType, type FailureReason } from '../contracts/errors';
import { getOrderStateQuery, isOrderStep, orderWorkflowId, type Compensation, type OrderState, type OrderStatus } from '../contracts/orders';
import { hasAny, type Principal } from './authentication';
import { HttpError, noOrder } from './errors';
import type { OrderEventView, OrderView } from './schemas';

/** Operators and reviewers see every order; anyone else only the orders their client placed. */
export const seesEveryOrder = (principal: Principal): boolean => hasAny(principal, [SCOPES.operate, SCOPES.review]);

/**
 * How the API reaches an order: its workflow while it runs (query, updates), the orders database
 * once it has ended. Shared by the order and review routes. Every read and action is checked
 * against who placed the order: someone else's order answers exactly as an unknown one (404).
 */
export function createOrderAccess({ client, db }: { client: Client; db: OrdersDb }) {
  const handle = (orderId: string) => client.workflow.getHandle(orderWorkflowId(orderId));

  const readStored = (orderId: string) =>
    db.order.findUnique({
      where: { id: orderId },
      include: { items: { orderBy: { sku: 'asc' } }, events: { orderBy: { id: 'asc' } } },
    });

  /** The order's live state from its workflow; 404 when there is no such workflow. */
  async function queryLive(orderId: string): Promise<OrderState> {
    try {
      return await handle(orderId).query(getOrderStateQuery);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw noOrder(orderId);
      throw err;
    }
  }

  /** 404 unless `principal` may see an order placed by `placedBy` (an identity key). */
  function assertVisible(principal: Principal, orderId: string, placedBy: string | null | undefined): void {
    if (seesEveryOrder(principal) || (placedBy && placedBy === principal.key)) return;
    throw noOrder(orderId);
  }

  /**
   * Who placed the order (its identity key), from the orders database, or from its workflow in
   * the instant before the database has the row; 404 for an order that does not exist.
   */
  async function ownerOf(orderId: string): Promise<string> {
    const row = await db.order.findUnique({ where: { id: orderId }, select: { placedBy: true } });
    if (row) return row.placedBy;
    return identityKey((await queryLive(orderId)).placedBy);
  }

  /**
   * Runs an update on the order's workflow. A refusal by its validator, or an order whose workflow
   * has ended (or is gone) while its row remains, is a 409 with `code`; no order at all is a 404.
   */
  async function update<Ret, Args extends [unknown, ...unknown[]]>(
    orderId: string,
    definition: UpdateDefinition<Ret, Args>,
    args: Args,
    refusal: { code: string; fallback: string; ended: (status: string) => string },
  ): Promise<Ret> {
    try {
      return await handle(orderId).executeUpdate(definition, { args });
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError) {
        const type = (err.cause as { type?: string } | undefined)?.type;
        if (type === ErrorType.NotOrderOwner) throw noOrder(orderId);
        if (type === ErrorType.SelfReview) throw new HttpError(403, 'forbidden', 'you placed this order: another reviewer must decide');
        throw new HttpError(409, refusal.code, err.cause?.message ?? refusal.fallback);
      }
      if (err instanceof WorkflowNotFoundError) {
        const order = await db.order.findUnique({ where: { id: orderId }, select: { status: true } });
        if (order) throw new HttpError(409, refusal.code, refusal.ended(order.status));
        throw noOrder(orderId);
      }
      throw err;
    }
  }

  return { handle, readStored, queryLive, assertVisible, ownerOf, update };
}
export type OrderAccess = ReturnType<typeof createOrderAccess>;

type StoredOrder = NonNullable<Awaited<ReturnType<OrderAccess['readStored']>>>;

const storedEvents = (order: StoredOrder | null): OrderEventView[] =>
  (order?.events ?? []).map((e) => ({ type: e.type, at: e.createdAt.toISOString(), data: (e.data ?? {}) as Record<string, unknown> }));

/** The subject part of an identity key (`issuer#subject`), for showing who placed an order. */
export const subjectOf = (key: string) => key.slice(key.lastIndexOf('#') + 1);

/** An order as the database holds it: once it has ended, its final state no longer needs the workflow. */
export function storedOrderView(order: StoredOrder): OrderView {
  return {
    orderId: order.id,
    placedBy: subjectOf(order.placedBy),
    customerId: order.customerId,
    status: order.status as OrderStatus,
    items: order.items.map(({ sku, quantity, unitPrice }) => ({ sku, quantity, unitPrice })),
    total: order.totalAmount,
    currency: order.currency,
    steps: order.events.map((e) => e.type).filter(isOrderStep),
    compensations: order.events.filter((e) => e.type === 'CompensationRan').map((e) => (e.data as { compensation: Compensation }).compensation),
    ...(order.failureReason ? { failureReason: order.failureReason as FailureReason } : {}),
    events: storedEvents(order),
  };
}

/** An order in flight, from its workflow's state and log. */
export function liveOrderView(state: OrderState): OrderView {
  return { ...state, placedBy: state.placedBy.subject, total: state.total ?? null, currency: state.currency ?? null };
}
