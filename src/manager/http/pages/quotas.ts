import { formatBytes } from "../../../common/units.js";
import { esc, table } from "../../../http/pages/html.js";
import { coresText } from "../../quota/admission.js";
import { BANDS } from "../../quota/usage.js";
import type { QuotaView } from "../quotas.js";

function against(used: string, limit: string | undefined): string {
  return `${esc(used)} / ${limit === undefined ? `<span class="muted">unlimited</span>` : esc(limit)}`;
}

/** The overview's quota table: use against quota per namespace with a quota and band (namespaces without one are unlimited and left out). */
export function quotaSection(views: readonly QuotaView[]): string {
  const limited = views.filter((v) => v.quota);
  if (limited.length === 0) return `<h2 id="quotas">Quotas</h2><p class="muted">No quotas are set: every namespace is unlimited.</p>`;
  const rows = limited.flatMap((v) =>
    BANDS.map((b) => {
      const u = v.used[b];
      const q = v.quota![b];
      return `<tr data-quota="${esc(v.namespace)}/${b}"><td>${esc(v.namespace)}</td><td>${b}</td><td>${against(coresText(u.cpu), coresText(q.cpu))}</td><td>${against(formatBytes(u.memory), formatBytes(q.memory))}</td><td>${against(String(u.instances), q.instances === null ? undefined : String(q.instances))}</td></tr>`;
    }),
  );
  return `<h2 id="quotas">Quotas</h2>${table(["Namespace", "Band", "CPU (cores)", "Memory", "Instances"], rows)}<p class="muted">Reserved by live jobs against each namespace's quota, as of loading this page; prod is priority 200 and above.</p>`;
}
