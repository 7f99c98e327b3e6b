// Job events beside a copy's repository (docs/job-metadata.md), as the tasks write and read them.
import { failedVerificationOf, type JobEvent, jobRecords } from "../policy/jobevents.ts";
import type { Access } from "./context.ts";
import { messageOf } from "./context.ts";
import type { RunRecord } from "../policy/runrecords.ts";
import { type MetadataStore, metadataStore } from "./metadata.ts";

/**
 * Writes job events in the background. The data is what counts: an event that cannot be written (metadata folder
 * unwritable, storage gone) leaves a note in the result instead of failing work that is done.
 */
export class EventWriter {
  private readonly store?: MetadataStore;
  private readonly pod?: string;
  private writes: Promise<void>[] = [];
  private failed: JobEvent[] = [];
  private errors = 0;
  private lastError = "";
  /** `sleep` waits between the rounds of writing again. */
  private readonly sleep: (ms: number) => Promise<void>;
  constructor(store: MetadataStore | undefined, pod?: string, sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))) {
    this.store = store;
    this.pod = pod;
    this.sleep = sleep;
  }

  add(e: Omit<JobEvent, "schema" | "at" | "pod">): void {
    if (!this.store) return;
    const event = { ...e, at: new Date().toISOString(), pod: this.pod } as JobEvent;
    this.writes.push(
      this.store.add(event).catch(() => {
        this.failed.push(event); // written again at flush: the storage may be back by then
      }),
    );
  }

  /** Waits for the writes; those that failed (a storage outage mid-run) are tried again, 1 s doubling, 3 times. */
  async flush(): Promise<void> {
    await Promise.all(this.writes);
    this.writes = [];
    for (let round = 0; round < 3 && this.failed.length; round++) {
      await this.sleep(1000 * 2 ** round);
      const again = this.failed;
      this.failed = [];
      await Promise.all(
        again.map((event) =>
          (this.store as MetadataStore).add(event).catch((err: unknown) => {
            this.failed.push(event);
            this.lastError = messageOf(err);
          }),
        ),
      );
    }
    this.errors = this.failed.length;
  }

  problem(): { metadataError?: string } {
    return this.errors ? { metadataError: `${this.errors} job events not written: ${this.lastError}` } : {};
  }
}

/** The writer for a copy's events, signed with this pod's name. */
export const eventWriter = (a: Access, env: NodeJS.ProcessEnv): EventWriter =>
  new EventWriter(metadataStore(a.metadata, env, a), env.AUXO_POD_NAME);

/** Jobs Bad on a copy (their latest verification failed, not copied again since), from the metadata beside its repository. */
export async function failedVerification(a: Access, env: NodeJS.ProcessEnv): Promise<Set<string>> {
  const store = metadataStore(a.metadata, env, a);
  if (!store) return new Set();
  const out = new Set<string>();
  for (const [job, r] of jobRecords(await store.list())) if (failedVerificationOf(r)) out.add(job);
  return out;
}

/**
 * Leaves the run's record beside the repository (policy/runrecords.ts). Like a job event, a record that cannot be
 * written is a note in the result, never a failed run: the work is done.
 */
export async function recordRun(
  a: Access,
  env: NodeJS.ProcessEnv,
  r: Omit<RunRecord, "schema" | "at" | "pod">,
): Promise<{ metadataError?: string }> {
  const store = metadataStore(a.metadata, env, a);
  if (!store) return {};
  try {
    await store.addRun({ ...r, at: new Date().toISOString(), pod: env.AUXO_POD_NAME });
    return {};
  } catch (err) {
    return { metadataError: `the run's record was not written: ${messageOf(err)}` };
  }
}
