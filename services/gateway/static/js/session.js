// Shared sessions (docs/protocol.md, "Shared sessions"): the /ws/session client, the session's state
// kept up to date from its events, and the panel with participants and control buttons.
// The viewer asks `mirrors(viewportId)` before drawing its own frames and `presenting` before
// publishing its view changes.
import { session as auth } from "./api.js";
import { decodeFrame } from "./socket.js";

// The grids of the viewer's layouts, as the session's Layout model describes them.
export const GRIDS = { "1x1": [1, 1], "1x2": [1, 2], "2x2": [2, 2] };

const VIEW_EVENTS = new Set(["session.viewport", "session.layout", "session.crosshair", "session.pointer", "session.annotation", "session.annotation_deleted"]);
const cross = (a, b) => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];

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

// #session=ID&invite=TOKEN -> {session, invite, study}, or null. The study is read (not verified:
// the gateway does that) from the invitation's claims, to open the viewer on it.
export function parseInvite(hash) {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  const session = params.get("session"), invite = params.get("invite");
  if (!session || !invite) return null;
  try {
    const payload = invite.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return { session, invite, study: JSON.parse(atob(payload)).study };
  } catch {
    return { session, invite, study: null };
  }
}

// Participants are named by the gateway's principal ("user:<username>"); people read the username.
const displayName = (p) => p.name.replace(/^user:/, "");

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

export class SharedSession {
  // Either `study` (start a session, the caller owns it) or `sessionId` + `invite` (join one).
  constructor(viewer, { study, sessionId, invite }) {
    this.viewer = viewer;
    this.state = null;
    this.ended = false;
    this.error = "";
    this.inviteToken = "";
    this.retry = 500;
    this.panel = el("aside", "session-panel");
    this.connect(sessionId ? { session: sessionId, invite } : { study });
    this.render();
  }

  connect(query) {
    const params = new URLSearchParams(query);
    if (auth.token) params.set("token", auth.token);
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    this.ws = new WebSocket(`${scheme}://${location.host}/ws/session?${params}`);
    this.ws.binaryType = "arraybuffer";
    this.ws.onmessage = (msg) => {
      if (typeof msg.data === "string") this.onMessage(JSON.parse(msg.data));
      else {
        const { header, image } = decodeFrame(msg.data);
        if (this.mirrors(header.viewport)) this.viewer.viewports.get(header.viewport)?.onSessionFrame(header, image);
      }
    };
    this.ws.onclose = (ev) => {
      if (this.closing || this.ended) return;
      // Refused (policy, sign-in) or never joined: over. Otherwise a participant rejoins by the
      // session's id, with backoff, and gets the whole state again.
      if (ev.code === 1008 || ev.code === 4401 || !this.state) {
        this.ended = true;
        this.error ||= ev.reason || "the session connection closed";
        this.viewer.onSessionChanged();
      } else {
        this.error = "reconnecting…";
        setTimeout(() => { if (!this.closing) this.connect({ session: this.state.session_id }); }, this.retry);
        this.retry = Math.min(this.retry * 2, 8000);
      }
      this.render();
    };
  }

  send(type, fields = {}) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: `session.${type}`, ...fields }));
  }

  // Who am I: user participants are named by their (unique) user name.
  get me() {
    const name = auth.user?.name;
    return this.state?.participants.find((p) => p.kind === "user" && p.name === name) || null;
  }

  get presenting() { return !!this.state && !this.ended && this.me?.id === this.state.presenter; }
  get following() { return !!this.state && !this.ended && !this.presenting && this.me?.following !== false; }

  // Whether viewport `id` shows the session's frames rather than the viewer's own.
  mirrors(id) { return this.following && !!this.state.viewports[id]; }

  onMessage(m) {
    const type = m.type.slice("session.".length);
    if (type === "state") {
      this.state = m.state;
      this.retry = 500;
      if (this.error === "reconnecting…") this.error = "";
      this.seq = m.seq;
      this.afterChange(true);
      return;
    }
    if (type === "invitation") { this.inviteToken = m.token; this.render(); return; }
    if (type === "error") { this.error = m.message; console.warn(`session: ${m.code} ${m.field || ""}: ${m.message}`); this.render(); return; }
    if (!this.state) return;
    this.seq = m.seq;
    this.apply(type, m);
    this.afterChange(["presenter", "detach", "follow", "grant", "joined", "left"].includes(type), m);
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
      case "left": {
        const p = person(m.participant_id);
        if (p) p.connections = m.connections;
        if (!m.connections) { s.requests = s.requests.filter((r) => r !== m.participant_id); delete s.pointers[m.participant_id]; }
        break;
      }
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
      default: break;  // invited, presence, replica_gone: nothing shown changes
    }
  }

  // Bring the viewer in line after the state changed (`roles`: who presents or follows may have).
  afterChange(roles, m = {}) {
    const v = this.viewer, s = this.state, presenting = this.presenting;
    // Taking the wheel (or starting the session): publish the whole view once.
    if (presenting && !this.wasPresenting) this.publishAll();
    this.wasPresenting = presenting;
    if (this.following) {
      if (roles || m.type === "session.layout") v.followLayout(s.layout);
      if (roles) for (const [id, view] of Object.entries(s.viewports)) v.viewports.get(id)?.mirror(view);
      else if (m.type === "session.viewport") v.viewports.get(m.viewport_id)?.mirror(m.state);
      if (roles || m.type === "session.crosshair") v.showCrosshair(s.crosshair);
    }
    if (roles) v.onSessionChanged();
    v.drawOverlays();
    // The panel shows people and control, not views: redrawing it on every view change would
    // replace its buttons under the pointer.
    if (!VIEW_EVENTS.has(m.type)) this.render();
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

  annotateLine(vp, start, end) {
    this.send("annotate", { annotation: { kind: "line", viewport_id: vp.id, series_uid: vp.state.series_uid, start, end } });
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
    const me = this.me;
    const list = el("ul", "participants");
    for (const person of s.participants) {
      const li = el("li", "", displayName(person));
      li.dataset.participant = person.id;
      const tags = [];
      if (person.id === s.presenter) tags.push("presenting");
      if (person.id === s.owner) tags.push("owner");
      if (person.following === false) tags.push("detached");
      if (s.requests.includes(person.id)) tags.push("asks for control");
      if (!person.connections) tags.push("away");
      if (person.id === me?.id) tags.push("you");
      if (tags.length) li.append(el("span", "muted", ` (${tags.join(", ")})`));
      li.classList.toggle("presenter", person.id === s.presenter);
      list.append(li);
    }
    p.append(list);
    if (this.ended) return;
    const actions = el("div", "session-actions");
    const add = (text, onClick) => {
      const b = el("button", "", text);
      b.addEventListener("click", onClick);
      actions.append(b);
    };
    const isManager = me && (me.id === s.owner || me.admin);
    if (this.presenting || isManager) add("Invite…", () => this.send("invite", { kind: "user" }));
    if (this.presenting) {
      for (const pid of s.requests) {
        const who = s.participants.find((x) => x.id === pid);
        add(`Hand over to ${who ? displayName(who) : pid}`, () => this.send("hand_over", { to: pid }));
      }
    } else if (me) {
      if (me.may_control && !s.requests.includes(me.id)) add("Request control", () => this.send("request_control"));
      if (isManager) add("Take control", () => this.send("take_control"));
      if (me.following === false) add("Follow", () => this.send("follow"));
      else add("Detach", () => this.send("detach"));
    }
    if (isManager) add("End session", () => { if (confirm("End the session for everyone?")) this.send("end"); });
    add("Measure", () => this.viewer.toggleMeasure());
    actions.lastChild.classList.toggle("active", this.viewer.tool === "line");
    actions.lastChild.title = "line measurement: two clicks on an MPR view; the server measures it";
    const pointerToggle = el("label", "muted");
    const check = el("input");
    check.type = "checkbox";
    check.checked = this.viewer.pointerOn;
    check.className = "pointer-toggle";
    check.addEventListener("change", () => this.viewer.setPointer(check.checked));
    pointerToggle.append(check, " pointer (hold P)");
    actions.append(pointerToggle);
    p.append(actions);
    if (this.inviteToken) {
      const link = inviteLink(s.session_id, this.inviteToken);
      const box = el("div", "invitation");
      box.append(el("span", "muted", "Invitation link (signed-in users):"));
      const code = el("code", "invite-link", link);
      const copy = el("button", "", "Copy");
      copy.addEventListener("click", () => navigator.clipboard?.writeText(link));
      box.append(code, copy);
      p.append(box);
    }
  }

  close() {
    this.closing = true;
    this.ws.close(1000);
    this.panel.remove();
  }
}
