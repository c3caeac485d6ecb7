import type { TaskInstance, TaskState } from "../../../common/types.js";
import { badge, esc } from "../../../http/pages/html.js";

/**
 * The job page's window onto its tasks: counts by state for all of them, and
 * one page of rows (TASKS_PER_PAGE, optionally of one state), so a job of
 * 5,000 instances renders 200 rows instead of 5,000. The client script
 * updates the counts from the compact `states` string (one letter per task
 * index) and touches only the rows on the page.
 */

export const TASKS_PER_PAGE = 200;
export const TASK_STATES: readonly TaskState[] = ["pending", "dispatched", "running", "completed", "failed", "killed", "lost"];
/** One letter per state, for the `states` string of the page's client state. */
export const STATE_LETTERS: Readonly<Record<TaskState, string>> = { pending: "p", dispatched: "d", running: "r", completed: "c", failed: "f", killed: "k", lost: "l" };

export interface WindowQuery {
  state?: TaskState;
  /** 1-based. */
  page: number;
}

export interface TaskWindow {
  /** The rows on this page, by index. */
  rows: TaskInstance[];
  /** Tasks matching the filter. */
  matching: number;
  page: number;
  pages: number;
  counts: Record<TaskState, number>;
  /** States of all tasks, one letter per index (" " where no task has that index). */
  states: string;
}

/** `tasks` sorted by index. */
export function taskWindow(tasks: readonly TaskInstance[], q: WindowQuery, perPage = TASKS_PER_PAGE): TaskWindow {
  const counts = Object.fromEntries(TASK_STATES.map((s) => [s, 0])) as Record<TaskState, number>;
  const letters: string[] = [];
  const matching: TaskInstance[] = [];
  for (const t of tasks) {
    counts[t.state]++;
    while (letters.length < t.index) letters.push(" ");
    letters[t.index] = STATE_LETTERS[t.state];
    if (!q.state || t.state === q.state) matching.push(t);
  }
  const pages = Math.max(1, Math.ceil(matching.length / perPage));
  const page = Math.min(Math.max(1, q.page), pages);
  return { rows: matching.slice((page - 1) * perPage, page * perPage), matching: matching.length, page, pages, counts, states: letters.join("") };
}

/** Reads `?state=` and `?page=` (anything else: all tasks, page 1). */
export function windowQuery(query: Record<string, unknown>): WindowQuery {
  const state = TASK_STATES.find((s) => s === query.state);
  const page = typeof query.page === "string" && /^[1-9]\d{0,6}$/.test(query.page) ? Number(query.page) : 1;
  return { ...(state ? { state } : {}), page };
}

function href(q: WindowQuery): string {
  const p = new URLSearchParams();
  if (q.state) p.set("state", q.state);
  if (q.page > 1) p.set("page", String(q.page));
  const s = p.toString();
  return s ? `?${s}#tasks` : "?#tasks";
}

/** Counts by state (each a filter link) and previous/next links. */
export function windowControls(w: TaskWindow, q: WindowQuery): string {
  const filters = [`<a href="${esc(href({ page: 1 }))}"${q.state ? "" : ` aria-current="true"`}>all</a>`, ...TASK_STATES.map((s) => `<a href="${esc(href({ state: s, page: 1 }))}"${q.state === s ? ` aria-current="true"` : ""}>${badge(s)} <span data-state-count="${s}">${w.counts[s]}</span></a>`)];
  const first = w.matching === 0 ? 0 : (w.page - 1) * TASKS_PER_PAGE + 1;
  const last = (w.page - 1) * TASKS_PER_PAGE + w.rows.length;
  const prev = w.page > 1 ? `<a rel="prev" href="${esc(href({ ...q, page: w.page - 1 }))}">← previous</a>` : "";
  const next = w.page < w.pages ? `<a rel="next" href="${esc(href({ ...q, page: w.page + 1 }))}">next →</a>` : "";
  return `<p class="task-filter" id="task-counts">${filters.join(" · ")}</p>
<p class="task-pager" id="task-pager">Tasks ${first}–${last} of ${w.matching}${q.state ? ` ${esc(q.state)}` : ""} (page ${w.page} of ${w.pages}) ${prev} ${next}</p>`;
}
