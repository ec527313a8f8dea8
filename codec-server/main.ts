import { createAuthenticator, trustedIssuers } from '../api/authentication';
import { parseEnv } from '../lib/config';
import { createLogger } from '../lib/logger';
import { EncryptionCodec, keyringFromEnv } from '../lib/temporal/codec';
import { createCodecServerApp } from './app';
import { codecEnv } from './config';

const log = createLogger('codec-server');

async function main() {
  const config = parseEnv(codecEnv);
  log.level = config.LOG_LEVEL;
  const keyring = keyringFromEnv();
  const app = createCodecServerApp({
    codec: new EncryptionCodec(keyring),
    authenticate: createAuthenticator({ issuers: trustedIssuers(config) }),
    log,
    corsOrigins: config.CODEC_CORS_ORIGINS,
    tokenUrl: `${config.AUTH_ISSUER}/oauth/token`,
    ...(config.UI_UPSTREAM ? { uiUpstream: config.UI_UPSTREAM } : {}),
    cookieSecure: config.CODEC_COOKIE_SECURE,
  });
  const server = app.listen(config.PORT, config.HOST, () =>
    log.info({ port: config.PORT, keys: keyring.keys.size, ui: config.UI_UPSTREAM ? 'proxied' : 'none' }, 'codec server listening'),
  );
  const shutdown = () => {
    log.info('codec server stopping');
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 5_000).unref();
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

main().catch((err) => {
  log.fatal({ err }, 'codec server failed to start');
  process.exit(1);
});
