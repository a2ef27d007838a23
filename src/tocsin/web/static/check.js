// A check's response time (uPlot) over an hour, a day, a week or a month of rollups.
"use strict";
(function () {
  const box = document.getElementById("chart");
  const empty = document.getElementById("chart-empty");
  const name = box.dataset.check;
  let plot = null;

  function width() { return Math.max(280, box.clientWidth - 2); }

  async function draw(range) {
    const data = await window.Tocsin.api("GET",
      `/api/v1/checks/${encodeURIComponent(name)}/rollups?range=${range}`);
    const items = data.items;
    if (plot) { plot.destroy(); plot = null; }
    empty.hidden = items.length > 0;
    if (items.length === 0) return;
    const xs = items.map((b) => b.start);
    const series = [
      xs,
      items.map((b) => b.p50_ms),
      items.map((b) => b.p95_ms),
      items.map((b) => (b.uptime === null ? null : b.uptime * 100)),
    ];
    const points = { show: items.length < 60 };
    plot = new window.uPlot({
      width: width(), height: 260,
      // The whole range asked for, even when only its last minutes have results.
      scales: { x: { time: true, range: () => [data.since, data.until] }, ms: { auto: true },
                pct: { range: [0, 100] } },
      axes: [{}, { scale: "ms", label: "ms" }, { scale: "pct", side: 1, label: "uptime %", grid: { show: false } }],
      series: [
        {},
        { label: "p50", scale: "ms", stroke: "#2563eb", width: 1.5, points, value: (u, v) => window.Tocsin.fmtLatency(v) },
        { label: "p95", scale: "ms", stroke: "#e08a00", width: 1.5, points, value: (u, v) => window.Tocsin.fmtLatency(v) },
        { label: "uptime", scale: "pct", stroke: "#1f9d55", width: 1, points, value: (u, v) => (v === null ? "—" : `${v.toFixed(2)}%`) },
      ],
    }, series, box);
  }

  for (const button of document.querySelectorAll(".ranges button")) {
    button.addEventListener("click", () => {
      for (const other of document.querySelectorAll(".ranges button")) {
        other.setAttribute("aria-pressed", String(other === button));
      }
      draw(button.dataset.range).catch((error) => { empty.hidden = false; empty.textContent = error.message; });
    });
  }
  window.addEventListener("resize", () => { if (plot) plot.setSize({ width: width(), height: 260 }); });
  draw("day").catch((error) => { empty.hidden = false; empty.textContent = error.message; });
})();
