import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../../prisma/orders/generated/client';
import type { Pool } from '../../lib/db';

export type OrdersDb = PrismaClient;
export const createOrdersDb = (pool: Pool): OrdersDb => new PrismaClient({ adapter: new PrismaPg(pool) });
