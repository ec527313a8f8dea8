import { z } from 'zod';
import { LOCAL_AUTH_ISSUER } from '../auth/config';
import { trustedIssuersSchema } from '../api/authentication';
import { issuerUrl, jsonSetting, logLevel, urlList } from '../lib/config';

export const LOCAL_CODEC_PORT = 8233;

/** The codec server's configuration, from the environment (the payload keyring comes from PAYLOAD_KEYRING[_FILE]). */
export const codecEnv = z.object({
  PORT: z.coerce.number().int().min(1).max(65535).default(LOCAL_CODEC_PORT),
  HOST: z.string().default('127.0.0.1'),
  LOG_LEVEL: logLevel,
  // Web UI origins allowed to call /encode and /decode from the browser (CORS), comma-separated.
  CODEC_CORS_ORIGINS: urlList(),
  // Whose operator tokens are accepted: the platform's auth service, and any company identity provider.
  AUTH_ISSUER: issuerUrl(LOCAL_AUTH_ISSUER),
  AUTH_JWKS_URL: z.string().url().optional(),
  TRUSTED_ISSUERS: jsonSetting(trustedIssuersSchema).default([]),
  // A Temporal Web UI with no sign-in of its own (the dev server's): served through this server, for signed-in operators only.
  UI_UPSTREAM: z.string().url().optional(),
  // Set the session cookie's Secure flag (behind HTTPS); by default it follows the request's scheme.
  CODEC_COOKIE_SECURE: z.enum(['true', 'false', 'auto']).default('auto'),
});
export type CodecConfig = z.infer<typeof codecEnv>;
