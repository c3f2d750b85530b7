// The dashboard's pages poll the JSON endpoints and fill their tables with text, never markup,
// so a value read from a ledger cannot inject anything. Settings come from #dashboard's data-*.
"use strict";
const settings = document.getElementById("dashboard").dataset;
const REFRESH = Number(settings.refresh);
const token = new URLSearchParams(location.search).get("token");

function withToken(url) {
  if (!token) return url;
  return url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
}
async function getJSON(url) {
  const reply = await fetch(url, {headers: token ? {"X-Ratchet-Token": token} : {}});
  const body = await reply.json();
  if (!reply.ok) throw new Error(body.error || reply.statusText);
  return body;
}
function utc(ms) {
  return ms === null || ms === undefined ? "-" : new Date(ms).toISOString().slice(0, 16).replace("T", " ");
}
function num(x, digits = 2) {
  if (x === null || x === undefined) return "-";
  return Number(x).toLocaleString("en-US", {minimumFractionDigits: digits, maximumFractionDigits: digits});
}
function text(x) {
  if (x === null || x === undefined) return "-";
  return typeof x === "object" ? JSON.stringify(x) : String(x);
}
function fill(tbody, rows) {
  if (rows.length === 0) {
    const td = document.createElement("td");
    td.colSpan = 99;
    td.className = "note";
    td.textContent = "none";
    tbody.replaceChildren(document.createElement("tr"));
    tbody.firstChild.appendChild(td);
    return;
  }
  tbody.replaceChildren(...rows.map(cells => {
    const tr = document.createElement("tr");
    for (const cell of cells) {
      const td = document.createElement("td");
      if (cell instanceof Node) td.appendChild(cell); else td.textContent = text(cell);
      tr.appendChild(td);
    }
    return tr;
  }));
}
function status(message) { document.getElementById("status").textContent = message; }
function now() { return new Date().toISOString().slice(11, 19) + " UTC"; }
function every(ms, job) { job(); setInterval(job, ms); }
function runPath(run) { return run.split("/").map(encodeURIComponent).join("/"); }

function indexPage() {
  every(REFRESH, async () => {
    try {
      const {runs} = await getJSON("/api/runs");
      fill(document.querySelector("#runs tbody"), runs.map(r => {
        const link = document.createElement("a");
        link.href = withToken("/runs/" + runPath(r.run));
        link.textContent = r.run;
        return [link, r.agent, r.market, r.mode, r.error ? "unreadable: " + r.error : r.state, num(r.equity),
                utc(r.last_bar), utc(r.last_heartbeat)];
      }));
      status(runs.length + " runs, refreshed " + now());
    } catch (e) { status("refresh failed: " + e.message); }
  });
}

function runPage(run) {
  const base = "/api/runs/" + runPath(run);
  for (const a of document.querySelectorAll("a.keep-token")) a.href = withToken(a.getAttribute("href"));
  every(REFRESH, async () => {
    try {
      const live = await getJSON(base + "/live");
      document.getElementById("now").textContent = live.agent + " on " + live.market + " (" + live.mode +
        "): state " + text(live.state) + ", equity " + num(live.equity) + ", last bar " + utc(live.last_bar) +
        " UTC, " + live.marks + " equity marks";
      Plotly.react("equity",
        [{x: live.curve.ts, y: live.curve.equity, type: "scatter", mode: "lines", name: "equity"}],
        {margin: {l: 60, r: 20, t: 10, b: 40}, height: 360, xaxis: {type: "date"}, yaxis: {title: {text: "equity"}}},
        {displaylogo: false, responsive: true});
      fill(document.querySelector("#positions tbody"), live.positions.map(p =>
        [p.trade_id, p.symbol, p.side, num(p.qty, 6), num(p.entry_price, 4), utc(p.entry_ts), p.leverage, p.mode,
         p.state]));
      fill(document.querySelector("#transitions tbody"), live.transitions.map(t =>
        [utc(t.ts), t.source, t.dest, t.trigger, t.reason]));
      fill(document.querySelector("#adjustments tbody"), live.adjustments.map(a =>
        [utc(a.ts), a.kind, a.before, a.after, a.reason]));
      status("refreshed " + now() + (live.notice ? "; " + live.notice : ""));
    } catch (e) { status("refresh failed: " + e.message); }
  });
  const picker = document.getElementById("view");
  async function showView() {
    const note = document.getElementById("view-note");
    note.textContent = picker.value + ": loading";
    try {
      const v = await getJSON(base + "/views/" + encodeURIComponent(picker.value));
      if (v.view !== picker.value) return;  // another view was picked while this one loaded
      const row = document.createElement("tr");
      for (const column of v.columns) {
        const th = document.createElement("th");
        th.textContent = column;
        row.appendChild(th);
      }
      document.querySelector("#view-table thead").replaceChildren(row);
      // simulated times (ts, entry_ts, max_drawdown_ts, ...) read as UTC
      const times = v.columns.map(c => c === "ts" || c.endsWith("_ts"));
      fill(document.querySelector("#view-table tbody"),
           v.rows.map(row => row.map((cell, i) => times[i] && typeof cell === "number" ? utc(cell) : cell)));
      note.textContent = v.view + ": " + (v.total > v.rows.length ? "the first " + v.rows.length + " of " + v.total +
                                          " rows" : v.total + " rows");
    } catch (e) { note.textContent = picker.value + ": failed: " + e.message; }
  }
  picker.addEventListener("change", showView);
  every(REFRESH * 6, showView);
}

if (settings.page === "run") runPage(settings.run); else indexPage();
