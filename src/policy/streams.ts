// The stream allocator (docs/operations.md, "Aux copy jobs", Streams): every MediaAgent copy pod is one stream. A
// new stream needs a free one under the job's own cap (spec.streams, default: as many as allowed) and under
// maxStreams of every library it reads or writes, counting the streams of all jobs in the namespace. With none free
// the copy waits, with its place in the queue. Pure.

export interface StreamRequest {
  /** The job's cap; undefined: "allow maximum". */
  jobStreams?: number;
  /** Streams this job runs now. */
  jobInUse: number;
  /** Each library the stream would use, with its cap and the streams using it now. */
  libraries: { name: string; maxStreams: number; inUse: number }[];
}

export type StreamVerdict = { ok: true } | { ok: false; message: string };

export function allocateStream(r: StreamRequest): StreamVerdict {
  if (r.jobStreams !== undefined && r.jobInUse >= r.jobStreams)
    return { ok: false, message: `all ${r.jobStreams} streams of this job are in use` };
  for (const l of r.libraries)
    if (l.inUse >= l.maxStreams)
      return { ok: false, message: `library "${l.name}" has no free stream (${l.inUse} of ${l.maxStreams} in use)` };
  return { ok: true };
}

/** Queue position of a waiting stream request: 1 + the older requests still waiting (by creation time, then name). */
export function queuePosition(mine: { createdAt: string; name: string }, waiting: { createdAt: string; name: string }[]): number {
  return 1 + waiting.filter((w) => w.createdAt < mine.createdAt || (w.createdAt === mine.createdAt && w.name < mine.name)).length;
}
