import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../../prisma/inventory/generated/client';
import type { Pool } from '../../lib/db';

export type InventoryDb = PrismaClient;
export const createInventoryDb = (pool: Pool): InventoryDb => new PrismaClient({ adapter: new PrismaPg(pool) });
