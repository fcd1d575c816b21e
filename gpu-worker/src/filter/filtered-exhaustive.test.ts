import { describe, expect, it } from "vitest";
import { matchesFilter, parseFilter } from "../../../shared/filter/filter.ts";
import { buildFilterColumns } from "../../../shared/index/filter-columns.ts";
import type { QNetArchitecture } from "../../../shared/qnet/types.ts";
import { seededRandom } from "../../../shared/random.ts";
import { randomDocument, randomFilter, randomSchema } from "../../../test/support/random-filters.ts";
import { randomFloats, randomQNet } from "../../../test/support/random-qnet.ts";
import { exhaustiveSearch } from "../search/exhaustive.ts";
import { evaluatorRowScorer, type RowScorer } from "../search/row-scorer.ts";
import { compileFilter } from "./compile.ts";
import { scoreRowList } from "./filtered-exhaustive.ts";
import { bitmapRows, countRows, removeDeletedRows } from "./row-bitmap.ts";

const DIM = 8;
const arch: QNetArchitecture = {
  dims: [DIM, DIM, 1],
  activation: "relu",
  doLayerNorm: true,
  doResidual: true,
  doResidualOnLast: false,
  layerNormBeforeResidual: true,
};

describe("scoreRowList", () => {
  it("scores exactly the given rows in batches", async () => {
    const calls: number[] = [];
    const scorer: RowScorer = {
      async scoreRows(rows) {
        calls.push(rows.length);
        return Float32Array.from(rows, (r) => -Math.abs(r - 50));
      },
    };
    const { hits, stats } = await scoreRowList(scorer, Uint32Array.of(10, 49, 52, 90, 51), { k: 3, batchSize: 2, shard: 4 });
    expect(hits.map((h) => [h.row, h.shard])).toEqual([[49, 4], [51, 4], [52, 4]]);
    expect(calls).toEqual([2, 2, 1]);
    expect(stats.docsScored).toBe(5);
    expect((await scoreRowList(scorer, new Uint32Array(0))).hits).toEqual([]);
    await expect(scoreRowList(scorer, Uint32Array.of(1), { k: 0 })).rejects.toThrow(RangeError);
  });

  it("property: with the compiled bitmap minus deleted rows, equals brute force over exactly the live matching documents", async () => {
    const rand = seededRandom(77);
    let nonEmpty = 0;
    for (let round = 0; round < 40; round++) {
      const rows = 50 + Math.floor(rand() * 250);
      const schema = randomSchema(rand);
      const docs = Array.from({ length: rows }, () => randomDocument(schema, rand));
      const deleted = new Uint8Array(Math.ceil(rows / 8));
      for (let r = 0; r < rows; r++) if (rand() < 0.1) deleted[r >> 3] |= 1 << (r & 7);
      const scorer = evaluatorRowScorer(randomQNet(rand, arch), randomFloats(rand, rows * DIM), DIM);
      const all = await exhaustiveSearch(scorer, rows, { k: rows });
      const scoreOf = new Map(all.hits.map((h) => [h.row, h.score]));
      for (let f = 0; f < 5; f++) {
        const filter = parseFilter(randomFilter(schema, rand, 5), schema);
        const matches = compileFilter(filter, buildFilterColumns(schema, docs));
        removeDeletedRows(matches, deleted);
        const k = 1 + Math.floor(rand() * 12);
        const { hits } = await scoreRowList(scorer, bitmapRows(matches), { k, batchSize: 37 });
        const truth = Array.from({ length: rows }, (_, r) => r)
          .filter((r) => !(deleted[r >> 3]! & (1 << (r & 7))) && matchesFilter(filter, docs[r]!))
          .map((r) => ({ row: r, score: scoreOf.get(r)! }))
          .sort((a, b) => b.score - a.score || a.row - b.row)
          .slice(0, k);
        expect(hits.map((h) => [h.row, h.score])).toEqual(truth.map((h) => [h.row, h.score]));
        if (countRows(matches) > 0) nonEmpty++;
      }
    }
    expect(nonEmpty).toBeGreaterThan(100);
  });
});
