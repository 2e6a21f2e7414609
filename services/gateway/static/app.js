// TumorSearch web page: plain JavaScript, no build step, no external resource.
// The Content-Security-Policy forbids inline scripts and styles: everything is built with DOM calls and
// CSS classes; thumbnails are fetched with the caller's key and shown through blob: URLs.
// The page state lives in the query string (?tumor=<id> or ?study=<uid>, plus the filters), so a link
// reproduces what the radiologist sees.
"use strict";

(function () {
  const API = "/api/v1";
  const KEY_STORAGE = "tumorsearch.apiKey";
  const FILTER_KEYS = ["k", "type", "hemisphere", "min_size_mm3", "max_size_mm3", "exclude_same_patient"];
  const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
  const UID_RE = /^[0-9]+(\.[0-9]+)+$/;
  const LABEL_NAMES = {
    hemisphere: "Hemisphere",
    anterior_posterior: "Anterior / posterior",
    superior_inferior: "Superior / inferior",
    type: "Type",
  };
  const STATE_TEXT = {
    done: "Done",
    no_tumour: "No tumour found",
    failed: "Failed",
    processing: "Processing",
    received: "Received, waiting for processing",
    unknown: "Unknown",
  };

  const $ = (id) => document.getElementById(id);
  let generation = 0;          // each load gets a number; answers of an older load are dropped
  let objectUrls = [];         // blob: URLs of the shown thumbnails, revoked when the view changes
  let pollTimer = null;        // re-reads a study that is still being processed

  // ---------------------------------------------------------------- small helpers

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function apiKey() {
    try {
      return sessionStorage.getItem(KEY_STORAGE) || "";
    } catch (_) {
      return "";
    }
  }

  function headers(accept) {
    const h = { Accept: accept };
    const key = apiKey();
    if (key) h["X-API-Key"] = key;
    return h;
  }

  class Problem extends Error {
    constructor(status, title, detail) {
      super(detail || title);
      this.status = status;
      this.title = title;
      this.detail = detail;
    }
  }

  async function problemOf(response) {
    let title = `${response.status} ${response.statusText || "Error"}`.trim();
    let detail = "";
    try {
      const body = await response.json();
      title = body.title || title;
      detail = body.detail || "";
    } catch (_) {
      detail = "The gateway answered without an explanation.";
    }
    if (response.status === 401) {
      detail = `${detail} Enter your API key at the top right.`.trim();
    }
    return new Problem(response.status, title, detail);
  }

  async function getJson(path) {
    let response;
    try {
      response = await fetch(path, { headers: headers("application/json"), credentials: "same-origin" });
    } catch (_) {
      throw new Problem(0, "Gateway unreachable", "The TumorSearch gateway did not answer. Check the network, then reload.");
    }
    if (!response.ok) throw await problemOf(response);
    return response.json();
  }

  // Fetch with the key, show through a blob: URL; a missing thumbnail becomes a labelled placeholder.
  async function loadThumbnail(img, url, gen) {
    img.classList.add("pending");
    img.dataset.loaded = "pending";  // "true" once shown, "false" when there is none to show
    try {
      const response = await fetch(url, { headers: headers("image/png"), credentials: "same-origin" });
      if (!response.ok) throw await problemOf(response);
      const blob = await response.blob();
      if (gen !== generation) return;
      const objectUrl = URL.createObjectURL(blob);
      objectUrls.push(objectUrl);
      img.addEventListener("load", () => { img.dataset.loaded = "true"; }, { once: true });
      img.addEventListener("error", () => noThumbnail(img, "image not shown"), { once: true });
      img.src = objectUrl;
      img.hidden = false;
      img.classList.remove("pending");
    } catch (error) {
      if (gen !== generation) return;
      noThumbnail(img, error.status ? String(error.status) : "");
    }
  }

  function noThumbnail(img, why) {
    img.hidden = true;
    img.classList.remove("pending");
    img.dataset.loaded = "false";
    const frame = img.parentElement;
    if (frame && !frame.querySelector(".no-thumb")) {
      frame.append(el("span", { class: "no-thumb", text: "No image" + (why ? ` (${why})` : "") }));
    }
  }

  function thumbnail(tumor, gen, alt) {
    const img = el("img", { class: "thumb", alt: alt, width: 256, height: 256, hidden: true });
    const frame = el("div", { class: "thumb-frame" }, img);
    loadThumbnail(img, tumor.thumbnail_url, gen);
    return frame;
  }

  function percent(value) {
    return `${Math.round(value * 100)} %`;
  }

  function cm3(sizeMm3) {
    const value = sizeMm3 / 1000;
    if (value >= 10) return `${value.toFixed(1)} cm³`;
    if (value >= 0.1) return `${value.toFixed(2)} cm³`;
    return `${value.toFixed(3)} cm³`;
  }

  function pretty(value) {
    return value === "unknown" || value === null || value === undefined ? "unknown" : String(value);
  }

  function typeProbability(labels) {
    const p = labels.type_probabilities ? labels.type_probabilities[labels.type] : undefined;
    return typeof p === "number" ? p : null;
  }

  function labelRows(tumor) {
    const labels = tumor.labels;
    const p = typeProbability(labels);
    const rows = [
      ["Type", [el("span", { class: `type-name type-${labels.type}`, text: labels.type }),
        p === null ? null : el("span", { class: "muted", text: ` ${percent(p)}` })]],
      ["Hemisphere", pretty(labels.hemisphere)],
      ["Anterior / posterior", pretty(labels.anterior_posterior)],
      ["Superior / inferior", pretty(labels.superior_inferior)],
      ["Size", `${cm3(labels.size_mm3)}${tumor.slices === 1 ? " (one slice)" : ""}`],
    ];
    const dl = [];
    for (const [name, value] of rows) {
      const unknown = value === "unknown";
      dl.push(el("dt", { text: name }), el("dd", { class: unknown ? "unknown" : null }, value));
    }
    return dl;
  }

  function compactLabel(name, value) {
    return el("div", {}, el("dt", { text: name }),
      el("dd", { class: value === "unknown" ? "unknown" : null, text: pretty(value) }));
  }

  // Location and size of a card, two by two (the type is in the card's head).
  function compactLabels(labels) {
    return el("dl", { class: "labels compact" },
      compactLabel("Hemisphere", labels.hemisphere),
      compactLabel("Anterior / posterior", labels.anterior_posterior),
      compactLabel("Superior / inferior", labels.superior_inferior),
      el("div", {}, el("dt", { text: "Size" }), el("dd", { text: cm3(labels.size_mm3) })));
  }

  function typeBadge(labels, testid) {
    const p = typeProbability(labels);
    return [el("span", { class: `type-name type-${labels.type}`, "data-testid": testid || null, text: labels.type }),
      p === null ? null : el("span", { class: "muted", title: "Predicted probability of this type", text: percent(p) })];
  }

  // ---------------------------------------------------------------- URL state

  function params() {
    return new URLSearchParams(window.location.search);
  }

  function filterParams(source) {
    const out = new URLSearchParams();
    for (const key of FILTER_KEYS) {
      for (const value of source.getAll(key)) if (value !== "") out.append(key, value);
    }
    return out;
  }

  function navigate(view, id, keepFilters) {
    const next = new URLSearchParams();
    next.set(view, id);
    if (keepFilters) for (const [key, value] of filterParams(params())) next.append(key, value);
    history.pushState(null, "", `${window.location.pathname}?${next}`);
    route();
    window.scrollTo(0, 0);
  }

  function href(view, id) {
    const next = new URLSearchParams();
    next.set(view, id);
    return `${window.location.pathname}?${next}`;
  }

  // ---------------------------------------------------------------- banner and status

  function showError(problem) {
    $("error-title").textContent = problem.title || "Error";
    $("error-detail").textContent = problem.detail || problem.message || "";
    $("error").hidden = false;
    document.body.dataset.status = "error";
  }

  function clearError() {
    $("error").hidden = true;
    $("error-detail").textContent = "";
  }

  function setStatus(status) {
    document.body.dataset.status = status;
    $("loading").hidden = status !== "loading";
  }

  function startLoad() {
    generation += 1;
    for (const url of objectUrls) URL.revokeObjectURL(url);
    objectUrls = [];
    if (pollTimer) {
      clearTimeout(pollTimer);
      pollTimer = null;
    }
    clearError();
    setStatus("loading");
    return generation;
  }

  function showView(name) {
    for (const view of ["intro-view", "study-view", "tumor-view"]) $(view).hidden = view !== name;
  }

  // ---------------------------------------------------------------- study view

  async function loadStudy(uid) {
    const gen = startLoad();
    showView("study-view");
    $("study-uid").textContent = uid;
    $("study-state").textContent = "";
    $("study-reason").hidden = true;
    $("study-series").replaceChildren();
    $("study-tumours").replaceChildren();
    $("study-tumours-title").hidden = true;
    document.title = "TumorSearch — study";
    let study;
    try {
      study = await getJson(`${API}/studies/${encodeURIComponent(uid)}`);
    } catch (problem) {
      if (gen !== generation) return;
      setStatus("idle");
      showView(null);
      showError(problem);
      return;
    }
    if (gen !== generation) return;
    renderStudy(study, gen);
    setStatus("ready");
    if (study.state === "processing" || study.state === "received") {
      pollTimer = setTimeout(() => { if (gen === generation) loadStudy(uid); }, 5000);
    }
  }

  function renderStudy(study, gen) {
    const state = $("study-state");
    state.className = `state state-${study.state}`;
    const count = study.tumors.length;
    let text = STATE_TEXT[study.state] || study.state;
    if (study.state === "done") text += ` — ${count} tumour${count === 1 ? "" : "s"}`;
    if (study.state === "processing" || study.state === "received") text += " (refreshing every 5 s)";
    state.textContent = text;
    const reason = $("study-reason");
    if (study.reason) {
      reason.textContent = study.state === "failed" ? `Reason: ${study.reason}` : study.reason;
      reason.className = `reason reason-${study.state}`;
      reason.hidden = false;
    }
    const series = $("study-series");
    for (const s of study.series || []) {
      const facts = [`${s.slices} slice${s.slices === 1 ? "" : "s"}`, s.chosen_because ? `chosen: ${s.chosen_because}` : null,
        `${s.tumours} tumour${s.tumours === 1 ? "" : "s"}`].filter(Boolean).join(" · ");
      series.append(el("div", { class: `series-row${s.error ? " failed" : ""}` },
        el("span", { class: "series-name", text: s.description || "(no description)" }),
        el("span", { class: "muted", text: facts }),
        s.error ? el("span", { class: "series-error", text: s.error }) : null));
    }
    const list = $("study-tumours");
    $("study-tumours-title").hidden = count === 0;
    study.tumors.forEach((tumor, i) => {
      const open = () => navigate("tumor", tumor.id, true);
      const card = el("li", { class: "card clickable", "data-testid": "study-tumor", "data-id": tumor.id, tabindex: 0,
        title: "Search with this tumour", onclick: open,
        onkeydown: (event) => { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); open(); } } },
      thumbnail(tumor, gen, `Tumour ${i + 1}: slice with its outline`),
      el("div", { class: "card-body" },
        el("div", { class: "card-head" }, el("span", { class: "rank", text: `Tumour ${tumor.tumor_index + 1}` }),
          typeBadge(tumor.labels)),
        compactLabels(tumor.labels),
        el("button", { type: "button", class: "primary", text: "Find similar", onclick: (event) => { event.stopPropagation(); open(); } })));
      list.append(card);
    });
    document.title = `TumorSearch — study (${STATE_TEXT[study.state] || study.state})`;
  }

  // ---------------------------------------------------------------- tumour view

  function syncFilterControls(source) {
    const form = $("filters");
    const types = source.getAll("type");
    const hemispheres = source.getAll("hemisphere");
    for (const box of form.querySelectorAll("input[name=type]")) box.checked = types.includes(box.value);
    for (const box of form.querySelectorAll("input[name=hemisphere]")) box.checked = hemispheres.includes(box.value);
    const toCm3 = (mm3) => (mm3 === null || mm3 === "" || isNaN(Number(mm3)) ? "" : String(Number(mm3) / 1000));
    form.elements.min_size_cm3.value = toCm3(source.get("min_size_mm3"));
    form.elements.max_size_cm3.value = toCm3(source.get("max_size_mm3"));
    const k = source.get("k") || "10";
    const select = form.elements.k;
    if (![...select.options].some((o) => o.value === k)) {
      select.append(el("option", { value: k, text: k }));
    }
    select.value = k;
    const exclude = (source.get("exclude_same_patient") || "true").toLowerCase();
    form.elements.exclude_same_patient.checked = !["false", "0", "no", "off"].includes(exclude);
  }

  function filtersFromControls() {
    const form = $("filters");
    const out = new URLSearchParams();
    const k = form.elements.k.value;
    if (k && k !== "10") out.set("k", k);
    for (const box of form.querySelectorAll("input[name=type]:checked")) out.append("type", box.value);
    for (const box of form.querySelectorAll("input[name=hemisphere]:checked")) out.append("hemisphere", box.value);
    const toMm3 = (cm3Text) => {
      if (cm3Text === "") return null;
      const value = Number(cm3Text);
      return isFinite(value) && value >= 0 ? String(Number((value * 1000).toPrecision(12))) : null;
    };
    const min = toMm3(form.elements.min_size_cm3.value);
    const max = toMm3(form.elements.max_size_cm3.value);
    if (min !== null) out.set("min_size_mm3", min);
    if (max !== null) out.set("max_size_mm3", max);
    if (!form.elements.exclude_same_patient.checked) out.set("exclude_same_patient", "false");
    return out;
  }

  function onFiltersChanged() {
    const current = params();
    const next = new URLSearchParams();
    next.set("tumor", current.get("tumor") || "");
    for (const [key, value] of filtersFromControls()) next.append(key, value);
    history.replaceState(null, "", `${window.location.pathname}?${next}`);
    route();
  }

  function describeFilters(filters) {
    const parts = [];
    if (filters.type && filters.type.length) parts.push(filters.type.join(" or "));
    if (filters.hemisphere && filters.hemisphere.length) parts.push(`${filters.hemisphere.join(" or ")} hemisphere`);
    if (filters.min_size_mm3 !== null && filters.min_size_mm3 !== undefined) parts.push(`≥ ${cm3(filters.min_size_mm3)}`);
    if (filters.max_size_mm3 !== null && filters.max_size_mm3 !== undefined) parts.push(`≤ ${cm3(filters.max_size_mm3)}`);
    const patient = filters.exclude_same_patient === false ? "this patient's other studies included"
      : "this patient's other studies left out";
    return parts.length ? `Filtered: ${parts.join(", ")} · ${patient}` : `No filter · ${patient}`;
  }

  async function loadTumor(id, source) {
    const gen = startLoad();
    showView("tumor-view");
    syncFilterControls(source);
    $("results").replaceChildren();
    $("results-empty").hidden = true;
    $("results-summary").textContent = "";
    $("query-labels").replaceChildren();
    // A fresh element: listeners and state of the previous query's image go with the old one.
    $("query-thumb").replaceWith(el("img", { id: "query-thumb", class: "thumb", hidden: true,
      alt: "Slice through the query tumour with its outline" }));
    $("query").classList.add("pending");
    for (const stale of $("query").querySelectorAll(".no-thumb")) stale.remove();
    document.title = "TumorSearch — similar cases";
    let answer;
    try {
      answer = await getJson(`${API}/tumors/${encodeURIComponent(id)}/similar?${filterParams(source)}`);
    } catch (problem) {
      if (gen !== generation) return;
      setStatus("idle");
      $("query").classList.remove("pending");
      showView(null);
      showError(problem);
      return;
    }
    if (gen !== generation) return;
    renderQuery(answer.query, gen);
    renderResults(answer, gen);
    setStatus("ready");
  }

  function renderQuery(tumor, gen) {
    const panel = $("query");
    panel.classList.remove("pending");
    panel.dataset.id = tumor.id;
    loadThumbnail($("query-thumb"), tumor.thumbnail_url, gen);
    $("query-labels").replaceChildren(...labelRows(tumor));
    const link = $("query-study");
    link.textContent = tumor.study_instance_uid;
    link.title = "Open the study this tumour was found in";
    link.href = href("study", tumor.study_instance_uid);
  }

  function whyBlock(result, query) {
    const why = result.why || {};
    const chips = [];
    for (const key of why.agreeing_labels || []) {
      const value = key === "type" ? result.tumor.labels.type : result.tumor.labels[key];
      chips.push(el("span", { class: "chip agree", title: `Same ${LABEL_NAMES[key] || key} as the query`,
        text: `✓ ${value}` }));
    }
    for (const key of why.differing_labels || []) {
      const theirs = key === "type" ? result.tumor.labels.type : result.tumor.labels[key];
      const mine = key === "type" ? query.labels.type : query.labels[key];
      chips.push(el("span", { class: "chip differ", title: `${LABEL_NAMES[key] || key}: ${theirs} here, ${mine} in the query`,
        text: `≠ ${theirs}` }));
    }
    const facts = [];
    if (why.size_ratio !== null && why.size_ratio !== undefined && why.size_ratio > 0) {
      // size_ratio is smaller / larger (1 = same size); shown as this case's size relative to the query's
      const bigger = result.tumor.labels.size_mm3 >= query.labels.size_mm3;
      const factor = bigger ? 1 / why.size_ratio : why.size_ratio;
      facts.push(why.size_ratio >= 0.995 ? "same size" : `${factor >= 10 ? factor.toFixed(0) : factor.toFixed(2)}× the query's size`);
    }
    if (why.centroid_distance_mm !== null && why.centroid_distance_mm !== undefined) {
      facts.push(`centres ${why.centroid_distance_mm.toFixed(1)} mm apart`);
    }
    return el("div", { class: "why", "data-testid": "result-why" },
      el("div", { class: "why-title", text: "Why it matched" }),
      el("div", { class: "chips" }, chips.length ? chips : el("span", { class: "muted", text: "no label to compare" })),
      facts.length ? el("div", { class: "muted why-facts", text: facts.join(" · ") }) : null);
  }


  function renderResults(answer, gen) {
    const results = answer.results || [];
    $("results-title").textContent = `${results.length} most similar case${results.length === 1 ? "" : "s"}`;
    $("results-summary").textContent = describeFilters(answer.filters || {});
    $("results-empty").hidden = results.length > 0;
    const list = $("results");
    results.forEach((result, i) => {
      const tumor = result.tumor;
      const labels = tumor.labels;
      const open = () => navigate("tumor", tumor.id, true);
      const similarity = Math.max(0, Math.min(1, result.similarity));
      list.append(el("li", { class: "card result", "data-testid": "result", "data-id": tumor.id },
        thumbnail(tumor, gen, `Similar case ${i + 1}: slice with the tumour outline`),
        el("div", { class: "card-body" },
          el("div", { class: "card-head" },
            el("span", { class: "rank", text: `#${i + 1}` }),
            typeBadge(labels, "result-type"),
            el("span", { class: "similarity", "data-testid": "result-similarity", title: "Cosine similarity of the embeddings" },
              el("meter", { min: 0, max: 1, value: similarity.toFixed(4) }),
              el("b", { text: percent(result.similarity) }), " similar")),
          compactLabels(labels),
          whyBlock(result, answer.query),
          el("div", { class: "card-foot" },
            el("a", { class: "muted small", href: href("study", tumor.study_instance_uid), title: tumor.study_instance_uid,
              onclick: (event) => { event.preventDefault(); navigate("study", tumor.study_instance_uid, false); },
              text: "Study" }),
            el("button", { type: "button", class: "primary", text: "Open", title: "Search with this case as the query",
              onclick: open })))));
    });
  }

  // ---------------------------------------------------------------- routing and controls

  function route() {
    const source = params();
    const tumor = source.get("tumor");
    const study = source.get("study");
    if (tumor) {
      $("open-input").value = tumor;
      loadTumor(tumor.trim(), source);
    } else if (study) {
      $("open-input").value = study;
      loadStudy(study.trim());
    } else {
      startLoad();
      showView("intro-view");
      setStatus("ready");
    }
  }

  function onOpen(event) {
    event.preventDefault();
    const text = $("open-input").value.trim();
    if (UUID_RE.test(text)) {
      navigate("tumor", text.toLowerCase(), true);
    } else if (UID_RE.test(text)) {
      navigate("study", text, false);
    } else {
      showError(new Problem(0, "Not a study or tumour",
        text ? "Expected a study instance UID (digits and dots, e.g. 1.2.840.…) or a tumour id (a UUID)."
          : "Paste a study instance UID or a tumour id first."));
    }
  }

  function setupKey() {
    const input = $("api-key");
    input.value = apiKey();
    const save = () => {
      try {
        if (input.value.trim()) sessionStorage.setItem(KEY_STORAGE, input.value.trim());
        else sessionStorage.removeItem(KEY_STORAGE);
      } catch (_) { /* storage disabled: the key is then not kept */ }
    };
    input.addEventListener("change", () => { save(); route(); });
    $("key-form").addEventListener("submit", (event) => { event.preventDefault(); save(); route(); });
    $("key-clear").addEventListener("click", () => { input.value = ""; save(); route(); });
  }

  function setupFilters() {
    const form = $("filters");
    form.addEventListener("change", onFiltersChanged);
    form.addEventListener("submit", (event) => { event.preventDefault(); onFiltersChanged(); });
    $("filters-reset").addEventListener("click", () => {
      syncFilterControls(new URLSearchParams());
      onFiltersChanged();
    });
  }

  function init() {
    $("open-form").addEventListener("submit", onOpen);
    $("error-close").addEventListener("click", clearError);
    $("query-study").addEventListener("click", (event) => {
      const uid = $("query-study").textContent;
      if (!uid) return;
      event.preventDefault();
      navigate("study", uid, false);
    });
    $("home-link").addEventListener("click", (event) => {
      event.preventDefault();
      history.pushState(null, "", window.location.pathname);
      route();
    });
    setupKey();
    setupFilters();
    window.addEventListener("popstate", route);
    route();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
