import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  applySparseFieldset,
  asctime,
  jsonPath,
  jsonPointer,
  parseBoolean,
  parseFilterExpression,
  shapeCollection,
  type CollectionDocument,
  type JsonObject,
} from '../../src/api/maxscale/query.ts';

const row = (id: string, kind: string, idle: number, service: string): JsonObject => ({
  id,
  type: 'sessions',
  relationships: { services: { links: { self: 'http://h/v1/services/' }, data: [{ id: service, type: 'services' }] } },
  attributes: { kind, idle, memory: { total: 10, other: 1 }, user: 'u' },
  links: { self: `http://h/v1/sessions/${id}` },
});

const doc = (): CollectionDocument => ({
  links: { self: 'http://h/v1/sessions/' },
  data: [row('a', 'player', 0.5, 'default/app'), row('b', 'publisher', 3, 'default/app'), row('c', 'participant', 10, 'room1')],
});

describe('MaxScale request parameters', () => {
  test('booleans as MaxScale reads them', () => {
    for (const v of ['true', 'yes', 'on', '1', 'TRUE']) assert.equal(parseBoolean(v), true);
    for (const v of ['false', 'no', 'off', '0']) assert.equal(parseBoolean(v), false);
    assert.equal(parseBoolean('maybe'), undefined);
    assert.equal(parseBoolean(undefined), undefined);
  });

  test('asctime: C asctime() of local time, which Date parses back', () => {
    const d = new Date(2017, 4, 7, 10, 6, 35);
    assert.equal(asctime(d), 'Sun May  7 10:06:35 2017');
    assert.equal(new Date(asctime(d)).getTime(), d.getTime());
    assert.equal(asctime(new Date(2017, 4, 17, 10, 6, 35)), 'Wed May 17 10:06:35 2017');
  });

  test('filter expressions: JSON literals, comparisons and logic', () => {
    assert.equal(parseFilterExpression('"x"')('x'), true);
    assert.equal(parseFilterExpression('3')(3), true);
    assert.equal(parseFilterExpression('{"a":[1,"]"]}')({ a: [1, ']'] }), true);
    assert.equal(parseFilterExpression('and(ge(50),le(100))')(75), true);
    assert.equal(parseFilterExpression('and(ge(50),le(100))')(101), false);
    assert.equal(parseFilterExpression('or(eq("a"),eq("b"))')('b'), true);
    assert.equal(parseFilterExpression('not(eq("a"))')('a'), false);
    assert.equal(parseFilterExpression('lt("b")')('a'), true);
    assert.equal(parseFilterExpression('gt(1)')('2'), false, 'no ordering across types');
    assert.equal(parseFilterExpression('ne(null)')(null), false);
    // JSON's bare literals are JSON, not words.
    assert.equal(parseFilterExpression('null')(null), true);
    assert.equal(parseFilterExpression('null')('null'), false);
    assert.equal(parseFilterExpression('true')(true), true);
    assert.equal(parseFilterExpression('false')(false), true);
    // A bare word is the string it spells (MaxScale would need the quotes).
    assert.equal(parseFilterExpression('player')('player'), true);
    for (const bad of ['eq(1', 'eq(1))', 'and()', 'eq(x y)', '', 'lt']) {
      assert.throws(() => parseFilterExpression(bad), { code: 'BAD_REQUEST' }, bad);
    }
  });

  test('JSON pointers and JSONPath', () => {
    const r = row('a', 'player', 1, 's');
    assert.equal(jsonPointer(r, '/attributes/kind'), 'player');
    assert.equal(jsonPointer(r, 'attributes/kind'), 'player');
    assert.equal(jsonPointer(r, '/relationships/services/data/0/id'), 's');
    assert.equal(jsonPointer(r, '/attributes/nope'), undefined);
    assert.deepEqual(jsonPath(r, '$.attributes.kind'), ['player']);
    assert.deepEqual(jsonPath(r, "attributes['memory'].total"), [10]);
    assert.deepEqual(jsonPath(r, 'relationships.services.data[*].id'), ['s']);
    assert.deepEqual(jsonPath(r, 'attributes.memory.*').sort(), [1, 10]);
    assert.deepEqual(jsonPath([5, 6, 7], '[0,2]'), [5, 7]);
    assert.throws(() => jsonPath(r, 'a..b['), { code: 'BAD_REQUEST' });
  });

  test('filter=PTR=EXPR keeps matching rows; /data/ prefixed pointers read into the rows', () => {
    for (const filter of ['/attributes/kind="player"', '/data/attributes/kind="player"', '/attributes/kind=player']) {
      const d = doc();
      shapeCollection(d, 'sessions', { filter });
      assert.deepEqual(d.data.map((r) => r.id), ['a'], filter);
    }
    const d = doc();
    shapeCollection(d, 'sessions', { filter: '/relationships/services/data/0/id="default/app"' });
    assert.deepEqual(d.data.map((r) => r.id), ['a', 'b']);
    const e = doc();
    shapeCollection(e, 'sessions', { filter: '/attributes/idle=and(gt(1),lt(5))' });
    assert.deepEqual(e.data.map((r) => r.id), ['b']);
    assert.throws(() => shapeCollection(doc(), 'sessions', { filter: 'no-equals-sign' }), { code: 'BAD_REQUEST' });
    const n = doc();
    (n.data[1].attributes as JsonObject).room = null;
    shapeCollection(n, 'sessions', { filter: '/data/attributes/room=null' });
    assert.deepEqual(n.data.map((r) => r.id), ['b'], 'a null value matches null');
  });

  test('filter[PATH]=EXPR filters are ANDed', () => {
    const d = doc();
    shapeCollection(d, 'sessions', { 'filter[attributes.idle]': 'lt(5)', 'filter[$.relationships.services.data[*].id]': 'eq("default/app")' });
    assert.deepEqual(d.data.map((r) => r.id), ['a', 'b']);
  });

  test('fields[TYPE] keeps the named paths of attributes and relationships', () => {
    const r = row('a', 'player', 1, 's');
    applySparseFieldset(r, 'sessions', 'kind,memory/total');
    assert.deepEqual(r.attributes, { kind: 'player', memory: { total: 10 } });
    assert.equal(r.relationships, undefined);
    assert.equal(r.id, 'a');
    assert.ok(r.links);
    const s = row('a', 'player', 1, 's');
    applySparseFieldset(s, 'sessions', 'services,attributes/user');
    assert.deepEqual(s.attributes, { user: 'u' });
    assert.deepEqual(Object.keys(s.relationships as object), ['services']);
    // As MaxScale: a missing leaf leaves its parent empty; a path past a plain value keeps the value.
    const t = row('a', 'player', 1, 's');
    applySparseFieldset(t, 'sessions', 'memory/nope,kind/deeper');
    assert.deepEqual(t.attributes, { memory: {}, kind: 'player' });
    const u = row('a', 'player', 1, 's');
    applySparseFieldset(u, 'sessions', 'memory,memory/total');
    assert.deepEqual(u.attributes, { memory: { total: 10, other: 1 } });
    const other = row('a', 'player', 1, 's');
    applySparseFieldset(other, 'services', 'kind');
    assert.deepEqual(other, row('a', 'player', 1, 's'), 'another type is left alone');
  });

  test('page[size] and page[number] with MaxScale links and meta.total', () => {
    const d = doc();
    shapeCollection(d, 'sessions', { 'page[size]': '2', 'page[number]': '1' });
    assert.deepEqual(d.data.map((r) => r.id), ['c']);
    assert.equal(d.meta?.total, 3);
    assert.equal(d.links.self, 'http://h/v1/sessions/?page%5Bsize%5D=2&page%5Bnumber%5D=1');
    assert.equal(d.links.prev, 'http://h/v1/sessions/?page%5Bsize%5D=2&page%5Bnumber%5D=0');
    assert.equal(d.links.last, d.links.self);
    assert.equal(d.links.next, undefined);
    const first = doc();
    shapeCollection(first, 'sessions', { 'page[size]': '2' });
    assert.deepEqual(first.data.map((r) => r.id), ['a', 'b']);
    assert.equal(first.links.next, 'http://h/v1/sessions/?page%5Bsize%5D=2&page%5Bnumber%5D=1');
    const ignored = doc();
    shapeCollection(ignored, 'sessions', { 'page[size]': 'zero' });
    assert.equal(ignored.data.length, 3);
  });
});
