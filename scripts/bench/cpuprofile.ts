/**
 * Reads a V8 .cpuprofile (deno run --cpu-prof) and sums sample time two ways: by function
 * (self time) and by area (which code the sampled frame belongs to), so the report can say
 * where a request's CPU goes.
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  totalMs: number;
  /** Share of samples that were not idle. */
  busyMs: number;
  areas: Array<{ area: string; ms: number; share: number }>;
  functions: Array<{ fn: string; area: string; ms: number; share: number }>;
  /** Inclusive time of chosen frames (self + descendants), by label. */
  inclusive: Array<{ label: string; ms: number; share: number }>;
}

/** Which code a frame belongs to, from its script URL. */
export function areaOf(url: string, fn: string): string {
  if (fn === "(idle)") return "(idle)";
  if (fn === "(garbage collector)") return "V8 garbage collector";
  if (fn === "(program)") return "V8/Deno native (program)";
  if (url === "") return "V8/Deno native (program)";
  const npm = /\/npm\/registry\.npmjs\.org\/(@[^/]+\/[^/]+|[^/]+)\//.exec(url);
  if (npm) {
    const pkg = npm[1];
    if (pkg === "@modelcontextprotocol/sdk") return "MCP SDK";
    return `npm:${pkg}`;
  }
  const src = /\/(src\/[^/]+(?:\/[^/]+)?)/.exec(url);
  if (src && url.startsWith("file://")) {
    const p = src[1];
    return `sosvault ${p.replace(/\.ts$/, "").replace(/\/[^/]+\.ts$/, "")}`;
  }
  if (url.startsWith("ext:deno_node") || url.startsWith("node:")) return "Deno node compat";
  if (url.startsWith("ext:deno_http") || url.startsWith("ext:deno_fetch")) {
    return "Deno HTTP (Deno.serve/fetch JS)";
  }
  if (url.startsWith("ext:deno_kv")) return "Deno KV (JS)";
  if (url.startsWith("ext:deno_web") || url.startsWith("ext:deno_webidl")) {
    return "Deno web APIs (streams, encoding, timers)";
  }
  if (url.startsWith("ext:deno_crypto")) return "Deno crypto (JS)";
  if (url.startsWith("ext:")) return `Deno ${url.slice(4).split("/")[0]}`;
  return url.replace(/^file:\/\/.*\/(scripts|tests)\//, "$1/");
}

export function summarise(
  profile: Profile,
  inclusiveOf: Record<string, (fn: string, url: string) => boolean> = {},
): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i + 1] ?? 0;
    selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + dt);
  }
  const areas = new Map<string, number>();
  const fns = new Map<string, { area: string; us: number }>();
  const incl = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    const { functionName, url, lineNumber } = n.callFrame;
    const fn = functionName || "(anonymous)";
    const area = areaOf(url, fn);
    total += us;
    if (area === "(idle)") {
      idle += us;
      continue;
    }
    areas.set(area, (areas.get(area) ?? 0) + us);
    const key = `${fn} ${url.replace(/^.*\//, "")}:${lineNumber + 1}`;
    const f = fns.get(key) ?? { area, us: 0 };
    f.us += us;
    fns.set(key, f);
    // Inclusive: charge each label once per sample if any ancestor frame matches it.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const cf = byId.get(cur)!.callFrame;
      for (const [label, match] of Object.entries(inclusiveOf)) {
        if (!seen.has(label) && match(cf.functionName, cf.url)) {
          seen.add(label);
          incl.set(label, (incl.get(label) ?? 0) + us);
        }
      }
    }
  }
  const busy = total - idle;
  const share = (us: number) => (busy > 0 ? us / busy : 0);
  return {
    totalMs: total / 1000,
    busyMs: busy / 1000,
    areas: [...areas].map(([area, us]) => ({ area, ms: us / 1000, share: share(us) }))
      .sort((a, b) => b.ms - a.ms),
    functions: [...fns].map(([fn, v]) => ({
      fn,
      area: v.area,
      ms: v.us / 1000,
      share: share(v.us),
    }))
      .sort((a, b) => b.ms - a.ms),
    inclusive: [...incl].map(([label, us]) => ({ label, ms: us / 1000, share: share(us) }))
      .sort((a, b) => b.ms - a.ms),
  };
}

export async function readProfile(dir: string): Promise<Profile> {
  for await (const e of Deno.readDir(dir)) {
    if (e.name.endsWith(".cpuprofile")) {
      return JSON.parse(await Deno.readTextFile(`${dir}/${e.name}`));
    }
  }
  throw new Error(`no .cpuprofile in ${dir}`);
}
