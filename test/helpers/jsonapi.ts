/**
 * A validator for JSON:API 1.0 documents (https://jsonapi.org/format/1.0/), written from the
 * specification's rules: top-level members, resource objects, relationships, resource linkage,
 * links and error objects. Used to check every MaxScale-dialect response.
 */
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

const link = {
  oneOf: [
    { type: 'string', format: 'uri' },
    { type: 'object', required: ['href'], properties: { href: { type: 'string', format: 'uri' }, meta: { type: 'object' } }, additionalProperties: false },
  ],
};

const schema = {
  $id: 'jsonapi-1.0',
  type: 'object',
  // A document holds data, errors or meta; data and errors never together (§7.1).
  anyOf: [{ required: ['data'] }, { required: ['errors'] }, { required: ['meta'] }],
  not: { required: ['data', 'errors'] },
  properties: {
    data: {
      oneOf: [
        { type: 'null' },
        { $ref: '#/$defs/resource' },
        { type: 'array', items: { $ref: '#/$defs/resource' }, uniqueItems: true },
      ],
    },
    errors: { type: 'array', minItems: 1, items: { $ref: '#/$defs/error' } },
    meta: { type: 'object' },
    links: { $ref: '#/$defs/links' },
    included: { type: 'array', items: { $ref: '#/$defs/resource' } },
    jsonapi: { type: 'object', properties: { version: { type: 'string' }, meta: { type: 'object' } }, additionalProperties: false },
  },
  additionalProperties: false,
  $defs: {
    links: {
      type: 'object',
      additionalProperties: link,
    },
    resource: {
      type: 'object',
      required: ['type', 'id'],
      properties: {
        type: { type: 'string', minLength: 1 },
        id: { type: 'string', minLength: 1 },
        // Fields share one namespace with type and id, and never use `relationships`/`links` (§7.2.2).
        attributes: {
          type: 'object',
          not: { anyOf: [{ required: ['relationships'] }, { required: ['links'] }, { required: ['id'] }, { required: ['type'] }] },
        },
        relationships: {
          type: 'object',
          not: { anyOf: [{ required: ['id'] }, { required: ['type'] }] },
          additionalProperties: { $ref: '#/$defs/relationship' },
        },
        links: { $ref: '#/$defs/links' },
        meta: { type: 'object' },
      },
      additionalProperties: false,
    },
    relationship: {
      type: 'object',
      anyOf: [{ required: ['links'] }, { required: ['data'] }, { required: ['meta'] }],
      properties: {
        links: {
          allOf: [{ $ref: '#/$defs/links' }, { anyOf: [{ required: ['self'] }, { required: ['related'] }] }],
        },
        data: {
          oneOf: [
            { type: 'null' },
            { $ref: '#/$defs/linkage' },
            { type: 'array', items: { $ref: '#/$defs/linkage' }, uniqueItems: true },
          ],
        },
        meta: { type: 'object' },
      },
      additionalProperties: false,
    },
    linkage: {
      type: 'object',
      required: ['type', 'id'],
      properties: { type: { type: 'string', minLength: 1 }, id: { type: 'string', minLength: 1 }, meta: { type: 'object' } },
      additionalProperties: false,
    },
    error: {
      type: 'object',
      properties: {
        id: { type: 'string' },
        links: { $ref: '#/$defs/links' },
        status: { type: 'string' },
        code: { type: 'string' },
        title: { type: 'string' },
        detail: { type: 'string' },
        source: { type: 'object', properties: { pointer: { type: 'string' }, parameter: { type: 'string' } } },
        meta: { type: 'object' },
      },
      additionalProperties: false,
    },
  },
};

const ajv = addFormats(new Ajv({ allErrors: true, strict: true, strictRequired: false, strictTypes: false }));
const validate = ajv.compile(schema);

/** Throws with ajv's findings when `doc` is not a valid JSON:API document. */
export function assertJsonApi(doc: unknown, what = 'document'): void {
  if (!validate(doc)) throw new Error(`${what} is not a valid JSON:API document: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(doc).slice(0, 2000)}`);
}
