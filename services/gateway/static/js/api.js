// REST client: the access token lives in sessionStorage (gone when the tab closes).
const TOKEN = "voxcast.token";
const USER = "voxcast.user";
// A shared session's guest token (session.state's `access`) stands in for the tab's own token (a
// share link's, or none) only while that session lasts: the one it replaced is kept here.
const BEFORE = "voxcast.before-session";

export const session = {
  get token() { return sessionStorage.getItem(TOKEN); },
  get user() { const u = sessionStorage.getItem(USER); return u ? JSON.parse(u) : null; },
  // Whether the token is a session's guest token rather than a sign-in's or a share link's.
  get fromSession() { return sessionStorage.getItem(BEFORE) !== null; },
  // The tab's own token and user (a sign-in, a share link): whatever a session lent before is gone.
  set(token, user) {
    sessionStorage.removeItem(BEFORE);
    sessionStorage.setItem(TOKEN, token);
    sessionStorage.setItem(USER, JSON.stringify(user));
  },
  // A session's guest token in place of the tab's own, which restore() brings back (a second
  // state of the same session keeps the first one's saved token).
  adopt(token, user) {
    if (!this.fromSession) {
      const before = this.token === null ? {} : { token: this.token, user: this.user };
      sessionStorage.setItem(BEFORE, JSON.stringify(before));
    }
    sessionStorage.setItem(TOKEN, token);
    sessionStorage.setItem(USER, JSON.stringify(user));
  },
  // The token a session's token replaced, if there was one ({token, user}, or null).
  get before() {
    const before = JSON.parse(sessionStorage.getItem(BEFORE) || "{}");
    return before.user ? before : null;
  },
  // Back from a session's guest token to the one it replaced (or to none); the user now, or null.
  restore() {
    const before = this.before;
    this.clear();
    if (before) this.set(before.token, before.user);
    return before?.user ?? null;
  },
  clear() { for (const key of [TOKEN, USER, BEFORE]) sessionStorage.removeItem(key); },
};

export class ApiError extends Error {
  constructor(status, code, message, token = null) {
    super(message);
    Object.assign(this, { status, code, token });  // token: the one the request was sent with
  }
}

// Where the tab goes once `token` was refused (401, or /ws 4401): a session's guest token gives way
// to the token it replaced and that share link's study; any other, to signing in. Nothing
// happens if the tab's token is no longer `token` (an answer to an earlier request, already seen to).
export function refused(token) {
  if (token !== session.token) return;
  const user = session.fromSession ? session.restore() : (session.clear(), null);
  const hash = user?.study_uid ? `#/study/${user.study_uid}` : user ? "#/studies" : "#/signin";
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = hash;
}

export async function api(path, { method = "GET", json, form, blob = false } = {}) {
  const headers = {}, token = session.token;
  if (token) headers.Authorization = `Bearer ${token}`;
  let body;
  if (json !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(json); }
  if (form !== undefined) body = form;
  const response = await fetch(path, { method, headers, body });
  if (response.status === 401 && token) refused(token);
  if (!response.ok) {
    let code = "error", message = response.statusText;
    try {
      const detail = (await response.json()).detail;
      if (typeof detail === "string") message = detail;
      else if (Array.isArray(detail)) message = detail.map((d) => `${d.loc.slice(-1)[0]}: ${d.msg}`).join("; ");
      else if (detail) { code = detail.code; message = detail.message; }
    } catch { /* not JSON */ }
    throw new ApiError(response.status, code, message, token);
  }
  return blob ? response.blob() : response.json();
}

// Thumbnails need the Authorization header, so they are fetched and shown from blob URLs.
export async function imageUrl(path) {
  return URL.createObjectURL(await api(path, { blob: true }));
}
