import { log } from '@temporalio/workflow';
import type { Compensation } from '../../contracts/orders';
import type { Order } from './order';
import { rootMessage } from './services';

interface Undo {
  name: Compensation;
  /** resolves true when it undid something, false when there was nothing to undo */
  run: () => Promise<boolean>;
}

/**
 * The saga's undo list. Each undo is registered before the step it undoes (the step may have
 * acted even if its answer was lost) and they run in reverse. One that fails past its retry
 * budget parks the order in NEEDS_ATTENTION with what is left, until an operator retries or
 * resolves it by hand.
 */
export class Compensations {
  private readonly undos: Undo[] = [];

  constructor(private readonly order: Order) {}

  register(name: Compensation, run: Undo['run']): void {
    this.undos.push({ name, run });
  }

  async runInReverse(): Promise<void> {
    const { order } = this;
    const pending = [...this.undos].reverse();
    let round = 0;
    while (pending.length > 0) {
      const undo = pending[0]!;
      try {
        if (await undo.run()) {
          order.record('CompensationRan', { suffix: undo.name, data: { compensation: undo.name } });
          order.state.compensations.push(undo.name);
          // Live, like the forward steps: the order page shows each undo as it happens (failure paths only).
          await order.writeLog();
        }
        pending.shift();
        continue;
      } catch (err) {
        order.state.attention = { pending: pending.map((u) => u.name), error: rootMessage(err), since: new Date().toISOString() };
        order.enter('NEEDS_ATTENTION');
        log.error('compensation stuck; order needs attention', {
          orderId: order.orderId,
          pending: order.state.attention.pending,
          error: order.state.attention.error,
        });
        order.record('NeedsAttention', { suffix: String(++round), data: { ...order.state.attention } });
        // A parked order may wait days: the orders database shows it as it is meanwhile.
        await order.writeLog();
      }
      const decision = await order.awaitOperator();
      order.state.attention = undefined;
      order.enter('COMPENSATING');
      if (decision.action === 'resolve') {
        order.state.resolvedByHand = pending.map((u) => u.name);
        order.record('CompensationResolvedByHand', {
          suffix: String(round),
          data: { operator: decision.operator, note: decision.note, compensations: order.state.resolvedByHand },
        });
        return;
      }
      order.record('CompensationRetried', { suffix: String(round), data: { operator: decision.operator } });
    }
  }
}
