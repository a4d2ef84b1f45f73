// tollguard console: security keys and passkeys (WebAuthn). The login
// with a key after the password, and the Security page (register, list,
// remove). app.js hands in its helpers; the challenges stay on the server.
"use strict";
window.TG_KEYS = function (c) {
  const { t, el, call, flash, field, table, fmtTime, $ } = c;
  const supported = () => !!(window.PublicKeyCredential && navigator.credentials);

  // ---- base64url and the JSON forms of the options and answers ----
  function fromB64u(s) {
    const b = atob(String(s).replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(String(s).length / 4) * 4, "="));
    return Uint8Array.from(b, (ch) => ch.charCodeAt(0)).buffer;
  }
  function toB64u(buf) {
    let s = "";
    new Uint8Array(buf).forEach((x) => { s += String.fromCharCode(x); });
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  const descs = (list) => (list || []).map((d) => Object.assign({}, d, { id: fromB64u(d.id) }));
  function creationOptions(o) {
    const p = Object.assign({}, o.publicKey);
    p.challenge = fromB64u(p.challenge);
    p.user = Object.assign({}, p.user, { id: fromB64u(p.user.id) });
    p.excludeCredentials = descs(p.excludeCredentials);
    return { publicKey: p };
  }
  function requestOptions(o) {
    const p = Object.assign({}, o.publicKey);
    p.challenge = fromB64u(p.challenge);
    p.allowCredentials = descs(p.allowCredentials);
    return { publicKey: p };
  }
  // The answer as the server reads it. No extension is requested, so none
  // is reported.
  function credentialJSON(cred) {
    const r = cred.response;
    const out = { id: cred.id, rawId: toB64u(cred.rawId), type: cred.type, clientExtensionResults: {}, response: { clientDataJSON: toB64u(r.clientDataJSON) } };
    if (r.attestationObject) {
      out.response.attestationObject = toB64u(r.attestationObject);
      if (typeof r.getTransports === "function") { out.response.transports = r.getTransports(); }
    } else {
      out.response.authenticatorData = toB64u(r.authenticatorData);
      out.response.signature = toB64u(r.signature);
      if (r.userHandle) { out.response.userHandle = toB64u(r.userHandle); }
    }
    if (cred.authenticatorAttachment) { out.authenticatorAttachment = cred.authenticatorAttachment; }
    return out;
  }
  async function post(path, body) {
    const res = await fetch(path, { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}) });
    const data = await res.json().catch(() => null);
    return { res, data };
  }

  // ---- login: password, then the key instead of the code ----
  async function login() {
    const err = $("login-error");
    err.textContent = "";
    const name = $("login-name"), pw = $("login-password");
    if (!name.value || !pw.value) { err.textContent = t("login.needPassword"); (name.value ? pw : name).focus(); return; }
    const begin = await post("login/key/begin");
    if (!begin.res.ok) { err.textContent = begin.res.status === 429 ? t("login.locked") : t("keys.unavailable"); return; }
    let cred;
    try { cred = await navigator.credentials.get(requestOptions(begin.data.options)); } catch (e) { err.textContent = t("keys.failed"); return; }
    const fin = await post("login/key", { name: name.value, password: pw.value, ceremony: begin.data.ceremony, credential: credentialJSON(cred) });
    pw.value = ""; $("login-code").value = "";
    if (fin.res.ok) { c.loggedIn(fin.data); return; }
    err.textContent = fin.res.status === 429 ? t("login.locked") : t("login.keyRefused");
  }
  function showLoginButton(available) { $("login-key").hidden = !(available && supported()); }

  // ---- the Security page ----
  async function page(box) {
    box.append(el("h2", { text: t("keys.title") }), el("p", { class: "muted", text: t("keys.intro") }));
    const body = el("div", { id: "keys-body" }, el("p", { class: "muted", text: t("loading") }));
    box.append(body);
    let d;
    try { d = await call("GET", "keys"); } catch (e) { body.replaceChildren(); c.showError(e); return; }
    const kids = [];
    if (!supported()) { kids.push(el("p", { class: "notice", id: "keys-unsupported", text: t("keys.unsupported") })); }
    if (!d.available) { kids.push(el("p", { class: "notice", id: "keys-unavailable", text: t("keys.unavailable") })); }
    kids.push(el("div", { id: "keys-list" }, table([
      { h: "col.name", f: (k) => k.name + (k.current ? " " + t("keys.current") : "") }, { h: "col.rpid", f: (k) => k.rp_id },
      { h: "col.added", f: (k) => fmtTime(k.created) },
      { h: "col.lastUsed", f: (k) => k.last_used ? fmtTime(k.last_used) : t("keys.never") },
      { h: "col.actions", f: (k) => el("button", { class: "danger key-remove", type: "button", "data-id": k.id, "data-name": k.name,
        "aria-label": t("keys.remove") + " " + k.name, onclick: () => confirmRemove(k, d.available), text: t("keys.remove") }) },
    ], d.keys || [])));
    kids.push(el("div", { id: "key-confirm" }));
    if (d.available && supported() && (d.keys || []).length < d.max) {
      const name = el("input", { id: "key-name", maxlength: 64, autocomplete: "off", required: true });
      const form = el("form", { class: "form card", id: "key-add-form", "aria-label": t("keys.add") }, field("key-name", "keys.name", name),
        el("button", { type: "submit", id: "key-add", text: t("keys.add") }));
      form.addEventListener("submit", (ev) => { ev.preventDefault(); addKey(name.value.trim()); });
      kids.push(form);
    }
    body.replaceChildren(...kids);
  }
  async function addKey(name) {
    if (!name) { flash(t("keys.nameNeeded"), true); return; }
    let begin;
    try { begin = await call("POST", "keys/begin"); } catch (e) { c.showError(e); return; }
    let cred;
    try { cred = await navigator.credentials.create(creationOptions(begin.options)); } catch (e) { flash(t("keys.failed"), true); return; }
    try {
      await call("POST", "keys", { name, ceremony: begin.ceremony, credential: credentialJSON(cred) });
    } catch (e) { c.showError(e); return; }
    await c.render();
    flash(t("keys.added"));
  }
  // Removing a key needs a fresh second factor: a new TOTP code, or one
  // of the user's keys.
  function confirmRemove(k, keysHere) {
    const box = $("key-confirm");
    const code = el("input", { id: "key-confirm-code", inputmode: "numeric", autocomplete: "one-time-code", maxlength: 6 });
    const remove = async (body) => {
      try { await call("DELETE", "keys/" + encodeURIComponent(k.id), body); } catch (e) {
        flash(e.status === 429 ? t("keys.locked") : e.status === 403 ? t("keys.wrongFactor") : t("error.generic") + e.message, true);
        if (e.status === 403) { code.value = ""; code.focus(); }
        return;
      }
      await c.render();
      flash(t("keys.removed"));
    };
    const withKey = async () => {
      let begin;
      try { begin = await call("POST", "keys/confirm"); } catch (e) { c.showError(e); return; }
      let cred;
      try { cred = await navigator.credentials.get(requestOptions(begin.options)); } catch (e) { flash(t("keys.failed"), true); return; }
      await remove({ ceremony: begin.ceremony, credential: credentialJSON(cred) });
    };
    const form = el("form", { class: "form card", id: "key-confirm-form", "aria-label": t("keys.confirmTitle") + " " + k.name },
      el("p", { text: t("keys.confirmTitle") + " " + k.name }),
      k.current ? el("p", { class: "muted", text: t("keys.endsSession") }) : null,
      field("key-confirm-code", "keys.confirmCode", code),
      el("button", { type: "submit", id: "key-confirm-submit", class: "danger", text: t("keys.confirmWithCode") }),
      keysHere && supported() ? el("button", { type: "button", id: "key-confirm-key", class: "secondary", onclick: withKey, text: t("keys.confirmWithKey") }) : null,
      el("button", { type: "button", id: "key-confirm-cancel", class: "secondary", onclick: () => box.replaceChildren(), text: t("keys.cancel") }));
    form.addEventListener("submit", (ev) => { ev.preventDefault(); remove({ code: code.value.trim() }); });
    box.replaceChildren(form);
    code.focus();
  }
  return { login, page, showLoginButton };
};
