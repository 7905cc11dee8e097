// The viewer page: layout, viewports, crosshair linking, W/L presets, fusion, share links, and
// shared sessions (session.js): the presenter publishes its view, followers show the session's.
import { api } from "./api.js";
import { ViewerSocket } from "./socket.js";
import { GRIDS, SharedSession } from "./session.js";
import { Viewport } from "./viewport.js";

const LAYOUTS = {
  "1x1": [["ax", { orientation: "axial" }]],
  "1x2": [["ax", { orientation: "axial" }], ["co", { orientation: "coronal" }]],
  "2x2": [
    ["ax", { orientation: "axial" }], ["co", { orientation: "coronal" }],
    ["sa", { orientation: "sagittal" }], ["3d", { mode: "vr", orientation: "coronal" }],
  ],
};
// Keyboard shortcuts: digit -> window preset.
const KEY_PRESETS = { 1: "soft-tissue", 2: "lung", 3: "bone", 4: "brain", 5: "liver", 6: "suv", 0: "auto" };
const FUSION_COLORMAPS = ["hot-iron", "pet", "rainbow"];

function button(text, title, onClick) {
  const b = document.createElement("button");
  b.textContent = text;
  if (title) b.title = title;
  b.addEventListener("click", onClick);
  return b;
}

export class Viewer {
  constructor(root, { study, series, allSeries, readOnly, join, onBack, onUnauthorized, onSessionOver = () => {} }) {
    // onSessionOver: the shared session ended or refused this viewer (its guest token is over).
    Object.assign(this, { root, study, series, allSeries, readOnly, join, onSessionOver });
    this.shared = null;
    this.pointerOn = false;   // the pointer toggle
    this.pointerHeld = false; // the P key
    this.tool = null;         // the annotation tool in use: "line", "ellipse" or "arrow"
    this.viewports = new Map();
    this.crosshair = null;
    this.fusion = { on: false, opacity: 0.5, colormap: "hot-iron" };
    this.pet = series.modality === "CT"
      ? allSeries.find((s) => s.modality === "PT" && s.is_volume && s.frame_of_reference_uid === series.frame_of_reference_uid)
        || allSeries.find((s) => s.modality === "PT" && s.is_volume)
      : null;
    this.build(onBack);
    this.socket = new ViewerSocket({
      onReady: () => this.onReady(),
      onEvent: (e) => this.onEvent(e),
      onFrame: (h, image) => this.viewports.get(h.viewport)?.onLocalFrame(h, image),
      onUnauthorized,
    });
    this.keyHandler = (e) => this.onKey(e);
    this.keyUpHandler = (e) => { if (e.key === "p" && this.pointerHeld) { this.pointerHeld = false; this.hidePointer(); } };
    window.addEventListener("keydown", this.keyHandler);
    window.addEventListener("keyup", this.keyUpHandler);
  }

  build(onBack) {
    const page = document.createElement("div");
    page.className = "viewer";
    const bar = document.createElement("div");
    bar.className = "toolbar";
    bar.append(button("◀ Studies", "back to the study list", onBack));
    const title = document.createElement("span");
    title.textContent = `${this.series.modality} · ${this.series.description || this.series.series_uid}`;
    bar.append(title, sep());
    this.layoutButtons = {};
    for (const name of Object.keys(LAYOUTS)) {
      bar.append((this.layoutButtons[name] = button(name, `layout ${name}`, () => { if (!this.shared?.following) this.setLayout(name); })));
    }
    bar.append(sep());
    for (const [key, preset] of Object.entries(KEY_PRESETS)) {
      bar.append(button(preset, `window preset (key ${key})`, () => this.applyPreset(preset)));
    }
    if (this.pet) {
      bar.append(sep());
      const label = document.createElement("label");
      const check = document.createElement("input");
      check.type = "checkbox";
      check.id = "fusion-toggle";
      check.addEventListener("change", () => { this.fusion.on = check.checked; this.updateFusion(); });
      label.append(check, " PET fusion ");
      const slider = document.createElement("input");
      Object.assign(slider, { type: "range", min: "0", max: "1", step: "0.05", value: "0.5", title: "PET opacity" });
      slider.id = "fusion-opacity";
      slider.addEventListener("input", () => { this.fusion.opacity = Number(slider.value); this.updateFusion(); });
      const cmap = document.createElement("select");
      cmap.title = "PET colormap";
      for (const c of FUSION_COLORMAPS) cmap.append(new Option(c, c));
      cmap.addEventListener("change", () => { this.fusion.colormap = cmap.value; this.updateFusion(); });
      bar.append(label, slider, cmap);
    }
    if (!this.readOnly) {
      bar.append(sep(), button("Share…", "a read-only link to this study", () => this.share()));
      this.sessionButton = button("Start session", "a shared session: others see what you show", () => this.startSession());
      bar.append(this.sessionButton);
    }
    this.grid = document.createElement("div");
    this.grid.className = "grid";
    this.body = document.createElement("div");
    this.body.className = "viewer-body";
    this.body.append(this.grid);
    page.append(bar, this.body);
    this.root.replaceChildren(page);
  }

  onReady() {
    if (this.viewports.size) {
      for (const vp of this.viewports.values()) vp.reopen();  // reconnected
    } else {
      this.setLayout("2x2");
      if (this.join) this.openSession({ sessionId: this.join.session, invite: this.join.invite, admitted: this.join.admitted });
    }
  }

  // Shared sessions

  startSession() {
    if (this.shared && !this.shared.ended) return;
    this.openSession({ study: this.study });
  }

  openSession(how) {
    this.shared?.close();
    this.shared = new SharedSession(this, how);
    // The owner asks for an invitation link as soon as the socket is open.
    const shared = this.shared;
    if (how.study) shared.ws.addEventListener("open", () => shared.invite("user"), { once: true });
    this.body.append(this.shared.panel);
    this.onSessionChanged();
  }

  // Who presents or follows changed: viewports no longer mirrored show this viewer's frames again.
  onSessionChanged() {
    const live = this.shared && !this.shared.ended;
    if (this.sessionButton) this.sessionButton.hidden = !!live;
    if (!live) this.tool = null;
    this.root.querySelector(".viewer")?.classList.toggle("following", !!this.shared?.following);
    for (const vp of this.viewports.values()) if (!this.shared?.mirrors(vp.id)) vp.unmirror();
  }

  // The presenter's layout, as a follower.
  followLayout(layout) {
    if (!layout) return;
    const name = Object.keys(LAYOUTS).find((n) => {
      const ids = LAYOUTS[n].map(([id]) => id);
      return GRIDS[n][0] === layout.rows && GRIDS[n][1] === layout.columns && ids.join() === layout.viewports.join();
    });
    if (name && name !== this.layoutName) this.setLayout(name);
  }

  showCrosshair(point) {
    this.crosshair = point;
    this.drawOverlays();
  }

  drawOverlays() { for (const vp of this.viewports.values()) vp.drawCrosshair(); }

  get pointerActive() { return !!this.shared && !this.shared.ended && (this.pointerOn || this.pointerHeld); }

  setPointer(on) {
    this.pointerOn = on;
    if (!on) this.hidePointer();
  }

  // At most one pointer message per animation frame.
  movePointer(vp, point) {
    this.pointerAt = [vp, point];
    if (this.pointerFrame) return;
    this.pointerFrame = requestAnimationFrame(() => {
      this.pointerFrame = 0;
      if (this.pointerAt && this.pointerActive) this.shared.pointer(...this.pointerAt);
    });
  }

  hidePointer() {
    if (this.pointerAt && this.shared) this.shared.pointer(this.pointerAt[0], null);
    this.pointerAt = null;
  }

  // Pick an annotation tool, or put it down when it is the one in use.
  setTool(kind) {
    this.tool = this.tool === kind ? null : kind;
    this.shared?.render();
    for (const vp of this.viewports.values()) vp.draft = null;
    this.drawOverlays();
  }

  setLayout(name) {
    const wanted = new Map(LAYOUTS[name]);
    for (const [id, vp] of this.viewports) {
      if (!wanted.has(id)) { vp.close(); this.viewports.delete(id); }
    }
    this.grid.className = `grid l${name}`;
    for (const [id, options] of wanted) {
      let vp = this.viewports.get(id);
      if (!vp) {
        vp = new Viewport(this, id, options);
        this.viewports.set(id, vp);
        this.grid.append(vp.element);
        requestAnimationFrame(() => vp.open(this.series.series_uid));
      } else {
        this.grid.append(vp.element);  // keep the layout's order
      }
    }
    for (const [n, b] of Object.entries(this.layoutButtons)) b.classList.toggle("active", n === name);
    this.layoutName = name;
    this.shared?.publishLayout(name);
    if (!this.selected || !this.viewports.has(this.selected.id)) this.select(this.viewports.values().next().value);
  }

  select(vp) {
    this.selected = vp;
    for (const v of this.viewports.values()) v.element.classList.toggle("selected", v === vp);
  }

  onEvent(event) {
    const vp = event.viewport ? this.viewports.get(event.viewport) : null;
    if (event.type === "opened") vp?.onOpened(event);
    else if (event.type === "state") vp?.onState(event.state);
    else if (event.type === "error") {
      if (vp) vp.onError(event);
      else console.warn(`server: ${event.code} ${event.field}: ${event.message}`);
    }
  }

  // Crosshairs: the three orthogonal MPRs share one point.
  linked(vp) { return vp.isMpr && ["ax", "co", "sa"].includes(vp.id); }

  setCrosshair(point, from) {
    if (this.shared?.following) return;  // the presenter's crosshair is shown
    this.crosshair = point;
    this.shared?.publishCrosshair(point);
    for (const vp of this.viewports.values()) {
      if (vp !== from && this.linked(vp)) vp.moveThrough(point);
      vp.drawCrosshair();
    }
  }

  onViewportState(vp) {
    if (this.shared?.following) { vp.drawCrosshair(); return; }
    const before = this.crosshair;
    if (this.crosshair && this.linked(vp)) {
      // Scrolling one MPR moves the shared point along its normal; the others draw it.
      const s = vp.state, n = vp.normal(), p = this.crosshair;
      const d = (s.center[0] - p[0]) * n[0] + (s.center[1] - p[1]) * n[1] + (s.center[2] - p[2]) * n[2];
      this.crosshair = [p[0] + d * n[0], p[1] + d * n[1], p[2] + d * n[2]];
    } else if (!this.crosshair && this.linked(vp)) {
      this.crosshair = vp.state.center;
    }
    for (const v of this.viewports.values()) v.drawCrosshair();
    this.shared?.publishViewport(vp);
    if (this.crosshair !== before) this.shared?.publishCrosshair(this.crosshair);
  }

  applyPreset(preset) {
    if (this.shared?.following) return;  // the presenter's window is shown
    const targets = this.selected && !this.selected.is3d ? [this.selected]
      : [...this.viewports.values()].filter((v) => !v.is3d);
    for (const vp of targets) vp.send({ preset });
  }

  fusionFields(vp) {
    if (!this.pet || vp.is3d) return {};
    if (!this.fusion.on) return { fusion_series_uid: "" };
    return { fusion_series_uid: this.pet.series_uid, fusion_opacity: this.fusion.opacity, fusion_colormap: this.fusion.colormap };
  }

  updateFusion() {
    for (const vp of this.viewports.values()) if (!vp.is3d && vp.state) vp.send(this.fusionFields(vp));
  }

  onKey(e) {
    if (e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement) return;
    if (e.key === "p") { this.pointerHeld = true; return; }
    if (this.shared?.following && (KEY_PRESETS[e.key] || e.key.startsWith("Arrow") || e.key === "i")) return;
    if (KEY_PRESETS[e.key]) this.applyPreset(KEY_PRESETS[e.key]);
    else if (this.selected && (e.key === "ArrowUp" || e.key === "ArrowDown")) {
      this.selected.send({ scroll: e.key === "ArrowUp" ? -1 : 1 });
      e.preventDefault();
    } else if (this.selected && e.key === "i") this.selected.send({ invert: !this.selected.state?.invert });
  }

  async share() {
    const minutes = Number(prompt("Link valid for how many hours?", "24")) * 60;
    if (!minutes) return;
    const pin = prompt("Optional PIN (4 or more characters; empty for none)", "") || null;
    try {
      const link = await api("/api/shares", { method: "POST", json: { study_uid: this.study, expires_minutes: minutes, pin } });
      const dialog = document.createElement("div");
      dialog.className = "dialog";
      dialog.innerHTML = `<div class="card"><b>Read-only link</b><code></code>
        <span class="muted">Shown once. Expires ${new Date(link.expires_at + "Z").toLocaleString()}.</span></div>`;
      dialog.querySelector("code").textContent = link.url;
      dialog.querySelector(".card").append(button("Close", "", () => dialog.remove()));
      document.body.append(dialog);
    } catch (err) {
      alert(`Sharing failed: ${err.message}`);
    }
  }

  destroy() {
    window.removeEventListener("keydown", this.keyHandler);
    window.removeEventListener("keyup", this.keyUpHandler);
    this.shared?.close();
    this.socket.close();
  }
}

function sep() {
  const s = document.createElement("span");
  s.className = "sep";
  return s;
}

