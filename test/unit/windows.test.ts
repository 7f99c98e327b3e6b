// Operation windows: days, overnight intervals, date ranges, time zones, operations and the enabled switch.
import { describe, expect, it } from "vitest";
import { blockingWindow, type Window } from "../../src/policy/windows.ts";

const night: Window = { name: "night", operations: ["AuxCopy"], days: ["Friday"], start: "22:00", end: "06:00" };
const at = (iso: string) => Date.parse(iso);

describe("operation windows", () => {
  it("block from the start on its days, past midnight, until the end", () => {
    // 2026-11-20 is a Friday.
    expect(blockingWindow([night], "AuxCopy", at("2026-11-20T21:59:00Z"))).toBeUndefined();
    expect(blockingWindow([night], "AuxCopy", at("2026-11-20T22:00:00Z"))?.endsAt).toBe(at("2026-11-21T06:00:00Z"));
    expect(blockingWindow([night], "AuxCopy", at("2026-11-21T05:59:00Z"))?.window.name).toBe("night");
    expect(blockingWindow([night], "AuxCopy", at("2026-11-21T06:00:00Z"))).toBeUndefined();
    // Saturday night is not a Friday night.
    expect(blockingWindow([night], "AuxCopy", at("2026-11-21T23:00:00Z"))).toBeUndefined();
  });

  it("read times in the policy's time zone", () => {
    const day = { ...night, days: [], start: "09:00", end: "17:00" };
    expect(blockingWindow([day], "AuxCopy", at("2026-07-01T07:30:00Z"), "Europe/Paris")?.endsAt).toBe(at("2026-07-01T15:00:00Z"));
    expect(blockingWindow([day], "AuxCopy", at("2026-07-01T15:00:00Z"), "Europe/Paris")).toBeUndefined();
  });

  it("apply only to their operations, inside their dates, while enabled", () => {
    const w = { ...night, days: [], start: "00:00", end: "23:59", from: "2026-11-01", until: "2026-11-30" };
    expect(blockingWindow([w], "DataAging", at("2026-11-10T12:00:00Z"))).toBeUndefined();
    expect(blockingWindow([{ ...w, operations: ["All"] }], "DataAging", at("2026-11-10T12:00:00Z"))).toBeDefined();
    expect(blockingWindow([w], "AuxCopy", at("2026-12-01T12:00:00Z"))).toBeUndefined();
    expect(blockingWindow([{ ...w, enabled: false }], "AuxCopy", at("2026-11-10T12:00:00Z"))).toBeUndefined();
  });

  it("ends at the wall-clock end on a day when clocks go back (25 hours)", () => {
    // Paris, 27 Oct 2024: 03:00 CEST goes back to 02:00 CET; a 00:00-09:00 window ends at 09:00 CET = 08:00Z.
    const w: Window = { name: "morning", operations: ["AuxCopy"], days: [], start: "00:00", end: "09:00" };
    expect(blockingWindow([w], "AuxCopy", at("2024-10-27T07:00:00Z"), "Europe/Paris")?.endsAt).toBe(at("2024-10-27T08:00:00Z"));
  });
});
