import { INVENTORY_TASK_QUEUE } from './inventory';
import { NOTIFICATIONS_TASK_QUEUE } from './notifications';
import { ORDERS_TASK_QUEUE } from './orders';
import { PAYMENTS_TASK_QUEUE } from './payments';
import { SHIPPING_TASK_QUEUE } from './shipping';

/**
 * The platform's services, the one list of them: each is named by its task queue, and has a
 * worker pool (`workers/<name>.ts`), a database and a Prisma schema (`prisma/<name>/`) of that name.
 * `scripts/run.mjs`, which runs before anything is installed and cannot import this, generates a
 * Prisma client for each `prisma/<name>/schema.prisma` it finds instead.
 */
export const SERVICES = [ORDERS_TASK_QUEUE, INVENTORY_TASK_QUEUE, PAYMENTS_TASK_QUEUE, SHIPPING_TASK_QUEUE, NOTIFICATIONS_TASK_QUEUE] as const;
export type Service = (typeof SERVICES)[number];
