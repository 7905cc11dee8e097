// REST client: the access token lives in sessionStorage (gone when the tab closes).
const TOKEN = "voxcast.token";
const USER = "voxcast.user";

export const session = {
  get token() { return sessionStorage.getItem(TOKEN); },
  get user() { const u = sessionStorage.getItem(USER); return u ? JSON.parse(u) : null; },
  set(token, user) { sessionStorage.setItem(TOKEN, token); sessionStorage.setItem(USER, JSON.stringify(user)); },
  clear() { sessionStorage.removeItem(TOKEN); sessionStorage.removeItem(USER); },
};

export class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

export async function api(path, { method = "GET", json, form, blob = false } = {}) {
  const headers = {};
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  let body;
  if (json !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(json); }
  if (form !== undefined) body = form;
  const response = await fetch(path, { method, headers, body });
  if (response.status === 401 && session.token) {
    session.clear();
    location.hash = "#/signin";
  }
  if (!response.ok) {
    let code = "error", message = response.statusText;
    try {
      const detail = (await response.json()).detail;
      if (typeof detail === "string") message = detail;
      else if (Array.isArray(detail)) message = detail.map((d) => `${d.loc.slice(-1)[0]}: ${d.msg}`).join("; ");
      else if (detail) { code = detail.code; message = detail.message; }
    } catch { /* not JSON */ }
    throw new ApiError(response.status, code, message);
  }
  return blob ? response.blob() : response.json();
}

// Thumbnails need the Authorization header, so they are fetched and shown from blob URLs.
export async function imageUrl(path) {
  return URL.createObjectURL(await api(path, { blob: true }));
}
