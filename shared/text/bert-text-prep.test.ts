import { describe, expect, it } from "vitest";
import { isCjkIdeograph, prepareBertText } from "./bert-text-prep.ts";

const BOTH = { cleanText: true, handleChineseChars: true };

describe("prepareBertText", () => {
  it("drops every C* category except \\t \\n \\r, which become spaces", () => {
    // Cc, Cf (ZWSP, BOM), Co (private use), Cn (unassigned, noncharacter), lone surrogate.
    expect(prepareBertText("a\u0000\u0007\u200b\ufeff\ue000\u0378\uffff\ud800\ufffdb", BOTH)).toBe("ab");
    expect(prepareBertText("a\tb\nc\rd", BOTH)).toBe("a b c d");
  });

  it("maps Zs to a space", () => {
    expect(prepareBertText("a\u00a0b\u2003c\u3000d", BOTH)).toBe("a b c d");
  });

  it("pads CJK ideographs in and outside the BMP", () => {
    expect(prepareBertText("a我\u{20000}b", BOTH)).toBe("a 我  \u{20000} b");
  });

  it("leaves kana and Hangul unpadded (not in HF's CJK ranges)", () => {
    expect(prepareBertText("かな한국", BOTH)).toBe("かな한국");
  });

  it("NFC-composes after cleaning", () => {
    expect(prepareBertText("e\u200b\u0301", BOTH)).toBe("\u00e9");
  });

  it("honours clean_text / handle_chinese_chars = false", () => {
    const off = { cleanText: false, handleChineseChars: false };
    expect(prepareBertText("a\u0007我", off)).toBe("a\u0007我");
  });
});

describe("isCjkIdeograph", () => {
  it.each([0x4e00, 0x9fff, 0x3400, 0x20000, 0x2a700, 0x2b740, 0x2b820, 0x2ceaf, 0xf900, 0x2f800, 0x2fa1f])(
    "U+%s is CJK",
    (cp) => expect(isCjkIdeograph(cp)).toBe(true),
  );
  it.each([0x3041, 0xac00, 0x4dc0, 0x2a6e0, 0x2ceb0, 0x2fa20, 0x41])("U+%s is not", (cp) =>
    expect(isCjkIdeograph(cp)).toBe(false),
  );
});
