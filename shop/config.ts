import { z } from 'zod';
import { LOCAL_AUTH_PORT } from '../auth/config';
import { issuerUrl, logLevel } from '../lib/config';

export const LOCAL_SHOP_PORT = 3200;

/** A base URL: no trailing slash. */
const url = z
  .string()
  .url()
  .transform((u) => u.replace(/\/+$/, ''));

/** The demo shop's configuration, from the environment. */
export const shopEnv = z
  .object({
    PORT: z.coerce.number().int().min(1).max(65535).default(LOCAL_SHOP_PORT),
    HOST: z.string().default('127.0.0.1'),
    LOG_LEVEL: logLevel,
    // The public API the shop calls, and the auth service it gets its tokens from.
    API_URL: url.default('http://127.0.0.1:3000'),
    AUTH_ISSUER: issuerUrl(`http://127.0.0.1:${LOCAL_AUTH_PORT}`),
    // The storefront client the shop acts as (orders:write orders:read); its secret never leaves this process.
    SHOP_CLIENT_ID: z.string({ error: 'the storefront client the shop calls the API as (npm start sets the development storefront)' }).min(1),
    SHOP_CLIENT_SECRET: z.string({ error: 'the secret of SHOP_CLIENT_ID' }).min(1),
    // An operator client (orders:operate) for /shop/operator; without one the operator view is off.
    SHOP_OPERATOR_ID: z.string().min(1).optional(),
    SHOP_OPERATOR_SECRET: z.string().min(1).optional(),
    // Where the operator view links each order: the Temporal Web UI, and the platform's namespace.
    TEMPORAL_UI_URL: url.optional(),
    TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  })
  .refine((c) => (c.SHOP_OPERATOR_ID === undefined) === (c.SHOP_OPERATOR_SECRET === undefined), {
    message: 'set both SHOP_OPERATOR_ID and SHOP_OPERATOR_SECRET, or neither',
    path: ['SHOP_OPERATOR_SECRET'],
  });
export type ShopConfig = z.infer<typeof shopEnv>;
