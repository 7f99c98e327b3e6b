// A watch that goes silent (a half-open connection: the server neither sends nor closes) is detected by the
// watchdog and replaced. A real API server cannot be made to do that, so this uses a loopback stand-in that
// answers the list and then holds every watch open without a byte.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";
import { afterAll, describe, expect, it } from "vitest";
import { KubeClient } from "../../src/kube/client.ts";
import { Informer } from "../../src/kube/informer.ts";
import { ConfigMaps } from "../../src/kube/resources.ts";
import { waitFor } from "../harness/net.ts";

const held: http.ServerResponse[] = [];
let watches = 0;
const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://x");
  if (url.searchParams.get("watch") === "true") {
    watches++;
    res.writeHead(200, { "Content-Type": "application/json" });
    res.flushHeaders();
    held.push(res); // never written, never ended
    return;
  }
  res.writeHead(200, { "Content-Type": "application/json" });
  res.end(
    JSON.stringify({
      kind: "ConfigMapList",
      metadata: { resourceVersion: "7" },
      items: [{ metadata: { name: "a", namespace: "ns", resourceVersion: "5", uid: "u" } }],
    }),
  );
});

afterAll(async () => {
  for (const r of held) r.destroy();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

describe("informer watchdog", () => {
  it("replaces a silent watch instead of waiting forever", async () => {
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "c", server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
      users: [{ name: "u", token: "t" }],
      contexts: [{ name: "x", cluster: "c", user: "u" }],
      currentContext: "x",
    });
    const client = new KubeClient(kc);
    const inf = new Informer(client, ConfigMaps, { stallTimeoutMs: 300, backoffBaseMs: 50 });
    inf.start();
    await inf.waitForSync();
    expect(inf.get("ns", "a")?.metadata.resourceVersion).toBe("5");
    await waitFor("two stalls detected and a third watch opened", () => (inf.stats.stalls >= 2 && watches >= 3 ? true : undefined), {
      timeoutMs: 10_000,
    });
    await inf.stop();
    client.close();
    // A stall is not an expiry: the informer resumes from its resourceVersion, without relisting.
    expect(inf.stats.lists).toBe(1);
  });
});
