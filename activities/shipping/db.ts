import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../../prisma/shipping/generated/client';
import type { Pool } from '../../lib/db';

export type ShippingDb = PrismaClient;
export const createShippingDb = (pool: Pool): ShippingDb => new PrismaClient({ adapter: new PrismaPg(pool) });
