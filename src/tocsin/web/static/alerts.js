// Ack, unack, silence and expire buttons of the alerts page, through the JSON API.
"use strict";
(function () {
  const notice = document.getElementById("notice");
  const form = document.getElementById("silence-form");

  function say(text, isError) {
    notice.textContent = text;
    notice.classList.toggle("error", Boolean(isError));
    notice.hidden = false;
  }

  for (const button of document.querySelectorAll("button.ack")) {
    button.addEventListener("click", async () => {
      const row = button.closest("tr");
      const fingerprint = row.dataset.fingerprint;
      const action = button.dataset.action;
      button.disabled = true;
      try {
        const by = form.elements.created_by.value || "admin";
        const alert = await window.Tocsin.api("POST",
          `/api/v1/alerts/${encodeURIComponent(fingerprint)}/${action}`, { by });
        row.className = `alert-${alert.state}`;
        row.querySelector(".alert-state").textContent =
          alert.state + (alert.acked_by ? ` by ${alert.acked_by}` : "");
        button.dataset.action = alert.state === "acknowledged" ? "unack" : "ack";
        button.textContent = alert.state === "acknowledged" ? "Unacknowledge" : "Acknowledge";
        say(`${fingerprint} is ${alert.state}.`);
      } catch (error) {
        say(`Could not ${action} ${fingerprint}: ${error.message}`, true);
      } finally {
        button.disabled = false;
      }
    });
  }

  for (const button of document.querySelectorAll("button.silence-this")) {
    button.addEventListener("click", () => {
      form.elements.matchers.value = button.dataset.matcher;
      form.elements.comment.focus();
    });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const matchers = form.elements.matchers.value.split(",").map((m) => m.trim()).filter(Boolean);
    try {
      const silence = await window.Tocsin.api("POST", "/api/v1/silences", {
        matchers, duration: form.elements.duration.value.trim(),
        comment: form.elements.comment.value, created_by: form.elements.created_by.value,
      });
      say(`Silence ${silence.id} created; reloading…`);
      window.location.reload();
    } catch (error) {
      say(`Could not create the silence: ${error.message}`, true);
    }
  });

  for (const button of document.querySelectorAll("button.expire")) {
    button.addEventListener("click", async () => {
      const row = button.closest("tr");
      try {
        await window.Tocsin.api("DELETE", `/api/v1/silences/${encodeURIComponent(row.dataset.silence)}`);
        row.remove();
        say("Silence expired.");
      } catch (error) {
        say(`Could not expire the silence: ${error.message}`, true);
      }
    });
  }
})();
