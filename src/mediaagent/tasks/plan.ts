// plan: what a copy would take, without copying. A promotion check counts the jobs of the primary its candidate
// lacks; with `downstream` (the copies the promotion re-points to the candidate), their needs count too.
import type { CatalogEntry } from "../../policy/catalog.ts";
import { type PromotionDownstream, promotionShortfall } from "../../policy/promotion.ts";
import { type Handler, messageOf } from "../context.ts";

export const plan: Handler<"plan"> = async (spec, { engine, repo, timeoutMs }) => {
  if (!spec.source || !spec.plan) throw new Error("plan needs a source and rules");
  const primary = await engine.catalog(repo(spec.source), timeoutMs);
  const candidate = await engine.catalog(repo(spec.target), timeoutMs);
  const unread: string[] = [];
  const downstream: PromotionDownstream[] = [];
  for (const d of spec.downstream ?? []) {
    let catalog: CatalogEntry[] | undefined;
    if (!d.unreachable)
      catalog = await engine.catalog(repo(d.access), timeoutMs).catch((err: unknown) => {
        unread.push(`${d.name}: ${messageOf(err)}`); // cannot be read: it may need any job
        return undefined;
      });
    downstream.push({ name: d.name, rules: d.rules, catalog });
  }
  const short = promotionShortfall(primary, candidate, spec.plan.rules, downstream, Date.now());
  return { ok: true, ...short, ...(unread.length ? { downstreamUnread: unread.slice(0, 5) } : {}) };
};
