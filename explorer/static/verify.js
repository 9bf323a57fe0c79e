// Bansos Ledger: checks in the browser, with WebCrypto only (SHA-256, Ed25519), what the
// page shows: each timeline step's inclusion in the log, or each total's place in the
// totals tree, up to a checkpoint signed by more than two thirds of the validators' power.
// No crypto library; nothing is sent anywhere. If the browser lacks Ed25519 or SHA-256 in
// WebCrypto, the page says so and the proofs remain downloadable for offline checking.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("bukti").textContent);
  const id = data.lang !== "en";
  const T = {
    ok: id ? "✓ terverifikasi di peramban ini" : "✓ verified in this browser",
    bad: id ? "✗ bukti TIDAK cocok" : "✗ the proof does NOT match",
    na: id ? "peramban ini tidak dapat memeriksa bukti (tidak ada Ed25519/SHA-256 di WebCrypto); unduh buktinya untuk diperiksa sendiri"
           : "this browser cannot check the proofs (no Ed25519/SHA-256 in WebCrypto); download the proof to check it yourself",
    pending: id ? "belum ada checkpoint yang ditandatangani untuk ini; coba lagi sebentar lagi"
                : "not yet under a signed checkpoint; try again in a moment",
    sumsOk: id ? "✓ semua total terbukti dari checkpoint yang ditandatangani validator"
               : "✓ every total proven against a checkpoint signed by the validators",
    stepsOk: id ? "✓ semua langkah terbukti tercatat di log yang ditandatangani validator"
                : "✓ every step proven to be in the log the validators signed",
  };
  const enc = new TextEncoder();
  const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  const hex = (s) => Uint8Array.from(s.match(/../g) || [], (h) => parseInt(h, 16));
  const cat = (...parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  };
  const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
  const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const mark = (el, cls, text) => { if (el) { el.className = "v " + cls; el.textContent = text; } };

  // A C2SP signed note: body, blank line, "— name base64(keyid ‖ signature)" lines.
  function parseNote(note) {
    const at = note.indexOf("\n\n");
    if (at < 0) return null;
    const body = note.slice(0, at + 1);
    const sigs = note.slice(at + 2).split("\n").filter((l) => l.startsWith("\u2014 "))
      .map((l) => { const [name, sig] = l.slice(2).split(" "); return { name, sig: b64(sig) }; });
    const lines = body.slice(0, -1).split("\n");
    return { body, sigs, origin: lines[0], size: Number(lines[1]), root: b64(lines[2]),
             totals: lines[3] && lines[3].startsWith("bansos-totals ") ? b64(lines[3].slice(14)) : null };
  }

  // More than two thirds of the validators' power must have signed the note's body.
  async function checkCheckpoint(note, keys) {
    const parsed = parseNote(note);
    if (!parsed || parsed.origin !== keys.origin) return null;
    let total = 0, signed = 0;
    for (const [vkey, power] of keys.validators) {
      total += power;
      const [name, keyHash, keyB64] = vkey.split("+");
      const raw = b64(keyB64);
      if (raw[0] !== 1) continue;
      const keyId = hex(keyHash);
      const sig = parsed.sigs.find((s) => s.name === name && same(s.sig.slice(0, 4), keyId));
      if (!sig || sig.sig.length !== 68) continue;
      const key = await crypto.subtle.importKey("raw", raw.slice(1), { name: "Ed25519" }, false, ["verify"]);
      if (await crypto.subtle.verify({ name: "Ed25519" }, key, sig.sig.slice(4), enc.encode(parsed.body))) signed += power;
    }
    return 3 * signed > 2 * total ? parsed : null;
  }

  // RFC 9162 §2.1.3.2: the root an inclusion path leads to.
  async function inclusionRoot(index, size, leaf, path) {
    if (index >= size) return null;
    let fn = index, sn = size - 1, r = leaf;
    for (const p of path) {
      if (sn === 0) return null;
      if (fn % 2 === 1 || fn === sn) {
        r = await sha256(cat([1], p, r));
        if (fn % 2 === 0) while (fn !== 0 && fn % 2 === 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      } else {
        r = await sha256(cat([1], r, p));
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    return sn === 0 ? r : null;
  }

  // ledger::totals::node_hash.
  const DOMAIN = enc.encode("bansos-ledger/totals/v2\0");
  const OWN_DOMAIN = enc.encode("bansos-ledger/totals-own/v2\0");
  function totalsBytes(t) {
    const out = new Uint8Array(32), view = new DataView(out.buffer);
    [t.beneficiaries, t.allocated, t.disbursed, t.confirmed].forEach((v, i) => view.setBigUint64(i * 8, BigInt(v)));
    return out;
  }
  async function nodeHash(node) {
    const seg = enc.encode(node.segment);
    const n = new Uint8Array(4);
    new DataView(n.buffer).setUint32(0, node.children.length);
    return sha256(cat(DOMAIN, [seg.length], seg, totalsBytes(node.sums), hex(node.own_commitment),
                      n, ...node.children.map(hex)));
  }
  // An opened node's own totals must be what its commitment hashes.
  async function ownOpened(node) {
    if (!node.own || !node.salt) return false;
    return same(await sha256(cat(OWN_DOMAIN, totalsBytes(node.own), hex(node.salt))), hex(node.own_commitment));
  }
  const hasChild = (node, h) => node.children.some((c) => same(hex(c), h));

  async function verifyTrack(track, keys) {
    const summary = document.getElementById("v-summary");
    if (!track.checkpoint) { mark(summary, "na", T.pending); return; }
    const cp = await checkCheckpoint(track.checkpoint, keys);
    if (!cp || cp.size !== track.checkpoint_size) { mark(summary, "bad", T.bad); return; }
    let all = true;
    for (const [i, step] of track.steps.entries()) {
      const el = document.getElementById("v-" + i);
      if (!step.path) { all = false; mark(el, "na", T.pending); continue; }
      const root = await inclusionRoot(step.log_index, cp.size, b64(step.leaf_hash), step.path.map(b64));
      const ok = root !== null && same(root, cp.root);
      all = all && ok;
      mark(el, ok ? "ok" : "bad", ok ? T.ok : T.bad);
    }
    mark(summary, all ? "ok" : "bad", all ? T.stepsOk : T.bad);
  }

  async function verifyTotals(t, keys) {
    const summary = document.getElementById("v-summary");
    if (!t.totals) return;
    if (!t.checkpoint) { mark(summary, "na", T.pending); return; }
    const cp = await checkCheckpoint(t.checkpoint, keys);
    if (!cp || !cp.totals) { mark(summary, "bad", T.bad); return; }
    // The node, then each ancestor up to the root the checkpoint names.
    let h = await nodeHash(t.proof[0]);
    let ok = JSON.stringify(t.proof[0].sums) === JSON.stringify(t.totals);
    for (const parent of t.proof.slice(1)) {
      ok = ok && hasChild(parent, h);
      h = await nodeHash(parent);
    }
    ok = ok && same(h, cp.totals);
    for (const [i, row] of t.rows.entries()) {
      const node = t.row_nodes[i];
      const el = document.getElementById("v-row-" + i);
      if (!row.totals) continue;
      if (row.at_region_itself) {
        const good = ok && await ownOpened(t.proof[0]) &&
          JSON.stringify(t.proof[0].own) === JSON.stringify(row.totals);
        mark(el, good ? "ok" : "bad", good ? "✓" : "✗");
        continue;
      }
      const good = ok && node && node.segment === row.region &&
        JSON.stringify(node.sums) === JSON.stringify(row.totals) && hasChild(t.proof[0], await nodeHash(node));
      ok = ok && good;
      mark(el, good ? "ok" : "bad", good ? "✓" : "✗");
    }
    mark(summary, ok ? "ok" : "bad", ok ? T.sumsOk : T.bad);
  }

  async function main() {
    try {
      if (!window.crypto || !crypto.subtle) throw new Error("no WebCrypto");
      const probe = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
      if (!probe) throw new Error("no Ed25519");
    } catch (e) {
      mark(document.getElementById("v-summary"), "na", T.na);
      return;
    }
    if (data.kind === "track") await verifyTrack(data.track, data.keys);
    if (data.kind === "totals") await verifyTotals(data.totals, data.keys);
    document.body.dataset.verified = "done";
  }
  main().catch(() => { mark(document.getElementById("v-summary"), "bad", T.bad); document.body.dataset.verified = "done"; });
})();
