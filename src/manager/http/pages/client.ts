/**
 * The pages' one client script, served as a static file (so the CSP can
 * forbid inline scripts). It only ever writes data with textContent or
 * createTextNode, never as markup. It reads its starting state from the
 * page's `<script type="application/json" id="torca-state">` and then
 * follows `/v1/events` (the session cookie authenticates the stream).
 */
export const CLIENT_SCRIPT = String.raw`(function () {
  "use strict";
  if (!window.__loadId) window.__loadId = String(Math.random()).slice(2);
  var page = document.body.getAttribute("data-page");
  var stateEl = document.getElementById("torca-state");
  var state = stateEl ? JSON.parse(stateEl.textContent || "{}") : {};
  var live = document.getElementById("live");
  var ORDER = ["pending", "dispatched", "running", "completed", "failed", "killed", "lost"];
  var TERMINAL = { completed: 1, failed: 1, killed: 1, lost: 1 };

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function badge(s) { return el("span", s, "badge s-" + String(s).replace(/[^a-z-]/g, "")); }
  function link(href, text) { var a = el("a", text); a.href = href; return a; }
  function fmtTime(ms) { return ms ? new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z") : ""; }
  function fmtBytes(n) {
    var u = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (Math.round(n * 10) / 10) + " " + u[i];
  }
  function byAttr(attr, value, root) {
    var all = (root || document).querySelectorAll("[" + attr + "]");
    for (var i = 0; i < all.length; i++) if (all[i].getAttribute(attr) === value) return all[i];
    return null;
  }
  function setCell(row, f, node) {
    var c = byAttr("data-f", f, row);
    if (c) c.replaceChildren(typeof node === "string" ? document.createTextNode(node) : node);
  }
  function taskCounts(m) {
    var n = {};
    Object.keys(m || {}).forEach(function (k) { n[m[k]] = (n[m[k]] || 0) + 1; });
    return ORDER.filter(function (s) { return n[s]; }).map(function (s) { return s + " " + n[s]; }).join(" · ");
  }
  function nodeLink(id) { return id ? link("/nodes/" + encodeURIComponent(id), id) : document.createTextNode(""); }

  // ---- job rows (overview, jobs page) ----
  function bumpCount(status, d) {
    var c = byAttr("data-count", status);
    if (c) c.textContent = String(Number(c.textContent) + d);
  }
  function matchesFilter(job) {
    var f = state.filter || {};
    return (!f.status || job.status === f.status) && (!f.type || job.spec.type === f.type);
  }
  function addJobRow(job) {
    var tbody = document.querySelector("#jobs-table tbody");
    if (!tbody || !state.tasks || !matchesFilter(job)) return null;
    var tr = document.createElement("tr");
    tr.setAttribute("data-job", job.id);
    tr.setAttribute("data-type", job.spec.type);
    var cells = [link("/jobs/" + encodeURIComponent(job.id), job.spec.name), job.spec.namespace, job.spec.type, job.spec.priority, "status", "tasks", job.spec.instances, fmtTime(job.submittedAt)];
    cells.forEach(function (c) {
      var td = document.createElement("td");
      if (c === "status" || c === "tasks") td.setAttribute("data-f", c);
      else if (typeof c === "object") td.appendChild(c);
      else td.textContent = String(c);
      tr.appendChild(td);
    });
    tbody.insertBefore(tr, tbody.firstChild);
    var none = document.getElementById("no-jobs");
    if (none) none.remove();
    return tr;
  }
  function onJob(job) {
    var statuses = state.statuses;
    var prev = statuses ? statuses[job.id] : undefined;
    if (statuses) {
      if (job.deleted) delete statuses[job.id]; else statuses[job.id] = job.status;
      var next = job.deleted ? undefined : job.status;
      if (prev !== next) {
        if (prev) bumpCount(prev, -1);
        if (next) bumpCount(next, 1);
        var total = document.getElementById("job-total");
        if (total && !prev !== !next) total.textContent = String(Number(total.textContent) + (next ? 1 : -1));
      }
    }
    var row = byAttr("data-job", job.id);
    if (job.deleted) { if (row) row.remove(); return; }
    if (!row && statuses && prev === undefined) row = addJobRow(job);
    if (row) {
      setCell(row, "status", badge(job.status));
      if (state.tasks) setCell(row, "tasks", taskCounts(state.tasks[job.id]));
    }
    if (state.job === job.id) {
      var st = document.getElementById("job-status");
      if (st) st.replaceChildren(badge(job.status));
      var up = document.getElementById("job-updated");
      if (up) up.textContent = fmtTime(job.updatedAt);
      var ver = document.getElementById("job-version");
      if (ver) ver.textContent = String(job.version || 0);
      var dep = document.getElementById("job-deployment");
      if (dep && job.deployment) dep.textContent = job.deployment.status + ": " + job.deployment.description;
      refreshDeployment();
    }
  }

  // ---- the deployment card (job page): per-version counts re-read from the API after the job's events, at most once a second ----
  var deploymentTimer = null;
  function refreshDeployment() {
    var body = document.querySelector("#deployment-versions tbody");
    if (!body || deploymentTimer) return;
    deploymentTimer = setTimeout(function () {
      deploymentTimer = null;
      fetch("/v1/jobs/" + encodeURIComponent(state.job) + "/deployment", { credentials: "same-origin", headers: { accept: "application/json" } }).then(function (res) {
        return res.ok ? res.json() : null;
      }).then(function (d) {
        if (!d) return;
        body.replaceChildren.apply(body, d.versions.map(function (v) {
          var tr = document.createElement("tr");
          [v.version, v.instances, v.healthy, v.unhealthy, v.canaries, v.stopping].forEach(function (x) { tr.appendChild(el("td", x)); });
          return tr;
        }));
        var dep = document.getElementById("job-deployment");
        if (dep) dep.textContent = d.deployment ? d.deployment.status + ": " + d.deployment.description : "none";
        // Health comes with time (minHealthyTime), not only with events: while a deployment is under way, look again.
        if (d.deployment && DEPLOYING[d.deployment.status]) refreshDeployment();
      }).catch(function () { /* the next event tries again */ });
    }, 1000);
  }
  var DEPLOYING = { running: 1, "awaiting-promotion": 1, paused: 1 };

  // ---- task rows and timelines (job page, task page) ----
  function appendEvents(t) {
    var list = document.getElementById("timeline");
    if (!list || !state.seen) return;
    var seen = state.seen[t.index] || 0;
    if (t.events.length < seen) seen = t.events.length - 1 < 0 ? 0 : t.events.length - 1;
    var stick = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
    for (var i = seen; i < t.events.length; i++) {
      var e = t.events[i];
      var li = el("li");
      li.appendChild(el("time", fmtTime(e.at)));
      li.appendChild(el("strong", t.id));
      li.appendChild(document.createTextNode(" " + e.type + ": " + e.message));
      list.appendChild(li);
    }
    state.seen[t.index] = t.events.length;
    if (stick) list.scrollTop = list.scrollHeight;
  }
  function addTaskRow(t) {
    var tbody = document.querySelector("#tasks-table tbody");
    if (!tbody) return null;
    var tr = document.createElement("tr");
    tr.setAttribute("data-task", String(t.index));
    var first = document.createElement("td");
    first.appendChild(link("/tasks/" + encodeURIComponent(t.jobId) + "/" + t.index, String(t.index)));
    tr.appendChild(first);
    ["state", "node", "attempt", "why", "updated"].forEach(function (f) {
      var td = document.createElement("td");
      td.setAttribute("data-f", f);
      if (f === "why") td.className = "wrap";
      tr.appendChild(td);
    });
    tbody.appendChild(tr);
    return tr;
  }
  function fillTask(root, t) {
    setCell(root, "state", badge(t.state));
    setCell(root, "node", nodeLink(t.nodeId));
    setCell(root, "attempt", String(t.attempt));
    setCell(root, "why", t.reason || (t.exit && t.exit.reason) || "");
    setCell(root, "updated", fmtTime(t.updatedAt));
    setCell(root, "desired", t.desired);
    setCell(root, "restarts", String(t.restartsOnNode));
    setCell(root, "started", fmtTime(t.startedAt));
    setCell(root, "finished", fmtTime(t.finishedAt));
  }
  // The job page shows one window of its tasks (task-window.ts): counts for all, rows for the window only.
  var LETTERS = { pending: "p", dispatched: "d", running: "r", completed: "c", failed: "f", killed: "k", lost: "l" };
  var BY_LETTER = {};
  Object.keys(LETTERS).forEach(function (k) { BY_LETTER[LETTERS[k]] = k; });
  function countState(t) {
    if (typeof state.states !== "string") return;
    var s = state.states;
    while (s.length <= t.index) s += " ";
    var prev = BY_LETTER[s.charAt(t.index)];
    if (prev === t.state) return;
    state.states = s.slice(0, t.index) + LETTERS[t.state] + s.slice(t.index + 1);
    [[prev, -1], [t.state, 1]].forEach(function (p) {
      var c = p[0] ? byAttr("data-state-count", p[0]) : null;
      if (c) c.textContent = String(Number(c.textContent) + p[1]);
    });
  }
  function roomForRow(t) {
    var w = state.window;
    if (!w) return true;
    var rows = document.querySelectorAll("#tasks-table tbody tr").length;
    return w.lastPage && rows < w.perPage && (!w.state || w.state === t.state);
  }
  function onTask(t) {
    if (t.deleted) return;
    if (state.tasks) {
      var m = state.tasks[t.jobId] || (state.tasks[t.jobId] = {});
      m[t.index] = t.state;
      var row = byAttr("data-job", t.jobId);
      if (row) setCell(row, "tasks", taskCounts(m));
    }
    if (page === "job" && state.job === t.jobId) {
      countState(t);
      refreshDeployment();
      var tr = byAttr("data-task", String(t.index)) || (roomForRow(t) ? addTaskRow(t) : null);
      if (tr) {
        fillTask(tr, t);
        if (!(t.index in state.seen)) state.seen[t.index] = 0;
        appendEvents(t);
      }
    }
    if (page === "task" && state.task === t.id) {
      fillTask(document.querySelector("main"), t);
      appendEvents(t);
      if (tail) tail.onTask(t);
    }
  }

  // ---- live log tail (task page) ----
  var MAX_LOG_RECONNECTS = 300;
  var MAX_LOG_NODES = 4000;
  function LogTail(pre) {
    var status = document.getElementById("log-status");
    var id = pre.getAttribute("data-task");
    var stream = pre.getAttribute("data-stream");
    var taskState = null, attempt = null, received = 0, tries = 0, active = false;
    function append(text) {
      var stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.appendChild(document.createTextNode(text));
      while (pre.childNodes.length > MAX_LOG_NODES) pre.removeChild(pre.firstChild);
      if (stick) pre.scrollTop = pre.scrollHeight;
    }
    function connect() {
      if (active) return;
      active = true;
      var url = "/v1/tasks/" + encodeURIComponent(id) + "/logs?follow=1&stream=" + encodeURIComponent(stream);
      var member = pre.getAttribute("data-member");
      if (member) url += "&member=" + encodeURIComponent(member);
      fetch(url, { credentials: "same-origin", cache: "no-store" }).then(function (res) {
        if (!res.ok) {
          return res.json().then(function (b) { return b && b.error ? b.error.message : res.statusText; }, function () { return res.statusText; }).then(function (msg) {
            status.textContent = "no log yet: " + msg;
          });
        }
        status.textContent = "following " + stream + " (live)";
        var reader = res.body.getReader();
        var dec = new TextDecoder();
        var skip = received;
        function pump() {
          return reader.read().then(function (r) {
            if (r.done) { status.textContent = stream + " ended"; return; }
            var text = dec.decode(r.value, { stream: true });
            if (skip > 0) { var n = Math.min(skip, text.length); text = text.slice(n); skip -= n; }
            if (text) { received += text.length; append(text); }
            return pump();
          });
        }
        return pump();
      }).catch(function (e) {
        status.textContent = "log connection failed: " + e.message;
      }).then(function () {
        active = false;
        if (!(taskState in TERMINAL) && ++tries < MAX_LOG_RECONNECTS) setTimeout(connect, 1000);
      });
    }
    return {
      start: function (initialState, initialAttempt) { taskState = initialState; attempt = initialAttempt; connect(); },
      onTask: function (t) {
        taskState = t.state;
        if (attempt !== null && t.attempt !== attempt) {
          // A new attempt writes a new log: start counting from its beginning.
          attempt = t.attempt;
          received = 0;
          append("--- attempt " + t.attempt + " ---\n");
        }
        if (!(t.state in TERMINAL)) connect();
      },
    };
  }
  var tail = null;
  var pre = document.getElementById("log");
  if (pre) {
    tail = LogTail(pre);
    tail.start(state.taskState, state.attempt);
  }

  // ---- names / packages / alerts (lists from API routes that may be absent) ----
  function fmtValue(key, v) {
    if (v === null || v === undefined) return "";
    if (typeof v === "number" && /(^at$|At$)/.test(key)) return fmtTime(v);
    if (typeof v === "number" && /^size$|Bytes$/.test(key)) return fmtBytes(v);
    if (Array.isArray(v)) return v.map(function (x) { return x && typeof x === "object" ? Object.keys(x).map(function (k) { return k + "=" + fmtValue(k, x[k]); }).join(" ") : String(x); }).join("; ");
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  }
  function remote(box) {
    function show(text, cls) { box.replaceChildren(el("p", text, cls)); }
    fetch(box.getAttribute("data-api"), { credentials: "same-origin", headers: { accept: "application/json" } }).then(function (res) {
      if (res.status === 404) return show(box.getAttribute("data-unavailable"), "muted");
      if (!res.ok) return show("cannot load: HTTP " + res.status, "error");
      return res.json().then(function (body) {
        var key = box.getAttribute("data-list");
        var list = Array.isArray(body) ? body : body && Array.isArray(body[key]) ? body[key]
          : body && typeof body === "object" ? Object.keys(body).map(function (k) { return { name: k, value: body[k] }; }) : [];
        if (!list.length) return show(box.getAttribute("data-empty"), "muted");
        var rows = list.map(function (x) { return x && typeof x === "object" && !Array.isArray(x) ? x : { value: x }; });
        var keys = [];
        rows.forEach(function (r) { Object.keys(r).forEach(function (k) { if (keys.indexOf(k) < 0 && keys.length < 10) keys.push(k); }); });
        var table = el("table"), thead = el("thead"), hr = el("tr"), tbody = el("tbody");
        keys.forEach(function (k) { hr.appendChild(el("th", k)); });
        thead.appendChild(hr);
        rows.forEach(function (r) {
          var tr = el("tr");
          keys.forEach(function (k) { tr.appendChild(el("td", fmtValue(k, r[k]))); });
          tbody.appendChild(tr);
        });
        table.appendChild(thead);
        table.appendChild(tbody);
        var wrap = el("div", null, "scroll");
        wrap.appendChild(table);
        box.replaceChildren(wrap);
      });
    }).catch(function (e) { show("cannot load: " + e.message, "error"); });
  }
  var box = document.getElementById("remote");
  if (box) remote(box);

  // ---- usage charts (task and node pages): each box re-fetches its server-rendered SVG every report interval ----
  function refreshChart(box) {
    fetch(box.getAttribute("data-chart-src"), { credentials: "same-origin", cache: "no-store" }).then(function (res) {
      return res.ok ? res.text() : null;
    }).then(function (text) {
      if (!text) return;
      var doc = new DOMParser().parseFromString(text, "image/svg+xml");
      var svg = doc.documentElement;
      if (svg.localName !== "svg" || doc.getElementsByTagName("parsererror").length) return;
      box.replaceChildren(document.importNode(svg, true));
    }).catch(function () { /* the next interval tries again */ });
  }
  var charts = document.getElementById("usage-charts");
  if (charts) {
    var every = Math.max(1000, Number(charts.getAttribute("data-refresh-ms")) || 5000);
    setInterval(function () {
      if (document.hidden) return;
      var boxes = charts.querySelectorAll("[data-chart-src]");
      for (var i = 0; i < boxes.length; i++) refreshChart(boxes[i]);
    }, every);
  }

  // ---- the event stream ----
  function setLive(text, cls) { if (live) { live.textContent = text; live.className = "live badge " + cls; } }
  if (page === "overview" || page === "jobs" || page === "job" || page === "task") {
    var es = new EventSource("/v1/events?types=job,task,leader");
    es.onopen = function () { setLive("live", "s-connected"); };
    es.onerror = function () { setLive("reconnecting…", "s-disconnected"); };
    es.addEventListener("job", function (m) { onJob(JSON.parse(m.data).data); });
    es.addEventListener("task", function (m) { onTask(JSON.parse(m.data).data); });
    es.addEventListener("leader", function (m) {
      var l = JSON.parse(m.data).data;
      var note = document.getElementById("leader-note") || el("div", null, "banner");
      note.id = "leader-note";
      note.textContent = "The primary is now " + l.id + " (" + l.url + ", epoch " + l.epoch + ").";
      if (!note.parentNode) document.body.insertBefore(note, document.querySelector("main"));
    });
    window.addEventListener("pagehide", function () { es.close(); });
  }

  // ---- a workflow's page: the server redraws its graph and table; a job of the workflow changing says when ----
  if (page === "workflow") {
    var wf = JSON.parse(document.getElementById("torca-state").textContent);
    var redraw = null;
    function reloadWorkflow() {
      redraw = null;
      fetch(location.pathname + "/live", { credentials: "same-origin", cache: "no-store" }).then(function (res) { return res.ok ? res.text() : null; }).then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("workflow-live");
        var cur = document.getElementById("workflow-live");
        if (fresh && cur) cur.replaceWith(document.importNode(fresh, true));
      }).catch(function () {});
    }
    function redrawSoon(ms) { if (!redraw) redraw = setTimeout(reloadWorkflow, ms); }
    var wes = new EventSource("/v1/events?types=job");
    wes.onopen = function () { setLive("live", "s-connected"); };
    wes.onerror = function () { setLive("reconnecting…", "s-disconnected"); };
    wes.addEventListener("job", function (m) { if (String(JSON.parse(m.data).id).indexOf(wf.jobPrefix) === 0) redrawSoon(500); });
    // The workflow's record changes in the primary's tick after its jobs do: a running workflow is looked at again now and then.
    var every = setInterval(function () { var cur = document.getElementById("workflow-live"); if (cur && cur.getAttribute("data-state") === "running") redrawSoon(0); }, 2000);
    window.addEventListener("pagehide", function () { wes.close(); clearInterval(every); });
  }
})();
`;
