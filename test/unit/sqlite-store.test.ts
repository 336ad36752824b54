/** The embedded store's recordings and room-token housekeeping, on a real SQLite file. */
import { test } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { eventsContract, grantsContract, nodeScopeContract, recordingsContract } from '../helpers/store-contract.ts';

function withStore(fn: (store: SqliteStore, dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-store-'));
    const store = new SqliteStore(dir);
    try {
      await fn(store, dir);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test('recordings: by id or uuid, newest first, per room session, unfinished ones, delete; they survive a reopen', withStore(async (store, dir) => {
  await recordingsContract(store, async () => {
    await store.close();
    return new SqliteStore(dir);
  });
}));

test('room grants: expired and long-used ones are pruned, live ones stay; deleting a room deletes its grants', withStore(async (store) => {
  await grantsContract(store);
}));

test('what a node holds: open room sessions, tokens, completing and unfinished recordings, of one node or all', withStore(async (store) => {
  await nodeScopeContract(store);
}));

test('the event outbox: pending deliveries per endpoint, pairs closed once, listing with deliveries, pruning', withStore(async (store) => {
  await eventsContract(store);
}));
