// Shared sessions (docs/protocol.md, "Shared sessions"): the /ws/session client, the session's state
// kept up to date from its events, and the panel with participants and control buttons.
// The viewer asks `mirrors(viewportId)` before drawing its own frames and `presenting` before
// publishing its view changes. A joined session lives in the URL (#session=<id>&study=<uid>), so
// a reload rejoins it; a guest's access token from the gateway stands in for the tab's own token (a
// share link's, or none) while the session lasts (api.js `session.adopt`).
import { session as auth } from "./api.js";
import { decodeFrame } from "./socket.js";

// The grids of the viewer's layouts, as the session's Layout model describes them.
export const GRIDS = { "1x1": [1, 1], "1x2": [1, 2], "2x2": [2, 2] };

const VIEW_EVENTS = new Set(["session.viewport", "session.layout", "session.crosshair", "session.pointer"]);
// Events after which someone else may present, or this viewer follow or stop following (all stop
// once it has ended, and the owner may start another).
const ROLE_EVENTS = new Set(["presenter", "detach", "follow", "grant", "joined", "left", "replica_gone", "presence", "ended"]);
const cross = (a, b) => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
const scaled = (a, k) => a.map((c) => c * k);

// A gateway viewport state (the /ws `state` event) as the session's ViewportState: the same mapping
// as the gateway's ViewState.render_fields.
export function renderFields(s) {
  const fields = {
    series_uid: s.series_uid, mode: s.mode, width: s.width, height: s.height, preset: s.preset || "",
    window_center: s.window_center, window_width: s.window_width, invert: !!s.invert,
    slab_mm: s.slab_mm, slab_mode: s.slab_mode,
  };
  if (s.mode === "mpr") {
    fields.plane = { center: s.center, right: s.right, down: s.down, pixel_mm: s.pixel_mm };
  } else {
    fields.camera = { target: s.center, direction: cross(s.right, s.down), up: s.down.map((c) => -c),
      fov_mm: s.pixel_mm * s.height };
  }
  if (s.fusion_series_uid) {
    fields.fusion = { series_uid: s.fusion_series_uid, opacity: s.fusion_opacity, colormap: s.fusion_colormap || "" };
  }
  return fields;
}

// The inverse, for drawing: the geometry of a session viewport in the gateway's terms.
export function viewGeometry(v) {
  if (v.plane) return { center: v.plane.center, right: v.plane.right, down: v.plane.down, pixel_mm: v.plane.pixel_mm };
  const c = v.camera, down = c.up.map((x) => -x);
  return { center: c.target, right: cross(down, c.direction), down, pixel_mm: c.fov_mm / v.height };
}

// The link that joins a session: the viewer's address with the session in the fragment.
export function inviteLink(sessionId, token) {
  return `${location.origin}${location.pathname}#session=${encodeURIComponent(sessionId)}&invite=${encodeURIComponent(token)}`;
}

// #session=ID&invite=TOKEN (an invitation) or #session=ID&study=UID (rejoining) -> {session,
// invite, study, kind}, or null. The study and kind ("user" or "guest", who needs a PIN) are read
// (not verified: the gateway does that) from the invitation's claims, to open the viewer on it.
export function parseInvite(hash) {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  const session = params.get("session"), invite = params.get("invite");
  if (!session) return null;
  if (!invite) return { session, invite: null, study: params.get("study"), kind: null };
  try {
    const payload = invite.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(payload));
    return { session, invite, study: claims.study, kind: claims.kind };
  } catch {
    return { session, invite, study: null, kind: null };
  }
}

// The /ws/session socket; `query` without its empty values.
function openSocket(query) {
  const params = new URLSearchParams(Object.entries(query).filter(([, v]) => v));
  if (auth.token) params.set("token", auth.token);
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws/session?${params}`);
  ws.binaryType = "arraybuffer";
  return ws;
}

// Join with an invitation before the viewer exists (a guest has no access to the study until the
// gateway admits them). Resolves with {ws, first, early}: the open socket, its session.state and
// what came after it; rejects with the gateway's reason (a wrong PIN, an expired invitation...).
export function admit(query) {
  return new Promise((resolve, reject) => {
    const ws = openSocket(query), early = [];
    let first = null, refusal = "";
    ws.onmessage = (msg) => {
      if (first) { early.push(msg); return; }
      if (typeof msg.data !== "string") return;
      const m = JSON.parse(msg.data);
      if (m.type === "session.state") { first = m; resolve({ ws, first, early }); }
      else if (m.type === "session.error") refusal = m.message;
    };
    ws.onclose = (ev) => { if (!first) reject(new Error(refusal || ev.reason || "the session could not be joined")); };
  });
}

// What an annotation shows: a line's length, an ellipse's statistics, an arrow's text.
export function annotationLabel(a) {
  const m = a.measurement;
  if (a.kind === "arrow") return a.text || "arrow";
  if (!m) return "";
  if (a.kind === "line") return `${m.length_mm.toFixed(1)} mm`;
  const units = m.units ? ` ${m.units}` : "";
  return `mean ${m.mean.toFixed(1)} ± ${m.std.toFixed(1)}${units} (min ${m.min.toFixed(1)}, max ${m.max.toFixed(1)})`;
}

// Whether an annotation lies in the plane viewport state `s` shows: on the series it was drawn on
// (lines and ellipses say which; arrows do not), every point it was drawn with within half a scroll
// step (or half the slab) of the plane, so a measurement is never shown over a slice, or a series,
// it was not made on.
export function onPlane(a, s) {
  if (!s?.right || !s?.down) return false;
  if (a.series_uid && a.series_uid !== s.series_uid) return false;
  const points = a.kind === "line" ? [a.start, a.end] : a.kind === "ellipse" ? [a.center] : [a.tip, a.tail];
  const n = cross(s.right, s.down), tolerance = Math.max(s.slice_mm || 1, s.slab_mm || 0) / 2 + 1e-3;
  return points.every((p) => Math.abs(dot(p.map((c, i) => c - s.center[i]), n)) <= tolerance);
}

// The annotation a two-click tool draws on an MPR viewport, from its first and second click (world
// points on the viewport's plane): a line end to end, an ellipse corner to corner, an arrow tip to tail.
export function shapeOf(kind, vp, first, second, text = "") {
  const base = { kind, viewport_id: vp.id };
  if (kind === "arrow") return { ...base, tip: first, tail: second, text };
  const series = { series_uid: vp.state.series_uid };
  if (kind === "line") return { ...base, ...series, start: first, end: second };
  const d = second.map((c, i) => c - first[i]), { right, down } = vp.state;
  const [w, h] = [dot(d, right) / 2, dot(d, down) / 2];
  if (Math.abs(w) < 1e-3 || Math.abs(h) < 1e-3) return null;  // a flat box holds no ellipse
  return { ...base, ...series, center: first.map((c, i) => c + d[i] / 2), axis_a: scaled(right, w), axis_b: scaled(down, h) };
}

const KIND_NAMES = { line: "Line", ellipse: "Ellipse", arrow: "Arrow" };
// The annotation tools: two clicks on an MPR view each.
const TOOLS = [
  ["line", "Measure", "line measurement: two clicks on an MPR view; the server measures it"],
  ["ellipse", "Ellipse", "ellipse ROI: two clicks, corner to corner; the server gives mean, std, min and max"],
  ["arrow", "Arrow", "text arrow: type its text, then click the tip and the tail"],
];
// A guest invitation's PIN: six digits, uniform (draws past the last whole run of 900000 are drawn
// again, so that low PINs are not likelier).
function randomPin() {
  const span = 900000, limit = 2 ** 32 - (2 ** 32 % span), draw = new Uint32Array(1);
  do crypto.getRandomValues(draw); while (draw[0] >= limit);
  return String(100000 + (draw[0] % span));
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

export class SharedSession {
  // Either `study` (start a session, the caller owns it), `sessionId` + `invite` (join one with an
  // invitation), `sessionId` alone (rejoin one), or `admitted` (a socket admit() already opened).
  constructor(viewer, { study, sessionId, invite, admitted }) {
    this.viewer = viewer;
    this.state = null;
    this.you = null;
    this.ended = false;
    this.error = "";
    this.invitation = null;  // {kind, token, pin, mayControl}: the last invitation made here
    this.asked = null;       // the invitation asked for, until the gateway answers
    this.guestForm = null;   // {pin, mayControl} while the guest invitation form is open
    this.arrowText = "";
    this.retry = 500;
    this.panel = el("aside", "session-panel");
    this.sessionId = sessionId || null;
    if (admitted) {
      this.adopt(admitted.ws);
      this.onMessage(admitted.first);
      for (const msg of admitted.early) this.ws.onmessage(msg);
      if (admitted.ws.readyState === WebSocket.CLOSED) this.onClose({ code: 1006, reason: "" });
    } else {
      this.connect(sessionId ? { session: sessionId, invite } : { study });
    }
    this.render();
  }

  connect(query) { this.adopt(openSocket(query)); }

  adopt(ws) {
    this.ws = ws;
    ws.onmessage = (msg) => {
      if (typeof msg.data === "string") this.onMessage(JSON.parse(msg.data));
      else {
        const { header, image } = decodeFrame(msg.data);
        if (this.mirrors(header.viewport)) this.viewer.viewports.get(header.viewport)?.onSessionFrame(header, image);
      }
    };
    ws.onclose = (ev) => this.onClose(ev);
  }

  onClose(ev) {
    if (this.closing || this.ended) return;
    // Refused (policy, sign-in) or never joined: over. Otherwise a participant rejoins by the
    // session's id, with backoff, and gets the whole state again.
    if (ev.code === 1008 || ev.code === 4401 || !this.state) {
      this.ended = true;
      this.error ||= ev.reason || "the session connection closed";
      this.finish();
      this.viewer.onSessionChanged();
    } else {
      this.error = "reconnecting…";
      setTimeout(() => { if (!this.closing) this.connect({ session: this.state.session_id }); }, this.retry);
      this.retry = Math.min(this.retry * 2, 8000);
    }
    this.render();
  }

  send(type, fields = {}) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: `session.${type}`, ...fields }));
  }

  // Which participant this connection is, as the gateway says in every session.state.
  get me() { return this.state?.participants.find((p) => p.id === this.you) || null; }

  get manager() { const me = this.me; return !!me && (me.id === this.state.owner || me.admin); }

  mayDelete(a) { return !!this.me && (a.author === this.me.id || this.presenting || this.manager); }

  // How participant `id` is named wherever this viewer shows them: a guest's own choice of name
  // is marked as a guest's, so that it cannot pass for a user's. `name`: what a message carried,
  // for a participant not (yet) in the state.
  displayName(id, name = id) {
    const p = this.state?.participants.find((x) => x.id === id);
    return p?.kind === "guest" ? `${p.name} (guest)` : p ? p.name : name;
  }

  get presenting() { return !!this.state && !this.ended && this.me?.id === this.state.presenter; }
  get following() { return !!this.state && !this.ended && !this.presenting && this.me?.following !== false; }

  // Whether viewport `id` shows the session's frames rather than the viewer's own.
  mirrors(id) { return this.following && !!this.state.viewports[id]; }

  onMessage(m) {
    const type = m.type.slice("session.".length);
    if (type === "state") {
      const first = !this.state;
      this.state = m.state;
      this.you = m.you;
      if (m.access) auth.adopt(m.access.token, m.access.user);
      this.retry = 500;
      if (this.error === "reconnecting…") this.error = "";
      this.seq = m.seq;
      this.remember();
      this.afterChange(true, m, first);
      return;
    }
    if (type === "invitation") {
      this.invitation = { ...this.asked, token: m.token };
      if (this.asked?.kind === "guest") this.guestForm = null;
      this.asked = null;
      this.error = "";
      this.render();
      return;
    }
    if (type === "error") { this.error = m.message; console.warn(`session: ${m.code} ${m.field || ""}: ${m.message}`); this.render(); return; }
    if (!this.state) return;
    this.seq = m.seq;
    this.apply(type, m);
    this.afterChange(ROLE_EVENTS.has(type), m);
    if (this.ended) this.finish();
  }

  // The session in the URL, so that a reload comes back to it (replaceState: no navigation).
  remember() {
    const s = this.state;
    if (s.ended) return;
    history.replaceState(null, "", `#session=${encodeURIComponent(s.session_id)}&study=${encodeURIComponent(s.study_uid)}`);
  }

  // Over (ended, or refused): the URL and the tab's token are this viewer's own again.
  finish() {
    this.forget();
    this.viewer.onSessionOver();
  }

  // The URL is this viewer's own again (an invitation that failed stays, to be read).
  forget() {
    const here = parseInvite(location.hash);
    if (here && !here.invite && here.session === (this.state?.session_id ?? this.sessionId)) {
      history.replaceState(null, "", `#/view/${this.viewer.study}/${this.viewer.series.series_uid}`);
    }
  }

  apply(type, m) {
    const s = this.state;
    const person = (id) => s.participants.find((p) => p.id === id);
    if ("presenter" in m && type !== "presenter") s.presenter = m.presenter;
    switch (type) {
      case "joined": {
        const i = s.participants.findIndex((p) => p.id === m.participant.id);
        if (i >= 0) s.participants[i] = m.participant; else s.participants.push(m.participant);
        break;
      }
      case "left": this.online(m.participant_id, m.connections); break;
      // A gateway replica went away, or came back: `online` says how many connections each has now.
      case "replica_gone": case "presence":
        for (const [pid, n] of Object.entries(m.online || {})) this.online(pid, n);
        break;
      case "presenter": s.presenter = m.presenter; s.requests = s.requests.filter((r) => r !== m.presenter); break;
      case "control_requested": s.requests.push(m.by); break;
      case "detach": case "follow": { const p = person(m.participant_id); if (p) p.following = type === "follow"; break; }
      case "grant": { const p = person(m.participant_id); if (p) p.may_control = m.may_control; break; }
      case "layout": s.layout = m.layout; break;
      case "viewport": s.viewports[m.viewport_id] = m.state; break;
      case "crosshair": s.crosshair = m.point; break;
      case "pointer":
        if (m.pointer.point) s.pointers[m.pointer.participant_id] = m.pointer; else delete s.pointers[m.pointer.participant_id];
        break;
      case "annotation": s.annotations.push(m.annotation); break;
      case "annotation_deleted": s.annotations = s.annotations.filter((a) => a.id !== m.annotation_id); break;
      case "ended": s.ended = true; this.ended = true; this.error = "the session has ended"; break;
      default: break;  // invited, invite_attempt, invite_admitted: nothing shown changes
    }
  }

  // Participant `pid` now has `n` connections; gone, their pointer and control request go too.
  online(pid, n) {
    const s = this.state, p = s.participants.find((x) => x.id === pid);
    if (p) p.connections = n;
    if (!n) { s.requests = s.requests.filter((r) => r !== pid); delete s.pointers[pid]; }
  }

  // Bring the viewer in line after the state changed (`roles`: who presents or follows may have;
  // `first`: the first state of this connection).
  afterChange(roles, m = {}, first = false) {
    const v = this.viewer, s = this.state, presenting = this.presenting;
    if (presenting && !this.wasPresenting) {
      // Back in a session already under way (a reload): take up its view. Otherwise (starting
      // the session, taking the wheel) publish the whole view once.
      if (first && Object.keys(s.viewports).length) this.resume(); else this.publishAll();
    }
    this.wasPresenting = presenting;
    if (this.following) {
      if (roles || m.type === "session.layout") v.followLayout(s.layout);
      if (roles) for (const [id, view] of Object.entries(s.viewports)) v.viewports.get(id)?.mirror(view);
      else if (m.type === "session.viewport") v.viewports.get(m.viewport_id)?.mirror(m.state);
      if (roles || m.type === "session.crosshair") v.showCrosshair(s.crosshair);
    }
    if (roles) v.onSessionChanged();
    v.drawOverlays();
    // The panel shows people, control and annotations, not views: redrawing it on every view
    // change would replace its buttons under the pointer.
    if (!VIEW_EVENTS.has(m.type)) this.render();
  }

  // The session's view as this viewer's own, to drive on from where it was.
  resume() {
    const v = this.viewer, s = this.state;
    v.followLayout(s.layout);
    for (const [id, view] of Object.entries(s.viewports)) v.viewports.get(id)?.adopt(view);
    if (s.crosshair) v.showCrosshair(s.crosshair);
  }

  // The presenter's whole view: layout, every viewport, the crosshair.
  publishAll() {
    const v = this.viewer;
    this.publishLayout(v.layoutName);
    for (const vp of v.viewports.values()) if (vp.state) this.publishViewport(vp);
    if (v.crosshair) this.publishCrosshair(v.crosshair);
  }

  publishLayout(name) {
    if (!this.presenting) return;
    const [rows, columns] = GRIDS[name];
    this.send("layout", { layout: { rows, columns, viewports: [...this.viewer.viewports.keys()] } });
  }

  publishViewport(vp) {
    if (this.presenting && vp.state) this.send("viewport", { viewport_id: vp.id, state: renderFields(vp.state) });
  }

  publishCrosshair(point) {
    if (this.presenting && point) this.send("crosshair", { point });
  }

  pointer(vp, point) {
    if (this.state && !this.ended) this.send("pointer", { viewport_id: vp.id, point });
  }

  // An annotation from a two-click tool (the gateway measures it and sends it to everyone).
  annotate(kind, vp, first, second) {
    const annotation = shapeOf(kind, vp, first, second, this.arrowText.trim());
    if (annotation) this.send("annotate", { annotation });
  }

  invite(kind, { pin = null, mayControl = false } = {}) {
    this.asked = { kind, pin, mayControl };
    this.send("invite", kind === "guest" ? { kind, pin, may_control: mayControl } : { kind });
  }

  // The pointers and annotations to draw on viewport `id` (except my own pointer).
  pointersOn(id) {
    const me = this.me?.id;
    return this.state ? Object.values(this.state.pointers).filter((p) => p.viewport_id === id && p.participant_id !== me) : [];
  }

  annotationsOn(id) { return this.state ? this.state.annotations.filter((a) => a.viewport_id === id) : []; }

  render() {
    const p = this.panel;
    p.replaceChildren();
    p.append(el("h3", "", "Session"));
    if (this.error) p.append(el("div", "error", this.error));
    const s = this.state;
    if (!s) { p.append(el("div", "muted", this.ended ? "" : "connecting…")); return; }
    p.append(this.participantList());
    if (this.ended) return;
    const me = this.me;
    const actions = el("div", "session-actions");
    const add = (text, onClick, title = "") => {
      const b = el("button", "", text);
      b.title = title;
      b.addEventListener("click", onClick);
      actions.append(b);
      return b;
    };
    const inviting = this.presenting || this.manager;
    if (inviting) {
      add("Invite user", () => this.invite("user"), "a link for signed-in users");
      add("Invite guest…", () => { this.guestForm = this.guestForm ? null : { pin: randomPin(), mayControl: false }; this.render(); },
        "a link with a PIN, for someone without an account");
    }
    if (this.presenting) {
      for (const pid of s.requests) {
        add(`Hand over to ${this.displayName(pid)}`, () => this.send("hand_over", { to: pid }));
      }
    } else if (me) {
      if (me.may_control && !s.requests.includes(me.id)) add("Request control", () => this.send("request_control"));
      if (this.manager) add("Take control", () => this.send("take_control"));
      if (me.following === false) add("Follow", () => this.send("follow"));
      else add("Detach", () => this.send("detach"));
    }
    if (this.manager) add("End session", () => { if (confirm("End the session for everyone?")) this.send("end"); });
    for (const [kind, text, title] of TOOLS) {
      add(text, () => this.viewer.setTool(kind), title).classList.toggle("active", this.viewer.tool === kind);
    }
    if (this.viewer.tool === "arrow") {
      const label = el("input", "arrow-text");
      Object.assign(label, { placeholder: "arrow text", maxLength: 500, value: this.arrowText });
      label.addEventListener("input", () => { this.arrowText = label.value; });
      actions.append(label);
    }
    const pointerToggle = el("label", "muted");
    const check = el("input");
    check.type = "checkbox";
    check.checked = this.viewer.pointerOn;
    check.className = "pointer-toggle";
    check.addEventListener("change", () => this.viewer.setPointer(check.checked));
    pointerToggle.append(check, " pointer (hold P)");
    actions.append(pointerToggle);
    p.append(actions);
    if (inviting && this.guestForm) p.append(this.guestInviteForm());
    if (this.invitation?.token) p.append(this.invitationBox());
    if (s.annotations.length) p.append(this.annotationList());
  }

  participantList() {
    const s = this.state, list = el("ul", "participants");
    for (const person of s.participants) {
      const li = el("li", "", this.displayName(person.id));
      li.dataset.participant = person.id;
      const tags = [];
      if (person.id === s.presenter) tags.push("presenting");
      if (person.id === s.owner) tags.push("owner");
      if (person.following === false) tags.push("detached");
      if (s.requests.includes(person.id)) tags.push("asks for control");
      if (!person.connections) tags.push("gone");
      if (person.id === this.you) tags.push("you");
      if (tags.length) li.append(el("span", "muted", ` (${tags.join(", ")})`));
      li.classList.toggle("presenter", person.id === s.presenter);
      li.classList.toggle("gone", !person.connections);
      list.append(li);
    }
    return list;
  }

  // A guest invitation: its PIN (told to the guest apart from the link) and whether they may drive.
  guestInviteForm() {
    const f = this.guestForm, box = el("div", "guest-invite");
    const pin = el("input", "guest-pin");
    Object.assign(pin, { value: f.pin, inputMode: "numeric", pattern: "[0-9]{4,12}", title: "4 to 12 digits", size: 8 });
    pin.addEventListener("input", () => { f.pin = pin.value; });
    const control = el("label", "muted");
    const check = el("input", "guest-control");
    check.type = "checkbox";
    check.checked = f.mayControl;
    check.addEventListener("change", () => { f.mayControl = check.checked; });
    control.append(check, " may take control");
    const create = el("button", "", "Create guest link");
    // The form stays until the invitation comes (a PIN the gateway refuses is said above it).
    create.addEventListener("click", () => this.invite("guest", { pin: f.pin.trim(), mayControl: f.mayControl }));
    box.append(el("span", "muted", "PIN"), pin, control, create);
    return box;
  }

  invitationBox() {
    const i = this.invitation, link = inviteLink(this.state.session_id, i.token);
    const box = el("div", "invitation");
    const what = i.kind === "guest"
      ? `Guest link, PIN ${i.pin}${i.mayControl ? ", may take control" : ""} (tell the PIN apart from the link):`
      : "Invitation link (signed-in users):";
    box.append(el("span", "muted", what));
    const code = el("code", "invite-link", link);
    code.dataset.kind = i.kind;
    const copy = el("button", "", "Copy");
    copy.addEventListener("click", () => navigator.clipboard?.writeText(link));
    box.append(code, copy);
    return box;
  }

  annotationList() {
    const list = el("ul", "annotations");
    for (const a of this.state.annotations) {
      const li = el("li", "", `${KIND_NAMES[a.kind]} · ${annotationLabel(a)} — ${this.displayName(a.author, a.author_name)}`);
      li.dataset.annotation = a.id;
      li.dataset.kind = a.kind;
      if (this.mayDelete(a)) {
        const del = el("button", "delete-annotation", "×");
        del.title = "delete this annotation for everyone";
        del.addEventListener("click", () => this.send("delete_annotation", { annotation_id: a.id }));
        li.append(del);
      }
      list.append(li);
    }
    return list;
  }

  close() {
    this.closing = true;
    this.forget();
    this.ws.close(1000);
    this.panel.remove();
  }
}
