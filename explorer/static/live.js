// Bansos Ledger: the chain browser's live updates. New blocks arrive as server-sent events
// (`/v1/events`) and are added at the top of the table; the page works without this.
"use strict";
(function () {
  const body = document.getElementById("blocks");
  if (!body || !window.EventSource) return;
  const id = document.documentElement.lang !== "en";
  const cell = (row, text) => { const td = document.createElement("td"); td.textContent = text; row.appendChild(td); };
  const events = new EventSource("/v1/events");
  events.addEventListener("blocks", (e) => {
    const blocks = JSON.parse(e.data);
    const newest = blocks.length ? String(blocks[0].height) : "";
    for (const b of blocks.slice().reverse()) {
      const row = document.createElement("tr");
      const th = document.createElement("th");
      const a = document.createElement("a");
      a.href = "/blok?cari=" + b.height + (id ? "" : "&lang=en");
      a.textContent = String(b.height);
      th.appendChild(a);
      row.appendChild(th);
      cell(row, b.time.slice(11, 19));
      cell(row, b.proposer);
      cell(row, String(b.signers.length));
      cell(row, String(b.tx_count));
      cell(row, Object.entries(b.by_type).map(([k, v]) => k + " " + v).join(", "));
      body.insertBefore(row, body.firstChild);
      while (body.children.length > 20) body.removeChild(body.lastChild);
    }
    document.body.dataset.live = newest;
  });
})();
