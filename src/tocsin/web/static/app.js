// Shared by every dashboard page: JSON calls that carry the session's CSRF token.
"use strict";
(function () {
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.content : "";

  async function api(method, path, body) {
    const options = { method, credentials: "same-origin", headers: { "X-CSRF-Token": csrf } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(path, options);
    let data = null;
    if ((response.headers.get("content-type") || "").includes("application/json")) {
      data = await response.json();
    }
    if (!response.ok) {
      let detail = data && data.detail;
      if (Array.isArray(detail)) detail = detail.map((d) => d.msg).join("; ");
      throw new Error(detail || `${response.status} ${response.statusText}`);
    }
    return data;
  }

  function fmtLatency(ms) {
    if (ms === null || ms === undefined) return "—";
    if (ms >= 10000) return `${(ms / 1000).toFixed(1)} s`;
    return ms >= 10 ? `${Math.round(ms)} ms` : `${ms.toFixed(1)} ms`;
  }

  window.Tocsin = { api, fmtLatency };
})();
