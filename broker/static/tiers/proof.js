/* Tiers: check in the browser, without trusting Tiers' server, that an entry is in the signed transparency log.
 *
 * On the transparency log page (broker/templates/transparency/log.html), the form's submit fetches from the
 * public API the latest checkpoint, the JWKS, the RFC 9162 inclusion proof and the entry, then with WebCrypto:
 *   1. verifies the checkpoint's compact JWS (ES256: ECDSA P-256 with SHA-256, signature r || s) against the
 *      published key whose kid the JWS header names;
 *   2. recomputes the leaf hash SHA-256(0x00 || canonical) when the entry's event is public, or takes the
 *      published leaf hash when it is not (events about a citizen);
 *   3. walks the inclusion path (RFC 9162 section 2.1.3.2) up to a root and compares it with the signed root.
 * The result goes to the page's aria-live region. Without JavaScript, or without WebCrypto (plain HTTP),
 * the form goes to the server, which runs the same checks with broker/transparency/verify.py.
 * Messages come translated from the region's data-* attributes; the page needs no inline script.
 */
(function () {
  "use strict";

  const form = document.getElementById("proof-form");
  const result = document.getElementById("proof-result");
  if (!form || !result || !window.crypto || !window.crypto.subtle || typeof BigInt !== "function") {
    return; // the form submits to the server, which checks instead
  }
  const subtle = window.crypto.subtle;
  const HASH_SIZE = 32;

  class Failure extends Error {
    constructor(reason, detail) {
      super(reason);
      this.reason = reason;
      this.detail = detail || "";
    }
  }

  function message(key) {
    return result.dataset[key] || key;
  }

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
  }

  // --- bytes and encodings ---------------------------------------------------------------------------------

  function fromBase64(value, reason) {
    if (typeof value !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0) {
      throw new Failure(reason, "not base64");
    }
    const binary = atob(value);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i += 1) {
      bytes[i] = binary.charCodeAt(i);
    }
    return bytes;
  }

  function fromBase64url(value, reason) {
    if (typeof value !== "string" || !/^[A-Za-z0-9_-]*$/.test(value)) {
      throw new Failure(reason, "not base64url");
    }
    let standard = value.replace(/-/g, "+").replace(/_/g, "/");
    while (standard.length % 4 !== 0) {
      standard += "=";
    }
    return fromBase64(standard, reason);
  }

  function toBase64(bytes) {
    let binary = "";
    bytes.forEach((byte) => {
      binary += String.fromCharCode(byte);
    });
    return btoa(binary);
  }

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((total, part) => total + part.length, 0));
    let offset = 0;
    for (const part of parts) {
      out.set(part, offset);
      offset += part.length;
    }
    return out;
  }

  function same(a, b) {
    return a.length === b.length && a.every((byte, i) => byte === b[i]);
  }

  async function sha256(bytes) {
    return new Uint8Array(await subtle.digest("SHA-256", bytes));
  }

  function jsonOf(bytes, reason) {
    try {
      return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    } catch (error) {
      throw new Failure(reason, String(error));
    }
  }

  // --- the public API --------------------------------------------------------------------------------------

  async function getJSON(url, notFoundReason) {
    let response;
    try {
      response = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
    } catch (error) {
      throw new Failure("unreachable", String(error));
    }
    let body = null;
    try {
      body = await response.json();
    } catch (error) {
      body = null;
    }
    if (!response.ok) {
      const reason = response.status === 404 && notFoundReason ? notFoundReason : "unreachable";
      throw new Failure(reason, (body && body.detail) || `HTTP ${response.status}`);
    }
    if (body === null || typeof body !== "object") {
      throw new Failure("unreachable", "not JSON");
    }
    return body;
  }

  // --- the checks ------------------------------------------------------------------------------------------

  async function verifyCheckpoint(jws, jwks) {
    const parts = typeof jws === "string" ? jws.split(".") : [];
    if (parts.length !== 3) {
      throw new Failure("badSignature", "not a compact JWS");
    }
    const header = jsonOf(fromBase64url(parts[0], "badSignature"), "badSignature");
    if (header.alg !== "ES256" || typeof header.kid !== "string" || "crit" in header) {
      throw new Failure("badSignature", `alg ${header.alg}`);
    }
    const matches = (Array.isArray(jwks.keys) ? jwks.keys : []).filter((key) => key && key.kid === header.kid);
    if (matches.length !== 1 || matches[0].kty !== "EC" || matches[0].crv !== "P-256") {
      throw new Failure("noKey", header.kid);
    }
    let key;
    try {
      const { kty, crv, x, y } = matches[0];
      key = await subtle.importKey("jwk", { kty, crv, x, y }, { name: "ECDSA", namedCurve: "P-256" }, false, [
        "verify",
      ]);
    } catch (error) {
      throw new Failure("noKey", String(error));
    }
    const signature = fromBase64url(parts[2], "badSignature");
    const signed = new TextEncoder().encode(`${parts[0]}.${parts[1]}`);
    const valid =
      signature.length === 64 && (await subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, signature, signed));
    if (!valid) {
      throw new Failure("badSignature", header.kid);
    }
    const payload = jsonOf(fromBase64url(parts[1], "badSignature"), "badSignature");
    if (!Number.isSafeInteger(payload.tree_size) || payload.tree_size < 0) {
      throw new Failure("badSignature", "tree_size");
    }
    const rootHash = fromBase64(payload.root_hash, "badSignature");
    if (rootHash.length !== HASH_SIZE) {
      throw new Failure("badSignature", "root_hash");
    }
    return { treeSize: payload.tree_size, rootHash, timestamp: String(payload.timestamp) };
  }

  async function leafOf(entry) {
    const published = fromBase64(entry.leaf_hash, "badLeaf");
    if (published.length !== HASH_SIZE) {
      throw new Failure("badLeaf", "leaf_hash");
    }
    if (typeof entry.canonical !== "string") {
      return { leaf: published, recomputed: false };
    }
    const leaf = await sha256(concat(new Uint8Array([0]), fromBase64(entry.canonical, "badLeaf")));
    if (!same(leaf, published)) {
      throw new Failure("badLeaf", "");
    }
    return { leaf, recomputed: true };
  }

  // RFC 9162 section 2.1.3.2, in BigInt so that no index is cut to 32 bits.
  async function rootFromPath(leaf, index, size, path) {
    let fn = BigInt(index);
    let sn = BigInt(size) - 1n;
    let r = leaf;
    const interior = new Uint8Array([1]);
    for (const encoded of path) {
      const p = fromBase64(encoded, "badPath");
      if (p.length !== HASH_SIZE || sn === 0n) {
        throw new Failure("badPath", "proof too long or malformed");
      }
      if ((fn & 1n) === 1n || fn === sn) {
        r = await sha256(concat(interior, p, r));
        while (fn !== 0n && (fn & 1n) === 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      } else {
        r = await sha256(concat(interior, r, p));
      }
      fn >>= 1n;
      sn >>= 1n;
    }
    if (sn !== 0n) {
      throw new Failure("badPath", "proof too short");
    }
    return r;
  }

  async function check(rawIndex) {
    if (!/^\d{1,19}$/.test(rawIndex)) {
      throw new Failure("notIndex", "");
    }
    const [checkpoint, jwks] = await Promise.all([
      getJSON(form.dataset.checkpointUrl),
      getJSON(form.dataset.jwksUrl),
    ]);
    const signed = await verifyCheckpoint(checkpoint.jws, jwks);
    if (BigInt(rawIndex) >= BigInt(signed.treeSize)) {
      throw new Failure("outOfRange", "");
    }
    const index = Number(rawIndex);
    const query = new URLSearchParams({ leaf_index: String(index), tree_size: String(signed.treeSize) });
    const [proof, entry] = await Promise.all([
      getJSON(`${form.dataset.inclusionUrl}?${query}`),
      getJSON(`${form.dataset.entriesUrl}${index}`, "outOfRange"),
    ]);
    const { leaf, recomputed } = await leafOf(entry);
    if (!same(fromBase64(proof.leaf_hash, "badLeaf"), leaf)) {
      throw new Failure("badLeaf", "the proof names another leaf");
    }
    const root = await rootFromPath(leaf, index, signed.treeSize, Array.isArray(proof.audit_path) ? proof.audit_path : []);
    if (!same(root, signed.rootHash)) {
      throw new Failure("badPath", "");
    }
    return { index, signed, leaf, recomputed, entry };
  }

  // --- showing the result ----------------------------------------------------------------------------------

  function paragraph(className, text) {
    const p = document.createElement("p");
    p.className = className;
    p.textContent = text;
    return p;
  }

  function facts(rows) {
    const list = document.createElement("dl");
    list.className = "facts";
    for (const [term, value, note] of rows) {
      const dt = document.createElement("dt");
      dt.textContent = term;
      const dd = document.createElement("dd");
      const code = document.createElement("code");
      code.className = "hash";
      code.textContent = value;
      dd.append(code);
      if (note) {
        dd.append(` (${note})`);
      }
      list.append(dt, dd);
    }
    return list;
  }

  function showVerified(found) {
    const text = fill(message("verified"), {
      leaf: found.index,
      size: found.signed.treeSize,
      time: found.signed.timestamp,
    });
    const rows = [];
    if (found.entry.verb) {
      rows.push([message("event"), `${found.entry.verb} ${found.entry.subject || ""}`.trim(), ""]);
    }
    rows.push([message("leafHash"), toBase64(found.leaf), message(found.recomputed ? "recomputed" : "stored")]);
    rows.push([message("rootHash"), toBase64(found.signed.rootHash), ""]);
    result.replaceChildren(paragraph("verified", `✓ ${text}`), facts(rows));
  }

  function showFailure(error) {
    const reason = error instanceof Failure ? message(error.reason) : message("unreachable");
    const detail = error instanceof Failure ? error.detail : String(error);
    const text = fill(message("failed"), { reason }) + (detail ? ` (${detail})` : "");
    result.replaceChildren(paragraph("error", text));
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = form.elements.namedItem("leaf_index");
    const rawIndex = (input && input.value ? input.value : "").trim();
    result.replaceChildren(paragraph("muted", message("checking")));
    try {
      showVerified(await check(rawIndex));
    } catch (error) {
      showFailure(error);
    } finally {
      result.dataset.checkedBy = "browser";
    }
  });
})();
