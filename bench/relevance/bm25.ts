/**
 * The lexical baseline: BM25+ from MiniSearch (minisearch on npm), at its defaults: k1 1.2, b 0.7,
 * δ 0.5, its Unicode word tokenizer, lowercasing, no stemming, no prefix or fuzzy matching, and
 * query terms combined with OR (a document matching any term is ranked, by the summed BM25+ score).
 */
import MiniSearch from "minisearch";

export class Bm25Index {
  private readonly index = new MiniSearch<{ id: string; text: string }>({ fields: ["text"], storeFields: [] });

  constructor(docs: readonly { id: string; text: string }[]) {
    this.index.addAll(docs);
  }

  /** The ids of the k best documents, best first. */
  search(query: string, k: number): string[] {
    return this.index
      .search(query, { combineWith: "OR", prefix: false, fuzzy: false })
      .slice(0, k)
      .map((r) => String(r.id));
  }
}
