import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../../prisma/payments/generated/client';
import type { Pool } from '../../lib/db';

export type PaymentsDb = PrismaClient;
export const createPaymentsDb = (pool: Pool): PaymentsDb => new PrismaClient({ adapter: new PrismaPg(pool) });
