/** One Server-Sent Event as a client reads it. */
export interface SseEvent {
  id?: string;
  event: string;
  data: any;
}

/**
 * Reads a Server-Sent Events stream over real HTTP until `until` says stop (or the server ends
 * it), parsing the wire format as a browser's EventSource does.
 */
export async function readSse(url: string, headers: Record<string, string>, until: (e: SseEvent) => boolean = () => false, timeoutMs = 60_000) {
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: AbortSignal.timeout(timeoutMs) });
  const events: SseEvent[] = [];
  if (!res.ok || !res.body) return { status: res.status, headers: res.headers, events, body: await res.text() };
  const decoder = new TextDecoder();
  let buffer = '';
  const reader = res.body.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let split: number;
      while ((split = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, split);
        buffer = buffer.slice(split + 2);
        const fields: Record<string, string> = {};
        for (const line of block.split('\n')) {
          if (!line || line.startsWith(':')) continue;
          const colon = line.indexOf(':');
          const [name, val] = colon < 0 ? [line, ''] : [line.slice(0, colon), line.slice(colon + 1).replace(/^ /, '')];
          fields[name] = fields[name] !== undefined && name === 'data' ? `${fields[name]}\n${val}` : val;
        }
        if (fields.data === undefined) continue;
        const event: SseEvent = { ...(fields.id !== undefined ? { id: fields.id } : {}), event: fields.event ?? 'message', data: JSON.parse(fields.data) };
        events.push(event);
        if (until(event)) return { status: res.status, headers: res.headers, events, body: '' };
      }
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return { status: res.status, headers: res.headers, events, body: '' };
}
