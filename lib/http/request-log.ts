import { randomUUID } from 'node:crypto';
import { pinoHttp } from 'pino-http';
import type { Logger } from '../logger';

/**
 * One line per request, under its request id: the caller's X-Request-Id (when it looks like one),
 * or a new one, sent back either way. Every HTTP service of the platform logs through this.
 */
export function requestLog(log: Logger, { healthPath = '/healthz' }: { healthPath?: string } = {}) {
  return pinoHttp({
    logger: log,
    genReqId: (req, res) => {
      const given = req.headers['x-request-id'];
      // A caller's id is kept only when it is short and plain: it lands in every log line of the request.
      const requestId = typeof given === 'string' && /^[A-Za-z0-9._:-]{1,128}$/.test(given) ? given : randomUUID();
      req.headers['x-request-id'] = requestId;
      res.setHeader('X-Request-Id', requestId);
      return requestId;
    },
    customAttributeKeys: { reqId: 'requestId', responseTime: 'ms' },
    // req.log, which the handlers log through, carries only the request id; the request line has the rest.
    quietReqLogger: true,
    // Method, URL and status only: no headers (they may carry credentials), no bodies (payment tokens).
    serializers: {
      req: (req: { method: string; url: string }) => ({ method: req.method, url: req.url }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
    // A failing health check is the check doing its job (and polled while the pools start): a warning, not an error.
    customLogLevel: (req, res, err) => (err || res.err ? 'error' : res.statusCode >= 500 ? (req.url === healthPath ? 'warn' : 'error') : 'info'),
    // pino-http invents an Error, with a stack, for every 5xx; only a real one (set by the error handler) is worth logging.
    customErrorObject: (_req, res, _err, val: Record<string, unknown>) => (res.err ? val : { ...val, err: undefined }),
    customSuccessMessage: (req, res) => `${req.method} ${req.url} ${res.statusCode}`,
    customErrorMessage: (req, res) => `${req.method} ${req.url} ${res.statusCode}`,
    // Scraped and probed every few seconds: a line each would drown the requests that matter.
    autoLogging: { ignore: (req) => req.url === '/metrics' || req.url === '/livez' },
  });
}
