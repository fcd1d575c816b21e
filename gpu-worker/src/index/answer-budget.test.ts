import { describe, expect, it } from "vitest";
import { AnswerBudget, checkAnswerSize } from "./answer-budget.ts";
import { AnswerTooLargeError } from "./search-errors.ts";

describe("AnswerBudget", () => {
  it("counts ids and fields hit by hit and stops at the first hit past the limit", () => {
    const big = { id: "d", score: 1, fields: { text: "x".repeat(1000) } };
    const budget = new AnswerBudget(2500, 1000);
    budget.add(big);
    budget.add(big);
    expect(() => budget.add(big)).toThrow(AnswerTooLargeError);
    expect(() => checkAnswerSize([big, big, big], 2500, 1000)).toThrow(/passed at hit 3 of k = 1000\); ask for a smaller k or fewer fields/);
    expect(() => checkAnswerSize(Array.from({ length: 1000 }, (_, i) => ({ id: `d${i}`, score: 0 })), 60_000, 1000)).not.toThrow();
  });
});
