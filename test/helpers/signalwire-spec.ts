/**
 * The seed's SignalWire OpenAPI (re-indented in ../shared/spec/), compiled with ajv (draft 2020-12,
 * formats): validators for its component schemas, by name.
 */
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { parse } from 'yaml';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;
// A copy of ../shared/spec/signalwire-room-sessions.openapi.yaml, so a clone alone runs the tests.
const SPEC = new URL('../fixtures/signalwire-room-sessions.openapi.yaml', import.meta.url);

const doc = parse(readFileSync(SPEC, 'utf8')) as { components: { schemas: Record<string, object> } };
const ajv = addFormats(new Ajv2020({ allErrors: true, strict: false }));
ajv.addSchema({ $id: 'sw', components: doc.components });

/** Throws with ajv's findings unless `value` is valid against the spec's component `name`. */
export function assertSpec(name: string, value: unknown, what = name): void {
  const validate = ajv.getSchema(`sw#/components/schemas/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`);
  if (!validate) throw new Error(`no schema ${name}`);
  if (!validate(value)) throw new Error(`${what} does not match ${name}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(value).slice(0, 1500)}`);
}
