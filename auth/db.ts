import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../prisma/auth/generated/client';
import type { Pool } from '../lib/db';

export type AuthDb = PrismaClient;
export const createAuthDb = (pool: Pool): AuthDb => new PrismaClient({ adapter: new PrismaPg(pool) });
