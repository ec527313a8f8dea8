import { parse as parseJsonAst, type AnyNode } from '@humanwhocodes/momoa';
import express, { type RequestHandler } from 'express';
import { HttpError, validationFailed } from './errors';
import type { FieldError } from './schemas';

export const BODY_LIMIT = '64kb';

/** A request carries a body when it says so (Content-Length above 0, or chunked). */
const hasBody = (headers: Record<string, string | string[] | undefined>) =>
  headers['transfer-encoding'] !== undefined || (headers['content-length'] !== undefined && headers['content-length'] !== '0');

/** Every key that appears twice in one object, as the field path a 400 names (`body.payment.token`). */
function duplicateKeys(node: AnyNode, path: string[] = ['body']): FieldError[] {
  if (node.type === 'Document') return duplicateKeys(node.body, path);
  if (node.type === 'Array') return node.elements.flatMap((e, i) => duplicateKeys(e.value, [...path, String(i)]));
  if (node.type !== 'Object') return [];
  const seen = new Set<string>();
  const found: FieldError[] = [];
  for (const member of node.members) {
    const name = member.name.type === 'String' ? member.name.value : member.name.name;
    if (seen.has(name)) found.push({ field: [...path, name].join('.'), message: `"${name}" appears more than once; send each key once` });
    seen.add(name);
    found.push(...duplicateKeys(member.value, [...path, name]));
  }
  return found;
}

const readText = express.text({ type: () => true, limit: BODY_LIMIT, defaultCharset: 'utf-8' });

/**
 * The body of a JSON route: application/json in UTF-8 only (415 otherwise, and for an unknown
 * Content-Encoding), at most 64 kB once inflated (413), valid JSON (400) with each key once per
 * object (400 naming the key: JSON.parse would silently keep the last, so `tok_declined` then
 * `tok_visa` would pay with the second). A request with no body at all reads as `{}`.
 */
export function jsonBody(): RequestHandler[] {
  const checkType: RequestHandler = (req, _res, next) => {
    if (!hasBody(req.headers)) {
      req.body = undefined;
      return next();
    }
    if (!req.is('application/json')) {
      throw new HttpError(415, 'unsupported_media_type', `send the body as application/json (got ${req.header('content-type') ?? 'no Content-Type'})`);
    }
    const charset = /;\s*charset="?([^";]+)"?/i.exec(req.header('content-type') ?? '')?.[1]?.toLowerCase();
    if (charset && charset !== 'utf-8' && charset !== 'utf8') {
      throw new HttpError(415, 'unsupported_media_type', `unsupported charset "${charset}": send UTF-8 JSON`);
    }
    next();
  };
  const parse: RequestHandler = (req, _res, next) => {
    if (typeof req.body !== 'string') return next();
    let ast;
    try {
      ast = parseJsonAst(req.body, { mode: 'json' });
    } catch (err) {
      throw validationFailed([{ field: 'body', message: `the body is not valid JSON (${(err as Error).message})` }]);
    }
    const duplicates = duplicateKeys(ast);
    if (duplicates.length > 0) throw validationFailed(duplicates);
    req.body = JSON.parse(req.body) as unknown;
    next();
  };
  return [checkType, readText, parse];
}
