import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import type { OrdersDb } from '../activities/orders/db';
import type { FailureReason } from '../contracts/errors';
import { getOrderStateQuery, isOrderStep, orderWorkflowId, type Compensation, type OrderState, type OrderStatus } from '../contracts/orders';
import { HttpError, noOrder } from './errors';
import type { OrderEventView, OrderView } from './schemas';

/**
 * How the API reaches an order: its workflow while it runs (query, updates), the orders database
 * once it has ended. Shared by the order and review routes.
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
      if (err instanceof WorkflowUpdateFailedError) throw new HttpError(409, refusal.code, err.cause?.message ?? refusal.fallback);
      if (err instanceof WorkflowNotFoundError) {
        const order = await db.order.findUnique({ where: { id: orderId }, select: { status: true } });
        if (order) throw new HttpError(409, refusal.code, refusal.ended(order.status));
        throw noOrder(orderId);
      }
      throw err;
    }
  }

  return { handle, readStored, queryLive, update };
}
export type OrderAccess = ReturnType<typeof createOrderAccess>;

type StoredOrder = NonNullable<Awaited<ReturnType<OrderAccess['readStored']>>>;

const storedEvents = (order: StoredOrder | null): OrderEventView[] =>
  (order?.events ?? []).map((e) => ({ type: e.type, at: e.createdAt.toISOString(), data: (e.data ?? {}) as Record<string, unknown> }));

/** An order as the database holds it: once it has ended, its final state no longer needs the workflow. */
export function storedOrderView(order: StoredOrder): OrderView {
  return {
    orderId: order.id,
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
  return { ...state, total: state.total ?? null, currency: state.currency ?? null };
}
