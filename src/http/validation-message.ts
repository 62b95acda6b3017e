/**
 * The field and message of a schema-validation 400, built on the error path only. The app validates with Ajv's
 * allErrors off (valid requests pay for no error collection), so there is one error: Ajv's first. Its text is made
 * readable with the route's schema and the request's data:
 * - a field the object's schema does not declare: `unknown field items[0].vector (allowed: id, embedding)`. Ajv
 *   checks `required` first, so a misspelt field shows as the right one missing; when the object holds an unknown
 *   field, that is the error named;
 * - a required field missing: `items[0].embedding is required`;
 * - a value outside an enum: `expand must be one of none, hamming1, auto, beam`;
 * - a value of none of a union's types, or a string off its pattern: the schema's description, whose first sentence
 *   must read as a noun phrase (`embedding must be a number array, or a base64 string of little-endian float32, got 5`);
 * - anything else: the field, then Ajv's text.
 */
import type { FastifyError, FastifyRequest } from 'fastify';

/** Characters of an unknown key a message quotes. */
const MAX_KEY_SHOWN = 64;

interface Schema {
  $ref?: string;
  anyOf?: Schema[];
  type?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: unknown;
  description?: string;
}

interface ErrorParams {
  missingProperty?: string;
  additionalProperty?: string;
  allowedValues?: unknown[];
}

/** "/items/3/embedding" -> "items[3].embedding" */
export function fieldFromPointer(pointer: string): string {
  return pointer
    .split('/')
    .filter(Boolean)
    .map((part, i) => (/^\d+$/.test(part) ? `[${part}]` : i === 0 ? part : `.${part}`))
    .join('');
}

/** The value at a JSON pointer (Ajv's instancePath) in `data`, or undefined. */
export function valueAt(data: unknown, pointer: string): unknown {
  let value = data;
  for (const part of pointerParts(pointer)) {
    value = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[part] : undefined;
  }
  return value;
}

export function validationProblem(err: FastifyError, request: FastifyRequest): { message: string; field?: string } {
  const first = err.validation?.[0];
  const context = err.validationContext ?? 'request';
  if (!first) return { message: `${context} is invalid` };
  const base = fieldFromPointer(first.instancePath);
  const at = (key: string) => (base ? `${base}.${key}` : key);
  const params = (first.params ?? {}) as ErrorParams;
  if (first.keyword === 'required' || first.keyword === 'additionalProperties') {
    const data = dataOf(request, err.validationContext);
    const schema = schemaAt(request, err.validationContext, data, first.instancePath);
    const object = valueAt(data, first.instancePath);
    const unknown = params.additionalProperty ?? unknownKey(schema, object);
    if (unknown !== undefined) {
      // A client's key, echoed: cut, so that a megabyte-long one does not come back whole.
      const field = at(unknown.length > MAX_KEY_SHOWN ? `${unknown.slice(0, MAX_KEY_SHOWN)}...` : unknown);
      const names = schema?.properties ? Object.keys(schema.properties) : undefined;
      const allowed = names === undefined ? '' : names.length === 0 ? ' (no fields are allowed)' : ` (allowed: ${names.join(', ')})`;
      return { message: `unknown field ${field}${allowed}`, field };
    }
    if (params.missingProperty !== undefined) {
      const field = at(params.missingProperty);
      return { message: `${field} is required`, field };
    }
  }
  const field = base || err.validationContext;
  if (first.keyword === 'enum' && Array.isArray(params.allowedValues)) {
    return { message: `${field ?? context} must be one of ${params.allowedValues.join(', ')}`, field };
  }
  if (first.keyword === 'type' || first.keyword === 'pattern') {
    const data = dataOf(request, err.validationContext);
    const expected = expectedForm(schemaAt(request, err.validationContext, data, first.instancePath, false), first.keyword);
    if (expected !== undefined) return { message: `${field ?? context} must be ${expected}, got ${shown(valueAt(data, first.instancePath))}`, field };
  }
  return { message: `${field ?? context} ${first.message ?? 'is invalid'}`, field };
}

function pointerParts(pointer: string): string[] {
  return pointer.split('/').filter(Boolean).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** The first key of `object` that its schema (one that refuses additional properties) does not declare. */
function unknownKey(schema: Schema | undefined, object: unknown): string | undefined {
  if (schema?.additionalProperties !== false || !schema.properties) return undefined;
  if (object === null || typeof object !== 'object' || Array.isArray(object)) return undefined;
  return Object.keys(object).find((key) => !Object.hasOwn(schema.properties!, key));
}

function dataOf(request: FastifyRequest, context: string | undefined): unknown {
  switch (context) {
    case 'body': return request.body;
    case 'querystring': return request.query;
    case 'params': return request.params;
    case 'headers': return request.headers;
    default: return undefined;
  }
}

/**
 * The schema the route applies at `pointer` of the data: properties and items followed down, `$ref`s to shared
 * schemas resolved, an anyOf's branch taken by the data's type. Undefined where the walk loses its way.
 */
function schemaAt(request: FastifyRequest, context: string | undefined, data: unknown, pointer: string, lastBranch = true): Schema | undefined {
  const routeSchema = request.routeOptions.schema as Record<string, unknown> | undefined;
  const root = context === 'querystring' ? (routeSchema?.querystring ?? routeSchema?.query) : context ? routeSchema?.[context] : undefined;
  const resolve = (s: unknown): Schema | undefined => {
    let out = s as Schema | undefined;
    for (let hops = 0; out?.$ref !== undefined && hops < 8; hops++) out = request.server.getSchema(out.$ref) as Schema | undefined;
    return out;
  };
  const branch = (s: Schema | undefined, value: unknown): Schema | undefined => {
    if (!s?.anyOf) return s;
    const type = Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value;
    return s.anyOf.map(resolve).find((b) => b?.type === type);
  };
  const parts = pointerParts(pointer);
  let schema = parts.length > 0 || lastBranch ? branch(resolve(root), data) : resolve(root);
  let value = data;
  for (const [i, part] of parts.entries()) {
    if (!schema) return undefined;
    schema = Array.isArray(value) ? resolve(schema.items) : resolve(schema.properties?.[part]);
    value = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[part] : undefined;
    if (i < parts.length - 1 || lastBranch) schema = branch(schema, value);
  }
  return schema;
}

/**
 * What a value of the wrong type or form should have been, in the schema's own words: a union (e.g. an embedding:
 * number array or base64 string) names its alternatives where Ajv names only the first branch's type; a string
 * pattern gives its description's first sentence instead of the regular expression.
 */
function expectedForm(schema: Schema | undefined, keyword: string): string | undefined {
  const description = schema?.description;
  if (description === undefined || (keyword === 'type' && !schema?.anyOf)) return undefined;
  const sentence = description.split(/\. /)[0]!.replace(/\.$/, '');
  return sentence.charAt(0).toLowerCase() + sentence.slice(1);
}

/** A client's value as a message quotes it: its JSON, cut short. */
function shown(value: unknown): string {
  const text = value === undefined ? 'nothing' : JSON.stringify(value) ?? String(value);
  return text.length > MAX_KEY_SHOWN ? `${text.slice(0, MAX_KEY_SHOWN)}...` : text;
}
