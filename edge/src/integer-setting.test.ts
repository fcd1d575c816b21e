import { describe, expect, it } from "vitest";
import { integerSetting } from "./integer-setting.ts";

describe("integerSetting", () => {
  it("gives the default for an absent or blank value, and the integer otherwise", () => {
    expect(integerSetting("X", undefined, 7, { min: 0 })).toBe(7);
    expect(integerSetting("X", "  ", 7, { min: 0 })).toBe(7);
    expect(integerSetting("X", "0", 7, { min: 0 })).toBe(0);
    expect(integerSetting("X", "3600", 900, { min: 60, max: 3600 })).toBe(3600);
  });

  it("throws, naming the setting and its bounds, for anything else", () => {
    expect(() => integerSetting("RATE", "lots", 1, { min: 0 })).toThrow('RATE must be a non-negative integer, got "lots"');
    expect(() => integerSetting("SLOTS", "0", 2, { min: 1 })).toThrow('SLOTS must be a positive integer, got "0"');
    expect(() => integerSetting("TTL", "59", 900, { min: 60, max: 3600 })).toThrow('TTL must be an integer from 60 to 3600, got "59"');
    expect(() => integerSetting("TTL", "1.5", 900, { min: 60, max: 3600 })).toThrow(/TTL must be an integer from 60 to 3600/);
  });
});
