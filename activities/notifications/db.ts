import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../../prisma/notifications/generated/client';
import type { Pool } from '../../lib/db';

export type NotificationsDb = PrismaClient;
export const createNotificationsDb = (pool: Pool): NotificationsDb => new PrismaClient({ adapter: new PrismaPg(pool) });
