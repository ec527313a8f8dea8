import { parseEnv } from '../lib/config';
import { tokenSource } from '../lib/infra/clients';
import { createLogger } from '../lib/logger';
import { createShopApp } from './app';
import { shopEnv } from './config';

const log = createLogger('shop');

function main() {
  const config = parseEnv(shopEnv);
  log.level = config.LOG_LEVEL;
  const operator = config.SHOP_OPERATOR_ID && config.SHOP_OPERATOR_SECRET ? { id: config.SHOP_OPERATOR_ID, secret: config.SHOP_OPERATOR_SECRET } : undefined;
  const app = createShopApp({
    apiUrl: config.API_URL,
    tokens: {
      storefront: tokenSource(config.AUTH_ISSUER, { id: config.SHOP_CLIENT_ID, secret: config.SHOP_CLIENT_SECRET }),
      ...(operator ? { operator: tokenSource(config.AUTH_ISSUER, operator) } : {}),
    },
    ...(operator ? { operatorLogin: operator } : {}),
    ...(config.TEMPORAL_UI_URL ? { temporalUi: { url: config.TEMPORAL_UI_URL, namespace: config.TEMPORAL_NAMESPACE } } : {}),
    log,
  });
  const server = app.listen(config.PORT, config.HOST, () =>
    log.info({ port: config.PORT, storefront: config.SHOP_CLIENT_ID, operatorView: Boolean(operator) }, 'shop listening'),
  );
  const shutdown = () => {
    log.info('shop stopping');
    // Open order streams would hold close() until they end: cut them.
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 5_000).unref();
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

try {
  main();
} catch (err) {
  log.fatal({ err }, 'shop failed to start');
  process.exit(1);
}
