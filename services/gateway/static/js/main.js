// Routes (in the URL fragment): #/signin, #/studies, #/study/<uid>, #/view/<study>/<series>, #/share/<token>,
// #session=<id>&invite=<token> (join a shared session: signed-in users, or guests with the
// invitation's PIN) and #session=<id>&study=<uid> (back into a session joined before, after a reload).
import { ApiError, api, refused, session } from "./api.js";
import { admit, parseInvite } from "./session.js";
import { renderSeries, renderStudies } from "./studies.js";
import { Viewer } from "./viewer.js";

const app = document.getElementById("app");
const JOIN = "voxcast.join";  // an invitation link opened before signing in
let viewer = null;

function go(hash) { location.hash = hash; }

function showUser() {
  const user = session.user;
  document.getElementById("whoami").textContent = user ? `${user.name} (${user.role})` : "";
  document.getElementById("signout").hidden = !user;
}

document.getElementById("signout").addEventListener("click", () => { session.clear(); go("#/signin"); });

function form(title, fields, submitText, onSubmit) {
  const card = document.createElement("form");
  card.className = "card";
  const h = document.createElement("h2");
  h.textContent = title;
  card.append(h);
  const inputs = {};
  for (const [name, type, label] of fields) {
    const input = document.createElement("input");
    Object.assign(input, { name, type, placeholder: label, required: type !== "password-optional" });
    if (type === "password-optional") input.type = "password";
    input.autocomplete = type === "password" ? "current-password" : "username";
    if (type === "pin") Object.assign(input, { type: "password", inputMode: "numeric", autocomplete: "off" });
    if (name === "name") input.autocomplete = "name";
    inputs[name] = input;
    card.append(input);
  }
  const error = document.createElement("div");
  error.className = "error";
  const submit = document.createElement("button");
  submit.type = "submit";
  submit.textContent = submitText;
  card.append(submit, error);
  card.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    try {
      await onSubmit(Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, v.value])));
    } catch (err) {
      error.textContent = err.message;
    }
  });
  app.replaceChildren(card);
  Object.values(inputs)[0]?.focus();
}

function signIn() {
  form("Sign in", [["username", "text", "username"], ["password", "password", "password"]], "Sign in", async (v) => {
    const r = await api("/api/auth/login", { method: "POST", json: v });
    session.set(r.access_token, r.user);
    const pending = sessionStorage.getItem(JOIN);
    sessionStorage.removeItem(JOIN);
    go(pending || "#/studies");
  });
}

async function openShare(token) {
  const open = async (pin) => {
    const r = await api(`/api/shares/${encodeURIComponent(token)}/open`, { method: "POST", json: { pin: pin || null } });
    session.set(r.access_token, r.user);
    go(`#/study/${r.user.study_uid}`);
  };
  session.clear();
  try {
    const info = await api(`/api/shares/${encodeURIComponent(token)}/info`);
    if (info.pin_required) form("Shared study", [["pin", "password-optional", "PIN"]], "Open", (v) => open(v.pin));
    else await open(null);
  } catch (err) {
    showError(err);
  }
}

// The series a session link opens the viewer on: the session's own views then replace it where needed.
function defaultSeries(all) {
  const volumes = all.filter((s) => s.is_volume);
  return volumes.find((s) => s.modality === "CT") || volumes[0] || null;
}

async function openViewer(study, series, all, join = null) {
  viewer = new Viewer(app, {
    study, series, allSeries: all, readOnly: session.user?.role === "guest", join,
    onBack: () => go(session.user?.role === "guest" ? `#/study/${session.user.study_uid}` : "#/studies"),
    onUnauthorized: refused, onSessionOver: sessionOver,
  });
}

async function joinSession(invite, admitted = null) {
  if (!invite.study) throw new Error("this invitation link is damaged");
  const all = await api(`/api/studies/${invite.study}/series`);
  const series = defaultSeries(all);
  if (!series) throw new Error("the session's study has no volume to show");
  return openViewer(invite.study, series, all, { ...invite, admitted });
}

function showError(err) {
  app.replaceChildren(Object.assign(document.createElement("div"), { className: "card error", textContent: err.message }));
}

// Joining as a guest: a guest invitation's PIN, and a name for anyone without an account (someone
// on a share link too), checked by the gateway as it admits them; a wrong PIN is said in the form,
// which stays for another try.
function guestJoin(invite) {
  if (!invite.study) return showError(new Error("this invitation link is damaged"));
  const signedIn = session.user && session.user.role !== "guest";  // named by their account
  const fields = signedIn ? [] : [["name", "text", "your name"]];
  if (invite.kind === "guest") fields.push(["pin", "pin", "PIN"]);
  form("Join a shared session", fields, "Join", async (v) => {
    const admitted = await admit({ session: invite.session, invite: invite.invite, pin: v.pin, name: v.name });
    const { access } = admitted.first;
    if (access) session.adopt(access.token, access.user);  // a guest sees the study with this token
    showUser();
    try {
      await joinSession(invite, admitted);
    } catch (err) {
      admitted.ws.close(1000);
      throw err;
    }
  });
}

// A session's guest token ends with its session: someone who came by a share link goes on with the
// link's token (the viewer stays on the study); anyone else keeps it until it is refused.
function sessionOver() {
  if (!session.fromSession || !session.before) return;
  session.restore();
  showUser();
}

async function route() {
  viewer?.destroy();
  viewer = null;
  const invite = parseInvite(location.hash);
  const guestInvite = invite?.invite && invite.kind === "guest";
  // A new invitation: a token an earlier session lent (maybe to another study, maybe expired) gives
  // way to the tab's own (a share link's, or none), with which the invitation is taken.
  if (invite?.invite && session.fromSession) session.restore();
  // A guest invitation needs no account; any other session link, a signed-in user.
  if (guestInvite && !session.token && !session.user) return guestJoin(invite);
  if (invite && !session.token && !session.user) sessionStorage.setItem(JOIN, location.hash);
  const [, page, a, b] = location.hash.split("/");
  if (page === "share" && a) return openShare(a);
  // An open loopback gateway answers without a token; otherwise sign in first.
  if (!session.token && !session.user) {
    const { sign_in_required } = await api("/api/auth/mode");
    if (sign_in_required) {
      showUser();
      return page === "signin" ? signIn() : go("#/signin");
    }
    session.set("", await api("/api/auth/me"));
  }
  showUser();
  const guestStudy = session.user?.role === "guest" ? session.user.study_uid : null;
  if (page === "signin") return signIn();
  if (invite?.invite && guestStudy && invite.study && invite.study !== guestStudy) {
    // The gateway would refuse it too: a guest sees one study only.
    return showError(new Error("this invitation is for another study than the one your link opens"));
  }
  // A share link's guest joins any invitation to its study as a guest, with a name.
  if (guestInvite || (invite?.invite && guestStudy)) return guestJoin(invite);
  if (invite) {
    return joinSession(invite).catch((err) => {
      if (err.status === 401) return refused(err.token);
      showError(err);
    });
  }
  if (page === "study" && a) {
    return renderSeries(app, a, {
      onBack: () => go("#/studies"),
      onOpenSeries: (s) => go(`#/view/${a}/${s.series_uid}`),
    });
  }
  if (page === "view" && a && b) {
    const all = await api(`/api/studies/${a}/series`).catch((err) => {
      if (err.status !== 401) return [];
      refused(err.token);
      return null;
    });
    if (!all) return;  // refused: the tab is on its way elsewhere
    const series = all.find((s) => s.series_uid === b);
    if (!series) return go(`#/study/${a}`);
    return openViewer(a, series, all);
  }
  if (guestStudy) return go(`#/study/${guestStudy}`);
  renderStudies(app, { onOpenStudy: (uid) => go(`#/study/${uid}`) });
}

window.addEventListener("hashchange", route);
window.addEventListener("unhandledrejection", (e) => {
  if (e.reason instanceof ApiError && e.reason.status === 401) refused(e.reason.token);
});
route();
