import { parseArgs } from 'node:util';
import { ALL_SCOPES, type Scope } from '../contracts/auth';
import { parseEnv } from '../lib/config';
import { createPool } from '../lib/db';
import { createClientRegistry } from './clients';
import { authEnv, keyTimingsFrom, ms } from './config';
import { createAuthDb } from './db';
import { createKeyStore } from './keys';

/**
 * The operator's commands for the auth service, against its database (AUTH_DATABASE_URL):
 *
 *   npm run auth -- create-client --id shop-eu --name "EU storefront" --scopes orders:write,orders:read [--rate-limit 1200]
 *   npm run auth -- rotate-secret --id shop-eu [--overlap 24h | --overlap 0]
 *   npm run auth -- set-scopes --id shop-eu --scopes orders:write,orders:read
 *   npm run auth -- disable-client --id shop-eu     (and enable-client)
 *   npm run auth -- list-clients
 *   npm run auth -- keys                             the signing keys and their state
 *   npm run auth -- rotate-keys [--immediately]      a new signing key (published first, then signing)
 *   npm run auth -- revoke-key --kid <kid>           out of the JWKS at once (a key that leaked)
 *
 * Secrets are printed once, when made; the database keeps only their hash.
 */
const USAGE = 'usage: npm run auth -- create-client|rotate-secret|set-scopes|disable-client|enable-client|list-clients|keys|rotate-keys|revoke-key [options]';

function scopesFrom(text: string | undefined): Scope[] {
  if (!text) throw new Error(`--scopes is required (any of ${ALL_SCOPES.join(',')})`);
  return text.split(/[ ,]+/).filter(Boolean) as Scope[];
}

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  const { values } = parseArgs({
    args: rest,
    options: {
      id: { type: 'string' },
      name: { type: 'string' },
      scopes: { type: 'string' },
      'rate-limit': { type: 'string' },
      overlap: { type: 'string' },
      kid: { type: 'string' },
      immediately: { type: 'boolean', default: false },
    },
  });
  const config = parseEnv(authEnv);
  const pool = createPool(config.AUTH_DATABASE_URL, 1, 'auth-cli');
  const db = createAuthDb(pool);
  const clients = createClientRegistry(db);
  const keys = createKeyStore(db, keyTimingsFrom(config));
  const need = (name: 'id' | 'kid') => {
    const value = values[name];
    if (!value) throw new Error(`--${name} is required`);
    return value;
  };
  try {
    switch (command) {
      case 'create-client': {
        const { client, secret } = await clients.create({
          id: need('id'),
          name: values.name ?? need('id'),
          scopes: scopesFrom(values.scopes),
          ...(values['rate-limit'] ? { rateLimitPerMinute: Number(values['rate-limit']) } : {}),
        });
        console.log(JSON.stringify({ ...client, secret }, null, 2));
        console.log('\nThe secret is shown this once: store it in the client’s secret manager.');
        break;
      }
      case 'rotate-secret': {
        const overlapMs = values.overlap === undefined ? undefined : values.overlap === '0' ? 0 : ms(values.overlap);
        const secret = await clients.rotateSecret(need('id'), overlapMs);
        console.log(JSON.stringify({ id: values.id, secret }, null, 2));
        break;
      }
      case 'set-scopes':
        console.log(JSON.stringify(await clients.update(need('id'), { scopes: scopesFrom(values.scopes) }), null, 2));
        break;
      case 'disable-client':
      case 'enable-client':
        console.log(JSON.stringify(await clients.update(need('id'), { disabled: command === 'disable-client' }), null, 2));
        break;
      case 'list-clients':
        console.table(await clients.list());
        break;
      case 'keys': {
        const state = await keys.state();
        console.table(
          state.published.map((k) => ({
            kid: k.kid,
            activatesAt: k.activatesAt.toISOString(),
            role: k === state.signing ? 'signing' : k === state.pending ? 'published, signs next' : 'published until its tokens expire',
          })),
        );
        break;
      }
      case 'rotate-keys':
        console.log(`added ${await keys.rotateNow({ immediately: values.immediately })}`);
        break;
      case 'revoke-key':
        await keys.revoke(need('kid'));
        console.log(`revoked ${values.kid}`);
        break;
      default:
        console.error(USAGE);
        process.exitCode = 2;
    }
  } finally {
    await db.$disconnect();
    await pool.end();
  }
}

main().catch((err: Error) => {
  console.error(err.message);
  process.exit(1);
});
