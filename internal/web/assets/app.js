// tollguard console. Plain JavaScript, no build step. Every piece of text
// that came from the network (user agents, accounts, reasons, Call-IDs)
// reaches the page through textContent only, never as HTML.
"use strict";
(function () {
  const I18N = window.TG_I18N;
  const state = { user: "", role: "", csrf: "", lang: "en", bans: [], banNow: null, page: "", live: null, chart: [] };
  const $ = (id) => document.getElementById(id);

  // ---- language and formatting ----
  function t(key) {
    const d = I18N[state.lang] || I18N.en;
    return d[key] !== undefined ? d[key] : (I18N.en[key] !== undefined ? I18N.en[key] : key);
  }
  function applyStatic() {
    document.documentElement.lang = state.lang;
    document.title = t("app.title");
    document.querySelectorAll("[data-i18n]").forEach((n) => { n.textContent = t(n.dataset.i18n); });
    document.querySelectorAll("[data-i18n-label]").forEach((n) => { n.setAttribute("aria-label", t(n.dataset.i18nLabel)); });
    document.querySelectorAll(".lang-select").forEach((s) => { s.value = state.lang; });
    const live = $("live");
    if (live.textContent) { live.textContent = t(live.classList.contains("on") ? "live.on" : "live.off"); }
  }
  function setLang(lang, save) {
    state.lang = I18N[lang] ? lang : "en";
    flash(""); // a message shown in the other language
    if (save) { try { localStorage.setItem("tg-lang", state.lang); } catch (e) { /* private mode */ } }
    applyStatic();
    if (state.user) { render(); }
  }
  function fmtNum(n) { return new Intl.NumberFormat(state.lang).format(n || 0); }
  function fmtTime(s) {
    if (!s || s.startsWith("0001-")) { return "–"; }
    const d = new Date(s);
    return isNaN(d) ? String(s) : new Intl.DateTimeFormat(state.lang, { dateStyle: "short", timeStyle: "medium" }).format(d);
  }
  function fmtDur(ms) {
    let s = Math.max(0, Math.floor(ms / 1000));
    const parts = { days: Math.floor(s / 86400), hours: Math.floor((s % 86400) / 3600), minutes: Math.floor((s % 3600) / 60), seconds: s % 60 };
    if (parts.days) { delete parts.seconds; delete parts.minutes; } else if (parts.hours) { delete parts.seconds; }
    if (typeof Intl.DurationFormat === "function") {
      return new Intl.DurationFormat(state.lang, { style: "narrow" }).format(parts);
    }
    const u = state.lang === "zh-CN" ? { days: "天", hours: "小时", minutes: "分", seconds: "秒" } : { days: "d", hours: "h", minutes: "m", seconds: "s" };
    return Object.keys(parts).filter((k) => parts[k]).map((k) => parts[k] + u[k]).join(" ") || "0" + u.seconds;
  }
  function fmtLeft(until, now) {
    if (!until || until.startsWith("0001-")) { return t("dur.never"); }
    const ms = new Date(until) - (now ? new Date(now) : new Date());
    return ms <= 0 ? t("dur.expired") : fmtDur(ms);
  }

  // ---- DOM helpers (text only) ----
  function el(tag, attrs, ...kids) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) { continue; }
      if (k === "class") { n.className = v; } else if (k === "text") { n.textContent = v; } else if (k.startsWith("on")) { n.addEventListener(k.slice(2), v); } else { n.setAttribute(k, v === true ? "" : String(v)); }
    }
    for (const c of kids.flat()) {
      if (c === undefined || c === null) { continue; }
      n.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return n;
  }
  function table(cols, rows) {
    if (!rows.length) { return el("p", { class: "muted", text: t("none") }); }
    return el("div", { class: "table-wrap" }, el("table", {},
      el("thead", {}, el("tr", {}, cols.map((c) => el("th", { scope: "col", text: t(c.h) })))),
      el("tbody", {}, rows.map((r) => el("tr", {}, cols.map((c) => {
        const v = c.f(r);
        return el("td", { class: c.num ? "num" : "" }, v instanceof Node ? v : (v === undefined || v === "" ? "–" : String(v)));
      }))))));
  }
  function flash(msg, bad) { const f = $("flash"); f.textContent = msg || ""; f.className = bad ? "flash bad" : "flash"; }
  function field(id, label, input) { return el("div", { class: "field" }, el("label", { for: id, text: t(label) }), input); }
  function can(role) { const r = { viewer: 1, operator: 2, admin: 3 }; return (r[state.role] || 0) >= r[role]; }

  // ---- requests ----
  async function call(method, path, body) {
    const opts = { method, headers: {}, credentials: "same-origin" };
    if (method !== "GET") { opts.headers["X-CSRF-Token"] = state.csrf; }
    if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
    const res = await fetch(path, opts);
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (res.status === 401 && state.user) { loggedOut(t("login.expired")); }
    if (!res.ok) { const err = new Error((data && data.error) || res.statusText); err.status = res.status; throw err; }
    return data;
  }
  function showError(e) { flash(e.status === 403 ? t("error.forbidden") + " " + e.message : t("error.generic") + e.message, true); }

  // ---- session ----
  async function start() {
    let saved = null;
    try { saved = localStorage.getItem("tg-lang"); } catch (e) { /* private mode */ }
    const res = await fetch("session", { credentials: "same-origin" });
    const s = await res.json().catch(() => ({}));
    setLang(saved || s.lang || (navigator.language && navigator.language.startsWith("zh") ? "zh-CN" : "en"), false);
    keys.showLoginButton(!!s.keys);
    if (res.ok) { loggedIn(s); } else { loggedOut(""); }
  }
  function loggedIn(s) {
    state.user = s.user; state.role = s.role; state.csrf = s.csrf;
    $("login").hidden = true; $("app").hidden = false;
    $("who").textContent = s.user + " · " + t("role." + s.role);
    openLive();
    route();
  }
  function loggedOut(msg) {
    state.user = ""; state.role = ""; state.csrf = "";
    if (state.live) { state.live.close(); state.live = null; }
    $("app").hidden = true; $("login").hidden = false;
    $("login-error").textContent = msg || "";
    $("login-name").focus();
  }
  async function login(ev) {
    ev.preventDefault();
    $("login-error").textContent = "";
    const body = { name: $("login-name").value, password: $("login-password").value, code: $("login-code").value.trim() };
    const res = await fetch("login", { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    $("login-password").value = ""; $("login-code").value = "";
    if (res.ok) { loggedIn(await res.json()); return; }
    $("login-error").textContent = res.status === 429 ? t("login.locked") : t("login.failed");
  }
  async function logout() {
    try { await call("POST", "logout"); } catch (e) { /* the session may be gone already */ }
    loggedOut("");
  }

  // ---- live bans (server-sent events) ----
  function openLive() {
    if (state.live) { state.live.close(); }
    const es = new EventSource("live");
    state.live = es;
    const ind = $("live");
    ind.textContent = t("live.off"); ind.className = "live";
    es.addEventListener("open", () => { ind.textContent = t("live.on"); ind.className = "live on"; });
    es.addEventListener("error", () => { ind.textContent = t("live.off"); ind.className = "live"; });
    es.addEventListener("logout", () => { es.close(); loggedOut(t("login.expired")); });
    es.addEventListener("bans", (m) => {
      const d = JSON.parse(m.data);
      state.bans = d.bans || []; state.banNow = d.now;
      ind.textContent = t("live.on"); ind.className = "live on";
      if (state.page === "bans" || state.page === "overview") { renderBanList(); }
    });
  }
  function banIP(d) { return String(d.prefix || "").replace(/\/(32|128)$/, ""); }
  function banRows() {
    const cols = [
      { h: "col.source", f: (d) => banIP(d) || "–" }, { h: "col.account", f: (d) => d.account },
      { h: "col.rule", f: (d) => d.rule }, { h: "col.reason", f: (d) => d.reason },
      { h: "col.by", f: (d) => d.origin }, { h: "col.time", f: (d) => fmtTime(d.at) },
      { h: "col.left", f: (d) => fmtLeft(d.until, state.banNow) },
    ];
    if (state.page === "bans" && can("operator")) {
      cols.push({ h: "col.actions", f: (d) => d.scope === "account" ? "" : el("button", { class: "danger unban", type: "button", "data-ip": banIP(d),
        "aria-label": t("bans.unban") + " " + banIP(d) + (d.account ? " " + d.account : ""), onclick: () => unban(d), text: t("bans.unban") }) });
    }
    return table(cols, state.bans);
  }
  function renderBanList() {
    const box = $("ban-list");
    if (box) { box.replaceChildren(banRows()); }
    const n = $("stat-active");
    if (n) { n.textContent = fmtNum(state.bans.length); }
  }
  async function unban(d) {
    if (!window.confirm(t("bans.confirmUnban"))) { return; }
    const q = d.scope === "ip_account" && d.account ? "?account=" + encodeURIComponent(d.account) : "";
    try { await call("DELETE", "api/v1/bans/" + encodeURIComponent(banIP(d)) + q); flash(t("bans.lifted")); } catch (e) { showError(e); }
  }

  // ---- security keys (keys.js) ----
  const keys = window.TG_KEYS({ t, el, call, flash, field, table, fmtTime, showError, loggedIn, render, $ });

  // ---- pages ----
  const pages = {
    overview: pageOverview, attackers: pageAttackers, affected: pageAffected, bans: pageBans, events: pageEvents,
    report: pageReport, audit: pageAudit,
    calls: pageCalls, lockdown: pageLockdown, loss: pageLoss, security: keys.page,
  };
  function route() {
    const name = (location.hash || "#overview").slice(1);
    state.page = pages[name] ? name : "overview";
    document.querySelectorAll(".nav a").forEach((a) => {
      if (a.dataset.page === state.page) { a.classList.add("active"); a.setAttribute("aria-current", "page"); } else { a.classList.remove("active"); a.removeAttribute("aria-current"); }
    });
    $("nav").classList.remove("open"); $("menu-toggle").setAttribute("aria-expanded", "false");
    flash("");
    render();
  }
  function render() {
    if (!state.user) { return; }
    $("who").textContent = state.user + " · " + t("role." + state.role);
    state.chart.forEach((c) => c.destroy()); state.chart = [];
    const page = $("page");
    page.replaceChildren();
    pages[state.page](page);
  }
  function heading(key) { return el("h2", { text: t(key) }); }

  async function pageOverview(page) {
    const sel = el("select", { id: "ov-days" }, el("option", { value: "1", text: t("ov.day") }), el("option", { value: "7", text: t("ov.week") }), el("option", { value: "30", text: t("ov.month") }));
    sel.value = state.ovDays || "1";
    sel.addEventListener("change", () => { state.ovDays = sel.value; render(); });
    const stats = el("div", { class: "stats" });
    // One day: per hour. Seven or thirty days: per (local) day.
    const daily = sel.value !== "1";
    const kRule = daily ? "ov.byRuleDay" : "ov.byRule"; const kAct = daily ? "ov.activityDay" : "ov.activity";
    const c1 = el("div", { class: "chart", id: "chart-rules", role: "img", "aria-label": t(kRule) });
    const c2 = el("div", { class: "chart", id: "chart-activity", role: "img", "aria-label": t(kAct) });
    page.append(heading("nav.overview"), el("div", { class: "form" }, field("ov-days", "ov.range", sel)), stats,
      el("section", { class: "card" }, el("h2", { text: t(kRule) }), c1),
      el("section", { class: "card" }, el("h2", { text: t(kAct) }), c2),
      el("section", { class: "card" }, el("h2", { text: t("ov.recentBans") }), el("div", { id: "ban-list" })));
    renderBanList();
    let d;
    try { d = await call("GET", "overview?days=" + sel.value); } catch (e) { showError(e); return; }
    if (!d.available) { stats.append(el("p", { class: "muted", text: t("ov.noCounts") })); }
    const bucket = (sec) => { if (!daily) { return sec; } const x = new Date(sec * 1000); x.setHours(0, 0, 0, 0); return x.getTime() / 1000; };
    const hours = []; const start = Date.parse(d.since) / 1000; const end = Date.parse(d.until) / 1000;
    for (let h = start; h < end; h += 3600) { const b = bucket(h); if (hours[hours.length - 1] !== b) { hours.push(b); } }
    const slot = new Map(hours.map((h, i) => [h, i]));
    const idx = { get: (sec) => slot.get(bucket(sec)) };
    const rules = new Map(); const act = { register: [], call_attempt: [], ban: [], auth_failure: [] };
    Object.values(act).forEach((a) => hours.forEach(() => a.push(0)));
    const totals = { stopped: 0, ban: 0, register: 0, call_attempt: 0, auth_failure: 0 };
    for (const c of d.hours) {
      const i = idx.get(Date.parse(c.hour) / 1000);
      if (i === undefined) { continue; }
      if (c.kind === "verdict") {
        const r = c.rule || "other";
        if (!rules.has(r)) { rules.set(r, hours.map(() => 0)); }
        rules.get(r)[i] += c.count; totals.stopped += c.count;
      } else if (act[c.kind]) { act[c.kind][i] += c.count; totals[c.kind] += c.count; }
    }
    const stat = (n, l, id) => el("div", { class: "stat" }, el("div", { class: "n", id: id, text: fmtNum(n) }), el("div", { class: "l", text: t(l) }));
    stats.append(stat(totals.stopped, "ov.stopped", "stat-stopped"), stat(totals.ban, "ov.bans", "stat-bans"), stat(state.bans.length, "ov.active", "stat-active"),
      stat(totals.register, "ov.registrations"), stat(totals.call_attempt, "ov.calls"), stat(totals.auth_failure, "ov.failures"));
    if (typeof window.uPlot !== "function") { return; }
    const palette = ["#0b5cad", "#b3261e", "#c28a00", "#1e7b34", "#6a3d9a", "#e7298a", "#17becf", "#7f7f7f"];
    const width = Math.max(280, c1.clientWidth || 600);
    const mk = (el2, names, data) => {
      const series = [{ label: t("col.time"), value: (u, v) => v == null ? "–" : fmtTime(new Date(v * 1000).toISOString()) }].concat(names.map((n, i) => ({ label: n, stroke: palette[i % palette.length], width: 2 })));
      const tick = new Intl.DateTimeFormat(state.lang, daily ? { month: "numeric", day: "numeric" } : { month: "numeric", day: "numeric", hour: "numeric" });
      const axes = [{ values: (u, vs) => vs.map((v) => tick.format(new Date(v * 1000))), incrs: daily ? [86400, 2 * 86400, 7 * 86400] : undefined }, { values: (u, vs) => vs.map(fmtNum) }];
      state.chart.push(new window.uPlot({ width, height: 220, series, axes, scales: { x: { time: true } } }, [hours].concat(data), el2));
    };
    const ruleNames = [...rules.keys()].sort();
    mk(c1, ruleNames.length ? ruleNames : [t("ov.stopped")], ruleNames.length ? ruleNames.map((r) => rules.get(r)) : [hours.map(() => 0)]);
    mk(c2, [t("ov.registrations"), t("ov.calls"), t("ov.bans"), t("ov.failures")], [act.register, act.call_attempt, act.ban, act.auth_failure]);
  }

  function sinceSelect(id) {
    const s = el("select", { id }, ["1h", "24h", "7d", "30d"].map((v) => el("option", { value: v, text: v })));
    s.value = state.since || "24h";
    s.addEventListener("change", () => { state.since = s.value; render(); });
    return s;
  }
  async function investigate(unmask) {
    const q = new URLSearchParams({ since: state.since || "24h" });
    if (unmask) { q.set("unmask", "true"); }
    return call("GET", "api/v1/investigate?" + q.toString());
  }
  async function pageAttackers(page) {
    page.append(heading("att.title"), el("div", { class: "form" }, field("att-since", "att.since", sinceSelect("att-since"))));
    const box = el("div", {}, el("p", { class: "muted", text: t("loading") }));
    page.append(box);
    let d;
    try { d = await investigate(false); } catch (e) { showError(e); return; }
    const banned = new Set(state.bans.map(banIP));
    box.replaceChildren(table([
      { h: "col.source", f: (s) => s.ip }, { h: "col.failures", f: (s) => fmtNum(s.failures), num: true },
      { h: "col.verdicts", f: (s) => fmtNum(s.verdicts), num: true }, { h: "col.bansN", f: (s) => fmtNum(s.bans), num: true },
      { h: "col.accounts", f: (s) => fmtNum(s.accounts), num: true }, { h: "col.userAgents", f: (s) => (s.user_agents || []).join(", ") },
      { h: "col.first", f: (s) => fmtTime(s.first) }, { h: "col.last", f: (s) => fmtTime(s.last) },
      { h: "col.banState", f: (s) => banned.has(s.ip) ? el("span", { class: "badge bad", text: t("ban.banned") }) : el("span", { class: "badge", text: t("ban.notBanned") }) },
    ], d.report.sources || []));
  }
  async function pageAffected(page) {
    const form = el("div", { class: "form" }, field("aff-since", "att.since", sinceSelect("aff-since")));
    let unmask = false;
    if (can("operator")) {
      const cb = el("input", { type: "checkbox", id: "aff-unmask" });
      cb.checked = !!state.unmask;
      cb.addEventListener("change", () => { state.unmask = cb.checked; render(); });
      form.append(el("div", { class: "field" }, el("label", { for: "aff-unmask", text: t("aff.unmask") }), cb));
      unmask = !!state.unmask;
    }
    const box = el("div", {}, el("p", { class: "muted", text: t("loading") }));
    page.append(heading("nav.affected"), form, box);
    let d;
    try { d = await investigate(unmask); } catch (e) { showError(e); return; }
    const r = d.report;
    box.replaceChildren(
      d.masked ? el("p", { class: "muted", text: t("aff.masked") }) : "",
      el("section", { class: "card" }, el("h2", { text: t("aff.compromised") }), table([
        { h: "col.account", f: (c) => c.account }, { h: "col.source", f: (c) => c.ip }, { h: "col.time", f: (c) => fmtTime(c.at) },
        { h: "col.how", f: (c) => c.how }, { h: "col.failures", f: (c) => fmtNum(c.failures), num: true }], r.compromised || [])),
      el("section", { class: "card" }, el("h2", { text: t("aff.targeted") }), table([
        { h: "col.account", f: (a) => a.account }, { h: "col.failures", f: (a) => fmtNum(a.failures), num: true },
        { h: "col.sources", f: (a) => fmtNum(a.sources), num: true }], r.accounts || [])),
      el("section", { class: "card" }, el("h2", { text: t("aff.destinations") }), table([
        { h: "col.destination", f: (x) => x.destination }, { h: "col.prefix", f: (x) => x.prefix },
        { h: "col.attempts", f: (x) => fmtNum(x.attempts), num: true }, { h: "col.answered", f: (x) => fmtNum(x.answered), num: true },
        { h: "col.billsec", f: (x) => fmtDur((x.billsec || 0) / 1e6) }, { h: "col.callers", f: (x) => (x.accounts || []).join(", ") }], r.destinations || [])));
  }
  async function pageBans(page) {
    page.append(heading("nav.bans"));
    if (can("operator")) {
      const ip = el("input", { id: "ban-ip", required: true, maxlength: 45, autocomplete: "off" });
      const acct = el("input", { id: "ban-account", maxlength: 128, autocomplete: "off" });
      const dur = el("input", { id: "ban-for", value: "24h", maxlength: 12 });
      const reason = el("input", { id: "ban-reason", maxlength: 256 });
      const form = el("form", { class: "form card", id: "ban-form", "aria-label": t("bans.new") },
        field("ban-ip", "bans.ip", ip), field("ban-account", "bans.account", acct), field("ban-for", "bans.for", dur), field("ban-reason", "bans.reason", reason),
        el("button", { type: "submit", id: "ban-submit", text: t("bans.submit") }));
      form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        try {
          await call("POST", "api/v1/bans", { ip: ip.value.trim(), account: acct.value.trim() || undefined, for: dur.value.trim() || undefined, reason: reason.value || undefined });
          flash(t("bans.placed")); ip.value = ""; acct.value = ""; reason.value = "";
        } catch (e) { showError(e); }
      });
      page.append(el("h2", { text: t("bans.new") }), form);
    } else {
      page.append(el("p", { class: "muted", id: "bans-readonly", text: t("bans.readOnly") }));
    }
    page.append(el("h2", { text: t("bans.list") }), el("div", { id: "ban-list" }));
    renderBanList();
    const extra = el("div", {});
    page.append(extra);
    let s;
    try { s = await call("GET", "api/v1/bans"); } catch (e) { showError(e); return; }
    extra.append(el("h2", { text: t("bans.jail") }), table([
      { h: "col.rule", f: (j) => j.name }, { h: "col.what", f: (j) => "findtime " + j.findtime + ", maxretry " + j.maxretry + ", " + j.banmode + ", bantime " + j.bantime }], s.jail || []),
    el("h2", { text: t("bans.failures") }), table([
      { h: "col.time", f: (f) => fmtTime(f.time) }, { h: "col.source", f: (f) => f.address }, { h: "col.account", f: (f) => f.account },
      { h: "col.code", f: (f) => f.code || "" }], (s.failures || []).slice(0, 50)));
  }
  // eventCols are the events table's columns; the node column shows when a
  // record names its guard (several guards on one store).
  function eventCols(recs) {
    const node = (recs || []).some((r) => r.node) ? [{ h: "col.node", f: (r) => r.node }] : [];
    return [
      ...node, { h: "col.time", f: (r) => fmtTime(r.time) }, { h: "col.kind", f: (r) => r.kind }, { h: "col.source", f: (r) => r.source },
      { h: "col.account", f: (r) => r.account }, { h: "col.from", f: (r) => r.from }, { h: "col.to", f: (r) => r.to },
      { h: "col.code", f: (r) => r.code || "" }, { h: "col.rule", f: (r) => r.rule }, { h: "col.userAgent", f: (r) => r.user_agent },
      { h: "col.detail", f: (r) => r.summary },
    ];
  }
  function pageEvents(page) {
    const f = state.evFilter || { limit: "100", since: "24h" };
    const inputs = {};
    const mk = (k, id, label, attrs) => { inputs[k] = el("input", Object.assign({ id, value: f[k] || "", autocomplete: "off" }, attrs || {})); return field(id, label, inputs[k]); };
    const form = el("form", { class: "form card", id: "ev-form" }, mk("node", "ev-node", "ev.node"), mk("ip", "ev-ip", "ev.ip"), mk("account", "ev-account", "ev.account"),
      mk("call_id", "ev-callid", "ev.callId"), mk("kind", "ev-kind", "ev.kind"), mk("since", "ev-since", "ev.since"), mk("until", "ev-until", "ev.until"),
      mk("limit", "ev-limit", "ev.limit", { inputmode: "numeric" }), el("button", { type: "submit", id: "ev-search", text: t("ev.search") }));
    const csv = el("a", { id: "ev-csv", href: "#", download: "tollguard-events.csv", text: t("ev.csv") });
    const box = el("div", {});
    page.append(heading("nav.events"), form, el("p", {}, csv), box);
    const query = () => {
      const q = new URLSearchParams();
      for (const [k, n] of Object.entries(inputs)) { if (n.value.trim()) { q.set(k, n.value.trim()); } }
      return q;
    };
    const load = async () => {
      const q = query();
      state.evFilter = Object.fromEntries(q.entries());
      csv.setAttribute("href", "api/v1/events.csv?" + q.toString());
      box.replaceChildren(el("p", { class: "muted", text: t("loading") }));
      try {
        const d = await call("GET", "api/v1/events?" + q.toString());
        box.replaceChildren(table(eventCols(d.records), d.records || []));
        if ((d.records || []).length >= Number(q.get("limit") || 1000)) { box.append(el("p", { class: "muted", text: t("ev.truncated") })); }
      } catch (e) { box.replaceChildren(); showError(e); }
    };
    form.addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
    load();
  }
  async function pageReport(page) {
    page.append(heading("rep.title"), el("div", { class: "form" }, field("rep-since", "rep.window", sinceSelect("rep-since"))));
    const box = el("div", {}, el("p", { class: "muted", text: t("loading") }));
    page.append(box);
    let d;
    try { d = await investigate(false); } catch (e) { showError(e); return; }
    const r = d.report;
    const stat = (n, l) => el("div", { class: "stat" }, el("div", { class: "n", text: fmtNum(n) }), el("div", { class: "l", text: t(l) }));
    box.replaceChildren(
      el("p", { class: "muted", text: fmtTime(r.since) + " – " + fmtTime(r.until) }),
      d.truncated ? el("p", { class: "notice", text: t("rep.truncated") }) : "",
      el("div", { class: "stats" }, stat(r.events, "rep.events"), stat((r.sources || []).length, "nav.attackers"),
        stat((r.accounts || []).length, "aff.targeted"), stat((r.compromised || []).length, "aff.compromised")),
      el("h2", { text: t("rep.timeline") }),
      table([{ h: "col.time", f: (e) => fmtTime(e.time) }, { h: "col.what", f: (e) => e.what || e.text || e.summary || JSON.stringify(e) }], r.timeline || []));
  }
  async function pageAudit(page) {
    page.append(heading("audit.title"));
    const box = el("div", {}, el("p", { class: "muted", text: t("loading") }));
    page.append(box);
    try {
      const d = await call("GET", "api/v1/events?kind=admin&limit=500");
      box.replaceChildren(table([
        { h: "col.time", f: (r) => fmtTime(r.time) }, { h: "col.actor", f: (r) => r.event && r.event.actor },
        { h: "col.action", f: (r) => r.event && r.event.action }, { h: "col.target", f: (r) => r.event && r.event.target },
        { h: "col.detail", f: (r) => r.event && r.event.detail }], d.records || []));
    } catch (e) { box.replaceChildren(); showError(e); }
  }

  async function pageCalls(page) {
    page.append(heading("nav.calls"));
    let unmask = false;
    if (can("operator")) {
      const cb = el("input", { type: "checkbox", id: "calls-unmask" });
      cb.checked = !!state.callsUnmask;
      cb.addEventListener("change", () => { state.callsUnmask = cb.checked; render(); });
      page.append(el("div", { class: "form" }, el("div", { class: "field" }, el("label", { for: "calls-unmask", text: t("aff.unmask") }), cb)));
      unmask = !!state.callsUnmask;
    }
    const box = el("div", { id: "calls-list" }, el("p", { class: "muted", text: t("loading") }));
    const refresh = el("button", { type: "button", id: "calls-refresh", text: t("calls.refresh"), onclick: () => render() });
    page.append(el("p", {}, refresh), box);
    let d;
    try { d = await call("GET", "api/v1/calls" + (unmask ? "?unmask=true" : "")); } catch (e) {
      if (e.status === 404) { box.replaceChildren(el("p", { class: "notice", id: "calls-unavailable", text: t("calls.unavailable") })); return; }
      box.replaceChildren(); showError(e); return;
    }
    const cols = [
      { h: "col.account", f: (c) => c.account }, { h: "col.from", f: (c) => c.from }, { h: "col.to", f: (c) => c.to },
      { h: "col.source", f: (c) => c.source }, { h: "calls.direction", f: (c) => t(c.direction === "inbound" ? "calls.inbound" : "calls.outbound") },
      { h: "calls.started", f: (c) => fmtTime(c.start) }, { h: "calls.connected", f: (c) => fmtDur((c.duration || 0) * 1000) },
      { h: "calls.id", f: (c) => c.id },
    ];
    if (can("operator")) {
      cols.push({ h: "col.actions", f: (c) => el("button", { class: "danger hangup", type: "button", "data-id": c.id,
        "aria-label": t("calls.hangup") + " " + c.id, onclick: () => hangup(c), text: t("calls.hangup") }) });
    }
    box.replaceChildren(el("p", { class: "muted", text: d.masked ? t("aff.masked") : "" }), table(cols, d.calls || []));
  }
  async function hangup(c) {
    if (!window.confirm(t("calls.confirm"))) { return; }
    try { await call("POST", "api/v1/calls/" + encodeURIComponent(c.id) + "/hangup"); flash(t("calls.done")); } catch (e) { showError(e); }
    if (state.page === "calls") { render(); }
  }
  async function pageLockdown(page) {
    page.append(heading("nav.lockdown"));
    const box = el("div", {}, el("p", { class: "muted", text: t("loading") }));
    page.append(box);
    let d;
    try { d = await call("GET", "api/v1/lockdown"); } catch (e) { box.replaceChildren(); showError(e); return; }
    const status = el("p", { class: d.on ? "status on" : "status off", id: "lockdown-status", text: t(d.on ? "lock.on" : "lock.off") });
    const kids = [el("section", { class: "card" }, status,
      el("p", { class: "muted", text: t("lock.since") + " " + (d.since ? fmtTime(d.since) : t("lock.never")) }),
      el("p", { class: "muted", text: t("lock.allow") + " " + ((d.allow_accounts || []).join(", ") || t("none")) }))];
    if (can("operator")) {
      const hang = el("input", { type: "checkbox", id: "lockdown-hangup" });
      const btn = el("button", { type: "button", id: "lockdown-toggle", class: d.on ? "" : "danger", text: t(d.on ? "lock.turnOff" : "lock.turnOn") });
      btn.addEventListener("click", async () => {
        const on = !d.on;
        if (!window.confirm(t(on ? (hang.checked ? "lock.confirmOnHangup" : "lock.confirmOn") : "lock.confirmOff"))) { return; }
        try {
          const r = await call("PUT", "api/v1/lockdown", { on, hangup: on && hang.checked });
          render();
          flash(t(r.on ? "lock.nowOn" : "lock.nowOff") + (r.hangups ? " " + t("lock.hangups") + " " + fmtNum(r.hangups) : ""));
        } catch (e) { showError(e); }
      });
      const form = el("div", { class: "form card" });
      if (!d.on) { form.append(el("div", { class: "field" }, el("label", { for: "lockdown-hangup", text: t("lock.hangup") }), hang)); }
      form.append(btn);
      kids.push(form);
    } else {
      kids.push(el("p", { class: "muted", id: "lockdown-readonly", text: t("lock.readOnly") }));
    }
    box.replaceChildren(...kids);
  }
  async function pageLoss(page) {
    const sel = el("select", { id: "loss-days" }, el("option", { value: "1", text: t("ov.day") }), el("option", { value: "7", text: t("ov.week") }), el("option", { value: "30", text: t("ov.month") }));
    sel.value = state.lossDays || "7";
    sel.addEventListener("change", () => { state.lossDays = sel.value; render(); });
    const box = el("div", {}, el("p", { class: "muted", text: t("loading") }));
    page.append(heading("nav.loss"), el("div", { class: "form" }, field("loss-days", "ov.range", sel)), box);
    let d;
    try { d = await call("GET", "loss?days=" + sel.value); } catch (e) { box.replaceChildren(); showError(e); return; }
    const money = (v, cur) => {
      try { return new Intl.NumberFormat(state.lang, { style: "currency", currency: cur }).format(Number(v)); } catch (e) { return v + " " + cur; }
    };
    const kids = [];
    if (!d.available) { kids.push(el("p", { class: "notice", text: t("loss.noStore") })); }
    if (!d.rates) { kids.push(el("p", { class: "notice", id: "loss-no-rates", text: t("loss.noRates") })); }
    if (d.truncated) { kids.push(el("p", { class: "notice", text: t("loss.truncated") })); }
    const stat = (v, l, id) => el("div", { class: "stat" }, el("div", { class: "n", id, text: v }), el("div", { class: "l", text: t(l) }));
    const totals = d.totals || [];
    kids.push(el("div", { class: "stats", id: "loss-totals" }, totals.length ? totals.flatMap((x) => [
      stat(money(x.prevented, x.currency), "loss.prevented", "loss-prevented-" + x.currency),
      stat(d.rates ? money(x.incurred, x.currency) : "–", "loss.incurred", "loss-incurred-" + x.currency)]) :
      [stat("0", "loss.prevented", "loss-prevented"), stat(d.rates ? "0" : "–", "loss.incurred", "loss-incurred")]));
    kids.push(el("h2", { text: t("loss.perDay") }), table([
      { h: "loss.day", f: (x) => new Intl.DateTimeFormat(state.lang, { dateStyle: "medium", timeZone: "UTC" }).format(new Date(x.day + "T00:00:00Z")) },
      { h: "loss.prevented", num: true, f: (x) => money(x.prevented, x.currency) }, { h: "loss.refused", num: true, f: (x) => fmtNum(x.refused) },
      { h: "loss.incurred", num: true, f: (x) => d.rates ? money(x.incurred, x.currency) : "–" }, { h: "loss.connected", num: true, f: (x) => d.rates ? fmtNum(x.connected) : "–" },
    ], d.days || []), el("p", { class: "muted", text: t("loss.how") }));
    box.replaceChildren(...kids);
  }

  // ---- wiring ----
  document.addEventListener("DOMContentLoaded", () => {
    $("login-form").addEventListener("submit", login);
    $("login-key").addEventListener("click", keys.login);
    $("logout").addEventListener("click", logout);
    document.querySelectorAll(".lang-select").forEach((s) => s.addEventListener("change", () => setLang(s.value, true)));
    $("menu-toggle").addEventListener("click", () => {
      const open = $("nav").classList.toggle("open");
      $("menu-toggle").setAttribute("aria-expanded", open ? "true" : "false");
    });
    window.addEventListener("hashchange", route);
    start();
  });
})();
