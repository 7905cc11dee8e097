// The /ws client: JSON messages out; JSON events and binary frames in (docs/protocol.md).
import { session } from "./api.js";

export const CLOSE_UNAUTHORIZED = 4401;
const decoder = new TextDecoder();

export function decodeFrame(buffer) {
  const view = new DataView(buffer);
  const n = view.getUint32(0);
  const header = JSON.parse(decoder.decode(new Uint8Array(buffer, 4, n)));
  const image = new Blob([new Uint8Array(buffer, 4 + n)], { type: `image/${header.encoding}` });
  return { header, image };
}

export class ViewerSocket {
  constructor({ onFrame, onEvent, onReady, onUnauthorized }) {
    Object.assign(this, { onFrame, onEvent, onReady, onUnauthorized });
    this.closed = false;
    this.retry = 500;
    this.connect();
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws`);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.ready = false;
    // The token goes in the first message rather than the URL, which may end up in access logs.
    ws.onopen = () => {
      this.token = session.token;
      if (this.token) ws.send(JSON.stringify({ type: "auth", token: this.token }));
    };
    ws.onmessage = (msg) => {
      if (typeof msg.data === "string") {
        const event = JSON.parse(msg.data);
        if (event.type === "ready") { this.ready = true; this.retry = 500; this.onReady(event); }
        else this.onEvent(event);
      } else {
        const { header, image } = decodeFrame(msg.data);
        this.onFrame(header, image);
      }
    };
    ws.onclose = (ev) => {
      this.ready = false;
      if (this.closed) return;
      // Refused: over, unless the tab has another token since (a session's guest token gave way
      // to a share link's), which the next try sends.
      if (ev.code === CLOSE_UNAUTHORIZED && this.token === session.token) { this.onUnauthorized(this.token, ev.reason); return; }
      setTimeout(() => this.connect(), this.retry);
      this.retry = Math.min(this.retry * 2, 8000);
    };
  }

  send(message) {
    if (this.ready && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  close() { this.closed = true; this.ws.close(1000); }
}
