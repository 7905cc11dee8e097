// Study list with search, a study's series with thumbnails, and upload.
import { api, imageUrl, session } from "./api.js";

function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  e.append(...children.filter((c) => c !== null && c !== undefined));
  return e;
}

const date = (d) => (d && d.length === 8 ? `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6)}` : d || "");

export function renderStudies(root, { onOpenStudy }) {
  const query = h("input", { type: "search", placeholder: "patient name", id: "study-search" });
  const modality = h("input", { placeholder: "modality", size: "8" });
  const error = h("div", { class: "error" });
  const body = h("tbody");
  const readOnly = session.user?.role === "guest";
  async function search() {
    error.textContent = "";
    try {
      const params = new URLSearchParams();
      if (query.value) params.set("q", query.value);
      if (modality.value) params.set("modality", modality.value.toUpperCase());
      const studies = await api(`/api/studies?${params}`);
      body.replaceChildren(...studies.map((s) => h("tr", { onclick: () => onOpenStudy(s.study_uid), "data-study": s.study_uid },
        h("td", {}, s.patient_name.replaceAll("^", ", ")), h("td", {}, s.patient_id), h("td", {}, date(s.study_date)),
        h("td", {}, s.description), h("td", {}, s.modalities.join(", ")), h("td", {}, String(s.num_series)))));
      if (!studies.length) body.replaceChildren(h("tr", {}, h("td", { colspan: "6", class: "muted" }, "No study found.")));
    } catch (err) {
      error.textContent = err.message;
    }
  }
  let timer;
  query.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(search, 250); });
  modality.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(search, 250); });
  const table = h("table", {}, h("thead", {}, h("tr", {}, ...["Patient", "ID", "Date", "Description", "Modalities", "Series"].map((t) => h("th", {}, t)))), body);
  root.replaceChildren(h("div", { class: "page" },
    h("div", { class: "searchbar" }, query, modality, readOnly ? null : uploadForm(search)), error, table));
  search();
}

function uploadForm(onDone) {
  const input = h("input", { type: "file", multiple: "", accept: ".dcm,.zip,application/dicom,application/zip" });
  const results = h("div", { class: "upload-results" });
  const form = h("span", {}, h("span", { class: "muted" }, "Upload DICOM / zip: "), input, results);
  input.addEventListener("change", async () => {
    const data = new FormData();
    for (const f of input.files) data.append("files", f);
    results.textContent = "uploading…";
    try {
      const r = await api("/api/upload", { method: "POST", form: data });
      results.textContent = `${r.indexed} indexed, ${r.duplicate} duplicate, ${r.rejected} rejected`;
      for (const bad of r.results.filter((x) => x.status === "rejected")) {
        results.append(h("div", { class: "error" }, `${bad.file}: ${bad.reason}`));
      }
      onDone();
    } catch (err) {
      results.textContent = err.message;
    }
    input.value = "";
  });
  return form;
}

export async function renderSeries(root, studyUid, { onOpenSeries, onBack }) {
  const grid = h("div", { class: "series-grid" });
  const error = h("div", { class: "error" });
  const back = session.user?.role === "guest" ? null : h("button", { onclick: onBack }, "◀ Studies");
  root.replaceChildren(h("div", { class: "page" }, back, h("h3", {}, "Series"), error, grid));
  let series = [];
  try {
    series = await api(`/api/studies/${studyUid}/series`);
  } catch (err) {
    error.textContent = err.message;
    return;
  }
  for (const s of series) {
    const img = s.thumbnail_url ? h("img", { alt: `${s.modality} thumbnail` }) : h("div", { class: "noimg" });
    const card = h("div", { class: "series-card", "data-series": s.series_uid, "data-modality": s.modality },
      img, h("div", {}, `${s.modality} · ${s.description || "—"}`),
      h("div", { class: "muted" }, s.is_volume ? `${s.geometry.shape.join("×")}` : s.not_volume_reason));
    if (s.is_volume) card.addEventListener("click", () => onOpenSeries(s, series));
    grid.append(card);
    if (s.thumbnail_url) imageUrl(s.thumbnail_url).then((url) => { img.src = url; }, () => { img.alt = "no thumbnail"; });
  }
}
