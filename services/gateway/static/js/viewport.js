// One viewport: a canvas showing the newest frame, overlays, a mode menu, and mouse/touch input
// turned into view-change messages (at most one per animation frame; the server keeps the newest).

import { annotationLabel, onPlane, viewGeometry } from "./session.js";

export const MODES = [
  ["mpr", "MPR"], ["mip", "MIP"], ["minip", "MinIP"], ["avgip", "AvgIP"], ["vr", "3D"],
];
export const VR_PRESETS = ["ct-bone", "ct-soft-tissue", "ct-lung", "ct-angio", "pet-hot", "mr-default"];
// Default windows of the render service's presets, for dragging from a preset (center, width).
export const WINDOWS = {
  "brain": [40, 80], "soft-tissue": [40, 400], "lung": [-600, 1500], "bone": [400, 1800],
  "liver": [60, 160], "suv": [2.5, 5],
};
const DEFAULT_WINDOW = { CT: "soft-tissue", PT: "suv" };
// Thick-slab choices (mm): MPR slabs are combined by MIP; projections use them around the centre.
const SLABS = [0, 5, 10, 20, 40];
const CLICK_PX = 3;

const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
const sub = (a, b) => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
const add = (a, b, s = 1) => [a[0] + s * b[0], a[1] + s * b[1], a[2] + s * b[2]];
const cross = (a, b) => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

export class Viewport {
  constructor(viewer, id, { mode = "mpr", orientation = "axial", preset = "" } = {}) {
    Object.assign(this, { viewer, id, mode, orientation, preset });
    this.state = null;
    this.series = null;
    this.lastFrame = null;
    this.frameWindow = null;  // [center, width] the picture on screen was windowed with
    // Frames are numbered here as they arrive: decoding is asynchronous and may finish out of
    // order, and a frame that arrived later is the newer one. (The senders' own numbers restart
    // when a WebSocket reconnects or a render pod changes, so they cannot order frames.)
    this.arrivals = 0;
    this.drawnArrival = 0;
    this.pending = {};
    this.pointers = new Map();
    this.mirrorView = null;
    this.sessionArrival = 0;  // 0 until a frame of the session's view has come
    this.element = this.build();
    this.resizeObserver = new ResizeObserver(() => this.onResize());
    this.resizeObserver.observe(this.element);
  }

  build() {
    const root = el("div", "viewport");
    root.dataset.viewport = this.id;
    this.canvas = el("canvas");
    this.overlay = el("canvas");
    root.append(this.canvas, this.overlay);
    this.labels = {};
    for (const side of ["top", "bottom", "left", "right"]) root.append((this.labels[side] = el("div", `ov ${side}`)));
    root.append((this.infoLeft = el("div", "ov info-bl")), (this.infoRight = el("div", "ov info-br")));
    root.append((this.rung = el("div", "rung")), (this.errorBox = el("div", "vp-error")));
    const controls = el("div", "controls");
    this.modeMenu = el("select");
    this.modeMenu.title = "mode";
    for (const [value, label] of MODES) this.modeMenu.append(new Option(label, value));
    this.modeMenu.value = this.mode;
    this.presetMenu = el("select");
    this.presetMenu.title = "3D preset";
    this.presetMenu.append(new Option("default", ""));
    for (const p of VR_PRESETS) this.presetMenu.append(new Option(p, p));
    this.presetMenu.hidden = this.mode !== "vr";
    this.slabMenu = el("select");
    this.slabMenu.title = "slab thickness";
    for (const mm of SLABS) this.slabMenu.append(new Option(mm ? `slab ${mm} mm` : "thin", String(mm)));
    this.slabMenu.hidden = this.mode === "vr";
    controls.append(this.modeMenu, this.presetMenu, this.slabMenu);
    this.slabMenu.addEventListener("change", () => this.send({ slab_mm: Number(this.slabMenu.value) }));
    root.append(controls);
    this.modeMenu.addEventListener("change", () => this.setMode(this.modeMenu.value));
    this.presetMenu.addEventListener("change", () => this.send({ preset: this.presetMenu.value }));
    for (const stop of [this.modeMenu, this.presetMenu, this.slabMenu]) stop.addEventListener("pointerdown", (e) => e.stopPropagation());

    root.addEventListener("contextmenu", (e) => e.preventDefault());
    root.addEventListener("wheel", (e) => this.onWheel(e), { passive: false });
    root.addEventListener("pointerdown", (e) => this.onPointerDown(e));
    root.addEventListener("pointermove", (e) => this.onPointerMove(e));
    root.addEventListener("pointerup", (e) => this.onPointerUp(e));
    root.addEventListener("pointercancel", (e) => this.onPointerUp(e));
    return root;
  }

  get is3d() { return this.mode === "vr"; }
  get isMpr() { return this.mode === "mpr"; }

  // Size the render to the element (CSS pixels, capped: frames travel over the network).
  requestSize() {
    const w = Math.max(16, this.element.clientWidth), h = Math.max(16, this.element.clientHeight);
    const scale = Math.min(1, 768 / Math.max(w, h));
    return [Math.max(16, Math.round(w * scale)), Math.max(16, Math.round(h * scale))];
  }

  open(seriesUid, extra = {}) {
    this.seriesUid = seriesUid;
    const message = { type: "open", viewport: this.id, series_uid: seriesUid, mode: this.mode,
      orientation: this.orientation, size: this.requestSize(), ...this.viewer.fusionFields(this), ...extra };
    if (this.preset) message.preset = this.preset;
    this.viewer.socket.send(message);
  }

  // Re-open after a reconnect, where the view was.
  reopen() {
    const extra = {};
    if (this.state) {
      extra.center = this.state.center;
      if (this.state.window_width > 0) extra.window = { center: this.state.window_center, width: this.state.window_width };
      if (this.state.preset) extra.preset = this.state.preset;
    }
    this.open(this.seriesUid, extra);
  }

  close() {
    this.resizeObserver.disconnect();
    this.viewer.socket.send({ type: "close", viewport: this.id });
    this.element.remove();
  }

  send(changes) { this.viewer.socket.send({ type: "view", viewport: this.id, ...changes }); }

  setMode(mode) {
    this.mode = mode;
    this.modeMenu.value = mode;
    this.presetMenu.hidden = mode !== "vr";
    this.presetMenu.value = "";
    this.slabMenu.hidden = mode === "vr";
    this.send({ mode, ...this.viewer.fusionFields(this) });
  }

  // Events from the server

  onOpened(event) {
    this.series = event.series;
    const resume = this.resumeView;
    this.resumeView = null;
    // Resuming a session's view: the state of the move (not this one) is the one to publish.
    if (resume) { this.state = event.state; this.moveTo(resume); return; }
    this.onState(event.state);
    if (this.mirrorView) this.mirror(this.mirrorView);  // the session's view arrived first
  }

  onState(state) {
    // Following a session: the local view tracks the presenter's (for slice labels), but what is
    // drawn, and where the overlays go, is the presenter's geometry.
    this.state = this.mirrorView ? { ...state, ...mirroredFields(this.mirrorView) } : state;
    this.errorBox.textContent = "";
    this.updateInfo();
    this.viewer.onViewportState(this);
  }

  onError(event) { this.errorBox.textContent = event.message; }

  async onFrame(header, image) {
    const arrival = ++this.arrivals;
    const bitmap = await createImageBitmap(image);
    if (arrival < this.drawnArrival) { bitmap.close(); return; } // a newer frame was drawn first
    this.drawnArrival = arrival;
    this.lastFrame = header;
    this.element.dataset.version = header.version;
    this.draw(bitmap, header, this.state || header);
  }

  // A frame of this viewer's own view (/ws). Following a session, the session's frames are shown
  // instead, once one has come (the local view tracks the session's, so it stands in until then).
  onLocalFrame(header, image) {
    if (!this.viewer.shared?.mirrors(this.id) || !this.sessionArrival) this.onFrame(header, image);
  }

  // A frame of the shared session's view of this viewport (numbered by the session, not by /ws).
  async onSessionFrame(header, image) {
    const arrival = ++this.arrivals;
    const bitmap = await createImageBitmap(image);
    if (arrival < this.sessionArrival) { bitmap.close(); return; }
    this.sessionArrival = arrival;
    this.lastFrame = { ...header, version: this.state?.version ?? 0, timings: { render_ms: "-" } };
    this.element.dataset.sessionSequence = header.sequence;
    this.draw(bitmap, header, header);
  }

  draw(bitmap, header, { width, height }) {
    if (this.canvas.width !== width || this.canvas.height !== height) {
      this.canvas.width = width; this.canvas.height = height;
    }
    const ctx = this.canvas.getContext("2d");
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(bitmap, 0, 0, width, height);
    bitmap.close();
    for (const side of ["top", "bottom", "left", "right"]) this.labels[side].textContent = header.labels[side] || "";
    this.frameWindow = header.window || null;
    this.element.dataset.rung = header.rung;
    this.updateInfo();
    this.drawCrosshair();
  }

  // Show the session's view `view` (a ViewportState): its frames come from the session; the local
  // view is moved along so that slice numbers and positions read the same as the presenter's.
  mirror(view) {
    this.mirrorView = view;
    if (!this.state) return;
    if (this.moveTo(view)) this.state = { ...this.state, ...mirroredFields(view) };
  }

  // Take the session's view `view` as this viewer's own, to drive on from there (a presenter back
  // after a reload); before this viewport opened, once it has.
  adopt(view) {
    if (this.state) this.moveTo(view);
    else this.resumeView = view;
  }

  // Move the local view to a session's view; false when that means opening another series.
  moveTo(view) {
    if (view.series_uid !== this.seriesUid) {
      this.open(view.series_uid, { mode: view.mode, center: viewGeometry(view).center });
      return false;
    }
    const changes = {};
    if (view.mode !== this.mode) {
      this.mode = view.mode;
      this.modeMenu.value = view.mode;
      this.presetMenu.hidden = view.mode !== "vr";
      this.slabMenu.hidden = view.mode === "vr";
      changes.mode = view.mode;
    }
    changes.center = viewGeometry(view).center;
    if (view.window_width > 0) changes.window = { center: view.window_center, width: view.window_width };
    else if (view.preset) changes.preset = view.preset;
    Object.assign(changes, { invert: view.invert, slab_mm: view.slab_mm });
    this.send(changes);
    return true;
  }

  // Back to this viewer's own frames (detached, presenting, or the session is over).
  unmirror() {
    if (!this.mirrorView) return;
    this.mirrorView = null;
    this.sessionArrival = 0;
    if (this.state) this.viewer.socket.send({ type: "lossless", viewport: this.id });
  }

  // A quiet dot while a better rung (or a newer view) is on its way.
  updateInfo() {
    const s = this.state;
    if (!s) return;
    const f = this.lastFrame;
    const pending = !f || f.version < s.version || f.rung !== "lossless";
    this.rung.classList.toggle("pending", pending);
    this.rung.title = f ? `${f.rung} (${f.timings.render_ms} ms render)` : "waiting";
    const label = (MODES.find(([m]) => m === s.mode) || [])[1] || s.mode;
    const where = s.mode === "vr" ? "" : ` · Slice ${s.slice + 1}/${s.slices} · ${s.position_mm.toFixed(1)} mm`;
    this.infoLeft.textContent = `${label}${where}`;
    const [wc, ww] = this.window();
    const zoom = f ? ` · ${(1 / s.pixel_mm).toFixed(2)} px/mm` : "";
    const wl = this.series?.modality === "PT" ? suv : Math.round;
    this.infoRight.textContent = s.mode === "vr" ? (s.preset || "default") : `W ${wl(ww)} L ${wl(wc)}${zoom}`;
  }

  window() {
    const s = this.state;
    if (s && s.window_width > 0) return [s.window_center, s.window_width];
    // The server resolves presets and "auto" (MR, PET in Bq/ml): its frames say which window.
    if (this.frameWindow) return this.frameWindow;
    const name = (s && s.preset) || DEFAULT_WINDOW[this.series?.modality] || "soft-tissue";
    return WINDOWS[name] || [40, 400];
  }

  // Geometry: screen <-> patient space, from the state the server echoes.

  toWorld(clientX, clientY) {
    const s = this.state, rect = this.element.getBoundingClientRect();
    const x = ((clientX - rect.left) / rect.width - 0.5) * s.width * s.pixel_mm;
    const y = ((clientY - rect.top) / rect.height - 0.5) * s.height * s.pixel_mm;
    return add(add(s.center, s.right, x), s.down, y);
  }

  toScreen(point) {
    const s = this.state;
    const d = sub(point, s.center);
    return [s.width / 2 + dot(d, s.right) / s.pixel_mm, s.height / 2 + dot(d, s.down) / s.pixel_mm];
  }

  normal() { return cross(this.state.right, this.state.down); }

  // Move this MPR's plane (along its normal only) through a point.
  moveThrough(point) {
    if (!this.state || !this.isMpr) return;
    const n = this.normal();
    const center = add(this.state.center, n, dot(sub(point, this.state.center), n));
    this.send({ center });
  }

  drawCrosshair() {
    const s = this.state, p = this.viewer.crosshair;
    const o = this.overlay;
    if (o.width !== this.canvas.width || o.height !== this.canvas.height) {
      o.width = this.canvas.width; o.height = this.canvas.height;
    }
    const ctx = o.getContext("2d");
    ctx.clearRect(0, 0, o.width, o.height);
    if (!s || !this.isMpr) return;
    if (p && this.viewer.linked(this)) {
      const [x, y] = this.toScreen(p);
      ctx.strokeStyle = "rgba(74, 163, 255, 0.7)";
      ctx.lineWidth = 1;
      ctx.setLineDash([6, 4]);
      ctx.beginPath();
      ctx.moveTo(0, y); ctx.lineTo(o.width, y);
      ctx.moveTo(x, 0); ctx.lineTo(x, o.height);
      ctx.stroke();
      ctx.setLineDash([]);
    }
    this.drawShared(ctx);
  }

  // A shared session's annotations and the other participants' pointers.
  drawShared(ctx) {
    const shared = this.viewer.shared;
    if (!shared) return;
    const pointers = shared.pointersOn(this.id).map((p) => ({ ...p, name: shared.displayName(p.participant_id, p.name) }));
    const annotations = shared.annotationsOn(this.id).filter((a) => onPlane(a, this.state));
    // Also in the DOM, for assistive technology and tests: who points here, what is drawn and measured.
    this.element.dataset.pointers = pointers.map((p) => p.name).join(",");
    this.element.dataset.measurements = annotations.filter((a) => a.kind === "line")
      .map((a) => a.measurement?.length_mm?.toFixed(1) ?? "").join(",");
    this.element.dataset.annotations = JSON.stringify(annotations.map((a) => ({ id: a.id, kind: a.kind, label: annotationLabel(a) })));
    ctx.font = "12px system-ui, sans-serif";
    ctx.lineWidth = 2;
    ctx.strokeStyle = ctx.fillStyle = "#ffd84a";
    for (const a of annotations) {
      const at = DRAW[a.kind].call(this, ctx, a);
      const label = annotationLabel(a);
      if (label) outlined(ctx, label, at[0] + 6, at[1] - 6);
    }
    if (this.draft) {
      const [x, y] = this.toScreen(this.draft);
      ctx.strokeRect(x - 4, y - 4, 8, 8);  // the first click of a two-click tool
    }
    for (const ptr of pointers) {
      const [x, y] = this.toScreen(ptr.point);
      ctx.fillStyle = "#ff4a6e";
      ctx.beginPath(); ctx.arc(x, y, 5, 0, 2 * Math.PI); ctx.fill();
      ctx.fillStyle = "#fff";
      ctx.fillText(ptr.name, x + 8, y + 4);
    }
  }

  // Input

  onResize() {
    if (!this.state) return;
    const size = this.requestSize();
    if (size[0] !== this.state.width || size[1] !== this.state.height) this.send({ size });
  }

  // Following a session, this viewport shows the presenter's view: local gestures would be undone.
  get locked() { return !!this.viewer.shared?.mirrors(this.id); }

  onWheel(e) {
    e.preventDefault();
    if (this.locked) return;
    this.viewer.select(this);
    this.queue("scroll", Math.sign(e.deltaY));
  }

  onPointerDown(e) {
    if (this.viewer.tool && this.isMpr && this.state && e.button === 0) {
      this.toolClick(this.toWorld(e.clientX, e.clientY));
      e.preventDefault();
      return;
    }
    if (this.locked) return;
    this.viewer.select(this);
    this.element.setPointerCapture(e.pointerId);
    this.pointers.set(e.pointerId, { x: e.clientX, y: e.clientY, x0: e.clientX, y0: e.clientY });
    if (this.pointers.size === 1) {
      this.action = e.button === 2 ? "zoom"
        : e.button === 1 || e.shiftKey ? "pan"
        : this.is3d ? "rotate" : "window";
    } else {
      this.action = "pinch";
    }
    e.preventDefault();
  }

  onPointerMove(e) {
    if (this.viewer.pointerActive && this.isMpr && this.state) this.viewer.movePointer(this, this.toWorld(e.clientX, e.clientY));
    const p = this.pointers.get(e.pointerId);
    if (!p || !this.state) return;
    const dx = e.clientX - p.x, dy = e.clientY - p.y;
    if (this.action === "pinch" && this.pointers.size === 2) {
      const [a, b] = [...this.pointers.values()];
      const before = Math.hypot(a.x - b.x, a.y - b.y);
      p.x = e.clientX; p.y = e.clientY;
      const after = Math.hypot(a.x - b.x, a.y - b.y);
      if (before > 0) this.queue("zoom", after / before);
      this.queue("pan", [dx / 2, dy / 2]);
      return;
    }
    p.x = e.clientX; p.y = e.clientY;
    if (this.action === "zoom") this.queue("zoom", Math.exp(-dy * 0.01));
    else if (this.action === "pan") this.queue("pan", [dx, dy]);
    else if (this.action === "rotate") this.queue("rotate", [dx * 0.5, dy * 0.5]);
    else if (this.action === "window") this.queue("window", [dx, dy]);
  }

  onPointerUp(e) {
    const p = this.pointers.get(e.pointerId);
    this.pointers.delete(e.pointerId);
    if (!p || !this.state) return;
    const moved = Math.hypot(e.clientX - p.x0, e.clientY - p.y0);
    if (this.action === "window" && moved < CLICK_PX && this.isMpr && e.button === 0) {
      this.viewer.setCrosshair(this.toWorld(e.clientX, e.clientY), this);
    }
    if (this.pointers.size === 0) this.action = null;
  }

  // The annotation tools take two clicks: the first is kept as a draft, the second sends the
  // annotation to the session, which measures it on the volume.
  toolClick(point) {
    if (!this.draft) this.draft = point;
    else {
      if (Math.hypot(...sub(point, this.draft)) > 0) this.viewer.shared?.annotate(this.viewer.tool, this, this.draft, point);
      this.draft = null;
    }
    this.drawCrosshair();
  }

  // Gestures add up until the next animation frame, then go out as one message.
  queue(kind, value) {
    const q = this.pending;
    if (kind === "scroll") q.scroll = (q.scroll || 0) + value;
    else if (kind === "zoom") q.zoom = (q.zoom || 1) * value;
    else {
      const [dx, dy] = value, old = q[kind] || [0, 0];
      q[kind] = [old[0] + dx, old[1] + dy];
    }
    if (!this.frameRequested) {
      this.frameRequested = true;
      requestAnimationFrame(() => this.flush());
    }
  }

  flush() {
    this.frameRequested = false;
    const q = this.pending, s = this.state;
    this.pending = {};
    if (!s) return;
    const ratio = s.width / Math.max(1, this.element.clientWidth);
    const changes = {};
    if (q.scroll) changes.scroll = q.scroll;
    if (q.zoom && Math.abs(q.zoom - 1) > 1e-3) changes.zoom = Math.min(20, Math.max(0.06, q.zoom));
    if (q.pan) changes.pan = { dx: q.pan[0] * ratio, dy: q.pan[1] * ratio };
    if (q.rotate) changes.rotate = { dx: q.rotate[0], dy: q.rotate[1] };
    if (q.window) {
      const [wc, ww] = this.window(), k = Math.max(ww, 1) / 300;
      const width = Math.max(1e-3, ww + q.window[0] * k);
      const center = wc - q.window[1] * k;
      changes.window = { center, width };
      // Keep dragging from where this drag is, before the server's echo arrives.
      this.state = { ...s, window_center: center, window_width: width };
    }
    if (Object.keys(changes).length) this.send(changes);
  }
}

// What a session's view sets in the local state: what is drawn and how screen maps to patient space.
function mirroredFields(view) {
  return { ...viewGeometry(view), mode: view.mode, width: view.width, height: view.height, preset: view.preset,
    window_center: view.window_center, window_width: view.window_width, invert: view.invert, slab_mm: view.slab_mm };
}

// Window values read as whole HU; SUV windows are a few units wide, so they keep a decimal.
function suv(v) { return Number(v.toFixed(1)); }

// Text readable on any image: dark outline, light fill.
function outlined(ctx, text, x, y) {
  ctx.save();
  ctx.lineWidth = 3;
  ctx.strokeStyle = "rgba(0, 0, 0, 0.8)";
  ctx.strokeText(text, x, y);
  ctx.fillStyle = "#ffd84a";
  ctx.fillText(text, x, y);
  ctx.restore();
}

// Drawing each kind of annotation on a viewport (`this`); each returns where its label goes.
const DRAW = {
  line(ctx, a) {
    const [x0, y0] = this.toScreen(a.start), [x1, y1] = this.toScreen(a.end);
    ctx.beginPath(); ctx.moveTo(x0, y0); ctx.lineTo(x1, y1); ctx.stroke();
    for (const [x, y] of [[x0, y0], [x1, y1]]) ctx.fillRect(x - 2, y - 2, 4, 4);
    return [x1, y1];
  },
  ellipse(ctx, a) {
    ctx.beginPath();
    let right = [-Infinity, 0];
    for (let i = 0; i <= 64; i++) {
      const t = (i / 64) * 2 * Math.PI;
      const [x, y] = this.toScreen(add(add(a.center, a.axis_a, Math.cos(t)), a.axis_b, Math.sin(t)));
      if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
      if (x > right[0]) right = [x, y];
    }
    ctx.stroke();
    return right;
  },
  arrow(ctx, a) {
    const [x0, y0] = this.toScreen(a.tail), [x1, y1] = this.toScreen(a.tip);
    const angle = Math.atan2(y1 - y0, x1 - x0), head = 10;
    ctx.beginPath(); ctx.moveTo(x0, y0); ctx.lineTo(x1, y1); ctx.stroke();
    ctx.beginPath();
    ctx.moveTo(x1, y1);
    ctx.lineTo(x1 - head * Math.cos(angle - 0.4), y1 - head * Math.sin(angle - 0.4));
    ctx.lineTo(x1 - head * Math.cos(angle + 0.4), y1 - head * Math.sin(angle + 0.4));
    ctx.closePath(); ctx.fill();
    return [x0, y0];
  },
};
