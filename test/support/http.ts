/** A small JSON client over real HTTP. */
export interface JsonResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

export async function request<T = any>(
  baseUrl: string,
  method: string,
  path: string,
  options: { body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
): Promise<JsonResponse<T>> {
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...options.headers },
    body: options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body)),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

/**
 * A request as a well-behaved client makes it: a 503 (the API's deadline, or Temporal busy) is tried
 * again after its Retry-After, with the same headers, so the same Idempotency-Key: a retried order is
 * the same order, never a second one. Any other answer is returned as it is.
 */
export async function requestRetrying<T = any>(
  baseUrl: string,
  method: string,
  path: string,
  options: { body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
  attempts = 5,
): Promise<JsonResponse<T>> {
  for (let attempt = 1; ; attempt++) {
    const res = await request<T>(baseUrl, method, path, options);
    if (res.status !== 503 || attempt === attempts) return res;
    await new Promise((r) => setTimeout(r, 1000 * Math.min(5, Number(res.headers.get('retry-after') ?? 1))));
  }
}

/** Polls until `check` returns a value or the attempts run out. */
export async function eventually<T>(check: () => Promise<T | undefined>, what: string, attempts = 300, intervalMs = 100): Promise<T> {
  for (let i = 0; i < attempts; i++) {
    const value = await check();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`gave up waiting for ${what}`);
}

export const validOrder = (overrides: Record<string, unknown> = {}) => ({
  customerId: 'customer-42',
  items: [{ sku: 'MUG-LOGO', quantity: 2 }],
  payment: { token: 'tok_visa' },
  shippingAddress: { name: 'Grace Hopper', line1: '1 Navy Yard', city: 'Arlington', postalCode: '22202-4804', country: 'US' },
  ...overrides,
});
