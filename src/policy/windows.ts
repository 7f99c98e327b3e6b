// Operation (blackout) windows: do-not-run intervals on days of the week, in the policy's time zone, optionally
// within a date range; an end before the start runs past midnight. A job that would start inside one is Queued until
// it ends; a job already running goes on (Commvault 11.16's behaviour). Pure; luxon for zones.
import { DateTime } from "luxon";

export interface Window {
  name: string;
  operations: string[];
  days: string[];
  start: string;
  end: string;
  from?: string;
  until?: string;
  doNotSubmitJob?: boolean;
  enabled?: boolean;
}

const minutes = (hhmm: string) => {
  const [h, m] = hhmm.split(":").map(Number) as [number, number];
  return h * 60 + m;
};

/** The window that blocks `operation` at `now`, with when it ends; undefined when the operation may start. */
export function blockingWindow(
  windows: Window[] | undefined,
  operation: string,
  now: number,
  timeZone = "UTC",
): { window: Window; endsAt: number } | undefined {
  const t = DateTime.fromMillis(now, { zone: timeZone });
  const minute = t.hour * 60 + t.minute;
  for (const w of windows ?? []) {
    if (w.enabled === false || !(w.operations.includes(operation) || w.operations.includes("All"))) continue;
    const start = minutes(w.start);
    const end = minutes(w.end);
    // The day the interval started on: today, or yesterday for the part of an overnight window after midnight.
    const candidates: DateTime[] = [];
    if (start < end) {
      if (minute >= start && minute < end) candidates.push(t.startOf("day"));
    } else {
      if (minute >= start) candidates.push(t.startOf("day"));
      if (minute < end) candidates.push(t.startOf("day").minus({ days: 1 }));
    }
    for (const day of candidates) {
      const date = day.toISODate() as string;
      if (w.days.length > 0 && !w.days.includes(day.weekdayLong ?? "")) continue;
      if ((w.from && date < w.from) || (w.until && date > w.until)) continue;
      // Wall-clock end (set, not plus minutes): a day when clocks go back has 25 hours, and 09:00 is 9 h 60 min after
      // midnight.
      const endsAt = day
        .plus({ days: start < end ? 0 : 1 })
        .set({ hour: Math.floor(end / 60), minute: end % 60 })
        .toMillis();
      return { window: w, endsAt };
    }
  }
  return undefined;
}
