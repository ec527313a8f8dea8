import type { Connection } from '@temporalio/client';
import { SearchAttributeType } from '@temporalio/common';
import proto from '@temporalio/proto';

const { IndexedValueType } = proto.temporal.api.enums.v1;
const GRPC_ALREADY_EXISTS = 6;
const GRPC_UNIMPLEMENTED = 12;

/**
 * Registers the order search attributes on a namespace, once: those already there are left as
 * they are. Works on the dev server, a self-hosted cluster and the time-skipping test server.
 */
export async function ensureSearchAttributes(
  connection: Pick<Connection, 'operatorService'>,
  namespace: string,
  keys: ReadonlyArray<{ name: string; type: SearchAttributeType }>,
): Promise<string[]> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace }).catch((err: { code?: number }) => {
    // The time-skipping test server can add search attributes but not list them.
    if (err.code === GRPC_UNIMPLEMENTED) return { customAttributes: {} };
    throw err;
  });
  const known = new Set(Object.keys(existing.customAttributes ?? {}));
  const missing = keys.filter((k) => !known.has(k.name));
  if (missing.length === 0) return [];
  const indexed = {
    [SearchAttributeType.KEYWORD]: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    [SearchAttributeType.DOUBLE]: IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
    [SearchAttributeType.TEXT]: IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
    [SearchAttributeType.INT]: IndexedValueType.INDEXED_VALUE_TYPE_INT,
    [SearchAttributeType.BOOL]: IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
    [SearchAttributeType.DATETIME]: IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
    [SearchAttributeType.KEYWORD_LIST]: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
  };
  try {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((k) => [k.name, indexed[k.type]])),
    });
  } catch (err) {
    // Another process registered them first.
    if ((err as { code?: number }).code !== GRPC_ALREADY_EXISTS) throw err;
  }
  return missing.map((k) => k.name);
}
