// The overview: live state changes over Server-Sent Events, and the SLO section.
"use strict";
(function () {
  const live = document.getElementById("live");
  let since = parseFloat(document.body.dataset.renderedAt) || Date.now() / 1000;
  const rows = new Map();
  for (const row of document.querySelectorAll("#checks tr[data-check]")) {
    rows.set(row.dataset.check, row);
  }

  function apply(change) {
    const row = rows.get(change.check);
    if (!row) return; // on another page, or filtered out
    row.className = `state-${change.state}`;
    row.querySelector(".pill").textContent = change.state;
    row.querySelector(".latency").textContent = window.Tocsin.fmtLatency(change.latency_ms);
    row.querySelector(".message").textContent = change.message || "";
    row.querySelector(".when").textContent = "just now";
    row.classList.add("flash");
    row.dataset.changedAt = String(change.at);
  }

  function onChanges(changes, at) {
    for (const change of changes) apply(change);
    if (at !== undefined) since = Math.max(since, at);
    for (const change of changes) since = Math.max(since, change.at);
  }

  function connect() {
    // `since`: the server replays what changed while this page was not listening.
    const source = new EventSource(`/api/v1/events?since=${since}`);
    source.addEventListener("hello", (event) => {
      const data = JSON.parse(event.data);
      onChanges(data.changes);
      live.hidden = false;
      live.classList.remove("stale");
      live.textContent = "live";
    });
    source.addEventListener("state", (event) => onChanges(JSON.parse(event.data).changes));
    source.onerror = () => {
      live.classList.add("stale");
      live.textContent = "reconnecting";
      source.close();
      setTimeout(connect, 2000);
    };
  }
  connect();

  // SLOs come from /api/v1/slos when this Tocsin has it.
  const status = document.getElementById("slos-status");
  const table = document.getElementById("slos-table");

  // The API gives fractions (0.999); a remaining budget below zero is overspent.
  function percent(value) {
    if (value === null || value === undefined || Number.isNaN(value)) return "—";
    const p = value * 100;
    return `${p.toFixed(Math.abs(p) >= 99 ? 3 : 1)}%`;
  }

  function burnChart(cell, series) {
    if (!window.uPlot || !Array.isArray(series) || series.length < 2) {
      cell.textContent = "—";
      return;
    }
    const xs = series.map((p) => p[0]);
    const ys = series.map((p) => p[1]);
    const box = document.createElement("div");
    box.className = "burn";
    cell.appendChild(box);
    new window.uPlot({ width: 260, height: 60, legend: { show: false }, cursor: { show: false },
      axes: [{ show: false }, { show: false }], series: [{}, { stroke: "#d83a34", width: 1.5 }] },
      [xs, ys], box);
  }

  fetch("/api/v1/slos?limit=1000", { credentials: "same-origin" }).then(async (response) => {
    const data = response.ok ? await response.json() : null;
    const items = data && (Array.isArray(data) ? data : data.items);
    if (!items || items.length === 0) {
      status.textContent = "No SLOs configured.";
      return;
    }
    const body = table.querySelector("tbody");
    for (const slo of items) {
      const tr = document.createElement("tr");
      const cells = [slo.name, percent(slo.objective), percent(slo.budget_remaining)];
      for (const text of cells) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.appendChild(td);
      }
      const burn = document.createElement("td");
      tr.appendChild(burn);
      body.appendChild(tr);
      burnChart(burn, slo.burn);
    }
    status.hidden = true;
    table.hidden = false;
  }).catch(() => { status.textContent = "No SLOs configured."; });
})();
