/**
 * The request parameters every MaxScale REST resource takes, as MaxScale 24.02 implements them
 * (server/core/resource.cc, httpresponse.cc): `pretty`, sparse fieldsets `fields[TYPE]=a,b/c`,
 * row filters `filter=JSON_PTR=EXPR` and `filter[JSON_PATH]=EXPR` with the expressions `eq() ne()
 * lt() le() gt() ge() and() or() not()`, and pseudo-pagination `page[size]`/`page[number]`.
 * Pure functions over JSON documents.
 */
import { isObject } from '../../core/json.ts';
import { errors, type KilnError } from '../../core/errors.ts';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** A malformed filter expression or path: BAD_REQUEST (400 in MaxScale's error shape). */
const filterError = (message: string): KilnError => errors.badRequest(message);

/** MaxScale's booleans (`true`/`yes`/`on`/`1` and their opposites); undefined when absent or neither. */
export function parseBoolean(value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  const v = value.toLowerCase();
  if (v === 'true' || v === 'yes' || v === 'on' || v === '1') return true;
  if (v === 'false' || v === 'no' || v === 'off' || v === '0') return false;
  return undefined;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number) => String(n).padStart(2, '0');

/** C's asctime() of the server's local time, as MaxScale writes `connected`: `Wed May 17 10:06:35 2017`. */
export function asctime(date: Date): string {
  return `${DAYS[date.getDay()]} ${MONTHS[date.getMonth()]} ${String(date.getDate()).padStart(2, ' ')} `
    + `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())} ${date.getFullYear()}`;
}

// ---------------------------------------------------------------------------------------------
// Sparse fieldsets

/**
 * The part of `obj` that `path` (components) names, copied, as MaxScale's remove_fields_from_object
 * leaves it: `{}` when the first component is missing, a value that is not an object kept whole.
 */
function pick(obj: Json, path: string[]): Json {
  if (!isObject(obj) || path.length === 0) return structuredClone(obj);
  const o = obj as JsonObject;
  const [head, ...rest] = path;
  if (!Object.hasOwn(o, head)) return {};
  return { [head]: pick(o[head], rest) };
}

function mergeInto(dest: JsonObject, src: JsonObject): void {
  for (const [key, value] of Object.entries(src)) {
    const d = dest[key];
    if (isObject(d) && isObject(value)) mergeInto(d as JsonObject, value as JsonObject);
    else dest[key] = value;
  }
}

function sparse(member: JsonObject, fields: string[][]): JsonObject {
  const out: JsonObject = {};
  for (const path of fields) mergeInto(out, pick(member, path) as JsonObject);
  return out;
}

/**
 * Applies `fields[type]=a,b/c` to a resource of that type: each field is a path (`/`-separated)
 * into its `attributes` and its `relationships`; members left empty are dropped. A field may also
 * name its member (`attributes/state`), which then applies to that member only.
 */
export function applySparseFieldset(resource: JsonObject, type: string, list: string): void {
  if (resource.type !== type) return;
  const fields = list.split(',').map((f) => f.split('/').filter((c) => c !== '')).filter((f) => f.length > 0);
  if (fields.length === 0) return;
  for (const member of ['attributes', 'relationships']) {
    const value = resource[member];
    if (!isObject(value)) continue;
    const own = fields.map((f) => (f[0] === 'attributes' || f[0] === 'relationships' ? (f[0] === member ? f.slice(1) : []) : f)).filter((f) => f.length > 0);
    const kept = sparse(value as JsonObject, own);
    if (Object.keys(kept).length === 0) delete resource[member];
    else resource[member] = kept;
  }
}

// ---------------------------------------------------------------------------------------------
// Filter expressions

type Matcher = (value: Json) => boolean;

function deepEqual(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((v, i) => deepEqual(v, b[i]));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    const kb = Object.keys(b as object);
    return ka.length === kb.length && ka.every((k) => Object.hasOwn(b as object, k) && deepEqual((a as JsonObject)[k], (b as JsonObject)[k]));
  }
  return false;
}

/** Ordering is defined for two numbers or two strings only (anything else compares false). */
function less(a: Json, b: Json): boolean {
  return (typeof a === 'number' && typeof b === 'number') || (typeof a === 'string' && typeof b === 'string') ? a < b : false;
}

const COMPARISONS: Record<string, (stored: Json, literal: Json) => boolean> = {
  eq: (s, v) => deepEqual(s, v),
  ne: (s, v) => !deepEqual(s, v),
  lt: (s, v) => less(s, v),
  gt: (s, v) => less(v, s),
  le: (s, v) => less(s, v) || (!less(v, s) && typeof s === typeof v && (typeof s === 'number' || typeof s === 'string')),
  ge: (s, v) => less(v, s) || (!less(s, v) && typeof s === typeof v && (typeof s === 'number' || typeof s === 'string')),
};

/** Parses a filter expression (MaxScale's MatcherParser). */
class ExpressionParser {
  #s: string;
  #i = 0;

  constructor(s: string) {
    this.#s = s;
  }

  parse(): Matcher {
    const m = this.#expr();
    if (this.#i !== this.#s.length) throw filterError(`Unexpected trailing data: ${this.#s.slice(this.#i)}`);
    return m;
  }

  #expr(): Matcher {
    const rest = this.#s.slice(this.#i);
    if (rest === '') throw filterError('Empty filter expression');
    if (!/^[A-Za-z]/.test(rest) || /^(true|false|null)\b/.test(rest)) {
      const value = this.#json();
      return (s) => deepEqual(s, value);
    }
    const op = /^(eq|ne|lt|gt|le|ge|and|or|not)\(/.exec(rest)?.[1];
    if (!op) throw filterError(`Not a valid filter expression: ${rest}`);
    this.#i += op.length + 1;
    if (op === 'and' || op === 'or' || op === 'not') {
      const subs: Matcher[] = [this.#expr()];
      while (this.#s[this.#i] === ',') {
        this.#i++;
        subs.push(this.#expr());
      }
      this.#consume(')');
      if (op === 'and') return (s) => subs.every((m) => m(s));
      if (op === 'or') return (s) => subs.some((m) => m(s));
      return (s) => !subs.some((m) => m(s));
    }
    const literal = this.#json();
    this.#consume(')');
    const compare = COMPARISONS[op];
    return (s) => compare(s, literal);
  }

  #consume(expected: string): void {
    const got = this.#s.slice(this.#i, this.#i + expected.length);
    if (got !== expected) throw filterError(`Expected '${expected}', got '${got}'`);
    this.#i += expected.length;
  }

  /** One JSON value at the cursor (the rest of the text may follow it). */
  #json(): Json {
    const s = this.#s;
    const start = this.#i;
    let end = start;
    const c = s[start];
    if (c === '"') {
      end++;
      while (end < s.length && s[end] !== '"') end += s[end] === '\\' ? 2 : 1;
      end++;
    } else if (c === '{' || c === '[') {
      let depth = 0;
      for (; end < s.length; end++) {
        const ch = s[end];
        if (ch === '"') {
          end++;
          while (end < s.length && s[end] !== '"') end += s[end] === '\\' ? 2 : 1;
        } else if (ch === '{' || ch === '[') depth++;
        else if (ch === '}' || ch === ']') {
          depth--;
          if (depth === 0) {
            end++;
            break;
          }
        }
      }
    } else {
      const m = /^(-?\d+(\.\d+)?([eE][+-]?\d+)?|true|false|null)/.exec(s.slice(start));
      if (m) end = start + m[0].length;
    }
    try {
      if (end === start || end > s.length) throw new Error('empty');
      const value = JSON.parse(s.slice(start, end)) as Json;
      this.#i = end;
      return value;
    } catch {
      throw filterError(`Invalid JSON: ${s.slice(start)}`);
    }
  }
}

/**
 * A filter expression, or (an extension for hand-typed queries) a bare word such as `player`,
 * taken as the string it spells when it is neither JSON nor an expression.
 */
export function parseFilterExpression(expr: string): Matcher {
  try {
    return new ExpressionParser(expr).parse();
  } catch (err) {
    if (/^[A-Za-z0-9_.:@-]+$/.test(expr) && !/^(eq|ne|lt|gt|le|ge|and|or|not|true|false|null)$/.test(expr)) return (s) => s === expr;
    throw err;
  }
}

/** The value at a JSON Pointer (components split on `/`, empty ones skipped, as MaxScale does). */
export function jsonPointer(root: Json, pointer: string): Json | undefined {
  let node: Json | undefined = root;
  for (const raw of pointer.split('/')) {
    if (raw === '') continue;
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(node) && /^\d+$/.test(key)) node = node[Number(key)];
    else if (isObject(node) && Object.hasOwn(node, key)) node = (node as JsonObject)[key];
    else return undefined;
    if (node === undefined) return undefined;
  }
  return node;
}

/** The values a JSONPath (the subset MaxScale supports) selects in `root`. */
export function jsonPath(root: Json, path: string): Json[] {
  const segments: (string | number | '*')[][] = [];
  let s = path.startsWith('$') ? path.slice(1) : path;
  if (s !== '' && !s.startsWith('.') && !s.startsWith('[')) s = `.${s}`;
  const token = /^(?:\.(\*|[^.[\]]+)|\[\s*(\*|'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\d+(?:\s*,\s*\d+)*)\s*\])/;
  while (s !== '') {
    const m = token.exec(s);
    if (!m) throw filterError(`Invalid JSONPath: ${path}`);
    s = s.slice(m[0].length);
    const part = m[1] ?? m[2];
    if (part === '*') segments.push(['*']);
    else if (m[1] !== undefined) segments.push([part]);
    else if (part.startsWith("'") || part.startsWith('"')) segments.push([part.slice(1, -1).replace(/\\(.)/g, '$1')]);
    else segments.push(part.split(',').map((n) => Number(n.trim())));
  }
  let nodes: Json[] = [root];
  for (const alternatives of segments) {
    const next: Json[] = [];
    for (const node of nodes) {
      for (const key of alternatives) {
        if (key === '*') {
          if (Array.isArray(node)) next.push(...node);
          else if (isObject(node)) next.push(...Object.values(node as JsonObject));
        } else if (typeof key === 'number') {
          if (Array.isArray(node) && key < node.length) next.push(node[key]);
        } else if (isObject(node) && Object.hasOwn(node, key)) next.push((node as JsonObject)[key]);
      }
    }
    nodes = next;
  }
  return nodes;
}

/**
 * The row filter of `filter=PTR=EXPR`. The pointer is relative to each row of `data`; one that
 * starts with `/data/` (the document's view) is read past that prefix.
 */
export function pointerFilter(param: string): (row: Json) => boolean {
  const eq = param.indexOf('=');
  if (eq < 0) throw filterError(`Invalid filter expression: ${param}`);
  const pointer = param.slice(0, eq);
  const match = parseFilterExpression(param.slice(eq + 1));
  const inRow = /^\/?data\//.test(pointer) ? pointer.replace(/^\/?data/, '') : pointer;
  return (row) => {
    let value = jsonPointer(row, pointer);
    if (value === undefined && inRow !== pointer) value = jsonPointer(row, inRow);
    return value !== undefined && match(value);
  };
}

/** The row filter of `filter[PATH]=EXPR`: a row matches when any value the path selects does. */
export function pathFilter(path: string, expr: string): (row: Json) => boolean {
  const match = parseFilterExpression(expr);
  jsonPath(null, path); // validates the path
  return (row) => jsonPath(row, path).some((v) => match(v));
}

// ---------------------------------------------------------------------------------------------
// The whole pipeline

export interface CollectionDocument {
  links: { self: string; [key: string]: string };
  data: JsonObject[];
  meta?: JsonObject;
}

/** The query string as one value per name (lower-cased; the first value wins, as in MaxScale). */
export type QueryParams = Record<string, string | undefined>;

/**
 * Filters (`filter`, `filter[…]`), paginates (`page[size]`, `page[number]`) and trims
 * (`fields[…]`) a collection document in place, in MaxScale's order. BAD_REQUEST on a bad filter.
 */
export function shapeCollection(doc: CollectionDocument, type: string, query: QueryParams): void {
  const filters: ((row: Json) => boolean)[] = [];
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined) continue;
    if (key === 'filter') filters.push(pointerFilter(value));
    else if (key.startsWith('filter[') && key.endsWith(']')) filters.push(pathFilter(key.slice(7, -1), value));
  }
  if (filters.length > 0) doc.data = doc.data.filter((row) => filters.every((f) => f(row)));
  paginate(doc, query['page[size]'], query['page[number]']);
  applyFields(doc.data, type, query);
}

/** Applies `fields[type]` to each resource (a collection's rows or one resource). */
export function applyFields(resources: JsonObject[], type: string, query: QueryParams): void {
  const list = query[`fields[${type}]`];
  if (list === undefined) return;
  for (const r of resources) applySparseFieldset(r, type, list);
}

function paginate(doc: CollectionDocument, sizeParam: string | undefined, numberParam: string | undefined): void {
  if (sizeParam === undefined) return;
  const size = Number.parseInt(sizeParam, 10);
  const number = numberParam === undefined ? 0 : Number.parseInt(numberParam, 10);
  if (!(size > 0) || !(number >= 0)) return;
  const total = doc.data.length;
  if (total > size) doc.data = doc.data.slice(number * size, (number + 1) * size);
  Object.assign(doc.links, pageLinks(doc.links.self, size, number, total));
  doc.meta = { ...doc.meta, total };
}

/**
 * The links of page `number` (from 0) of `size` rows over `total`: self, first, last, and next and
 * prev where there are such pages. `suffix` is more query, appended to each.
 */
export function pageLinks(self: string, size: number, number: number, total: number, suffix = ''): Record<string, string> {
  const page = (n: number) => `${self}?page%5Bsize%5D=${size}&page%5Bnumber%5D=${n}${suffix}`;
  const links: Record<string, string> = { self: page(number), first: page(0), last: page(Math.max(0, Math.ceil(total / size) - 1)) };
  if ((number + 1) * size < total) links.next = page(number + 1);
  if (number > 0 && number * size < total) links.prev = page(number - 1);
  return links;
}
