// The viewer end to end in Firefox, driven through WebDriver BiDi by puppeteer-core (no browser
// download: the browser is Debian's firefox-esr). Run by tests/gateway/test_browser_firefox.py:
//
//   node e2e.mjs URL USERNAME PASSWORD SCREENSHOT
//
// with FIREFOX (the executable) and PIXEL_STATS (the page function measuring a viewport's canvas,
// shared with the Chromium test) in the environment. Checks what the Chromium test checks: sign-in,
// rendered pixels in the four viewports, scrolling, a share link opened by a guest, no page errors;
// and window/level by a left-drag. Prints one JSON line with what it saw and exits 0; on a failed
// check it prints the step and the reason to stderr and exits 1.
import puppeteer from "puppeteer-core";

const [url, username, password, screenshot] = process.argv.slice(2);
if (!url || !username || !password || !screenshot) {
  console.error("usage: node e2e.mjs URL USERNAME PASSWORD SCREENSHOT");
  process.exit(2);
}
const executablePath = process.env.FIREFOX || "/usr/bin/firefox-esr";
if (!process.env.PIXEL_STATS) {
  console.error("PIXEL_STATS (the page function measuring a canvas) is not set");
  process.exit(2);
}
// The function's source travels as text; puppeteer sends it back to the page via toString().
const pixelStats = new Function(`return (${process.env.PIXEL_STATS});`)();
const VIEWPORTS = ["ax", "co", "sa", "3d"];
const RENDER_TIMEOUT = 120_000;

const SHARE_PIN = "2468";

class CheckFailed extends Error {}
function check(condition, message) {
  if (!condition) throw new CheckFailed(message);
}

async function api(path, token, body) {
  const response = await fetch(url + path, {
    method: body ? "POST" : "GET",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body && JSON.stringify(body),
  });
  if (!response.ok) throw new CheckFailed(`${path} answered ${response.status}: ${await response.text()}`);
  return response.json();
}

// A clinician's share link for the first study, made through the REST API.
async function shareLink() {
  const token = (await api("/api/auth/login", null, { username, password })).access_token;
  const [study] = await api("/api/studies", token);
  const share = { study_uid: study.study_uid, expires_minutes: 10, pin: SHARE_PIN };
  return (await api("/api/shares", token, share)).url;
}

const problems = [];
const timings = {};
const started = performance.now();
const mark = (name) => { timings[name] = Math.round(performance.now() - started); };
let step = "launching Firefox";

const browser = await puppeteer.launch({
  browser: "firefox",
  executablePath,
  headless: true,
});
let code = 0;
try {
  mark("launched");
  const version = await browser.version();
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 800 });
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message ?? e}`));

  step = "signing in";
  await page.goto(url + "/");
  await page.waitForSelector("input[name=username]");
  await page.type("input[name=username]", username);
  await page.type("input[name=password]", password);
  await page.click("button[type=submit]");
  step = "opening the demo study (after sign-in)";
  await (await page.waitForSelector("tr[data-study]")).click();
  await (await page.waitForSelector(".series-card[data-modality=CT]")).click();
  mark("study_opened");

  step = "waiting for the four viewports to render";
  for (const vp of VIEWPORTS) {
    await page.waitForSelector(`.viewport[data-viewport='${vp}'][data-rung]`, { timeout: RENDER_TIMEOUT });
  }
  mark("first_frames");
  await page.waitForSelector(".viewport[data-viewport=ax][data-rung=lossless]", { timeout: RENDER_TIMEOUT });
  mark("axial_lossless");
  const stats = {};
  for (const vp of VIEWPORTS) {
    stats[vp] = await page.$eval(`.viewport[data-viewport='${vp}']`, pixelStats);
    check(stats[vp].std > 5, `viewport ${vp} looks blank: ${JSON.stringify(stats[vp])}`);
  }

  step = "scrolling the axial viewport";
  const axial = await page.$(".viewport[data-viewport=ax]");
  const slice = () => page.$eval(".viewport[data-viewport=ax] .info-bl", (e) => e.textContent);
  const beforeText = await slice();
  const before = await axial.evaluate(pixelStats);
  const version0 = Number(await axial.evaluate((e) => e.dataset.version));
  const box = await axial.boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  for (let i = 0; i < 4; i++) {
    await page.mouse.wheel({ deltaY: 120 });
    await new Promise((r) => setTimeout(r, 50));
  }
  await page.waitForFunction(
    (v) => {
      const e = document.querySelector(".viewport[data-viewport=ax]");
      return Number(e.dataset.version) > v && e.dataset.rung === "lossless";
    },
    { timeout: 60_000 },
    version0,
  );
  mark("scrolled");
  const afterText = await slice();
  const after = await axial.evaluate(pixelStats);
  check(beforeText !== afterText, `the slice position did not change when scrolling: ${beforeText}`);
  check(after.hash !== before.hash, "the axial image did not change when scrolling");

  step = "window/level drag on the coronal viewport";
  // Left-drag is window/level (pointer events with pointer capture, which browsers implement apart).
  const coronal = await page.$(".viewport[data-viewport=co]");
  const levels = () => page.$eval(".viewport[data-viewport=co] .info-br", (e) => e.textContent);
  const levelsBefore = await levels();
  const coVersion = Number(await coronal.evaluate((e) => e.dataset.version));
  const cbox = await coronal.boundingBox();
  const [cx, cy] = [cbox.x + cbox.width / 2, cbox.y + cbox.height / 2];
  await page.mouse.move(cx, cy);
  await page.mouse.down();
  for (let i = 1; i <= 5; i++) await page.mouse.move(cx + 12 * i, cy + 8 * i);
  await page.mouse.up();
  await page.waitForFunction(
    (v) => {
      const e = document.querySelector(".viewport[data-viewport=co]");
      return Number(e.dataset.version) > v && e.dataset.rung === "lossless";
    },
    { timeout: 60_000 },
    coVersion,
  );
  mark("window_levelled");
  const levelsAfter = await levels();
  check(levelsBefore !== levelsAfter, `window/level did not change on a left-drag: ${levelsBefore}`);
  await page.screenshot({ path: screenshot });

  // A share link with a PIN lands a guest (a fresh browser context: no admin token) on that study
  // only, read-only.
  step = "opening a share link as a guest";
  const link = await shareLink();
  const guestContext = await browser.createBrowserContext();
  const guest = await guestContext.newPage();
  guest.on("console", (m) => { if (m.type() === "error") problems.push(`guest console: ${m.text()}`); });
  guest.on("pageerror", (e) => problems.push(`guest page error: ${e.message ?? e}`));
  await guest.goto(link);
  await guest.waitForSelector("input[name=pin]");
  await guest.type("input[name=pin]", SHARE_PIN);
  await guest.click("button[type=submit]");
  await guest.waitForSelector(".series-card[data-modality=CT] img[src]", { timeout: 60_000 });
  const guestView = () => guest.evaluate(() => ({
    who: document.querySelector("#whoami").textContent, text: document.body.innerText }));
  const landing = await guestView();
  check(landing.who.includes("(guest)"), `the share link did not sign in a guest: ${landing.who}`);
  check(!landing.text.includes("◀ Studies"), "a guest can go back to the study list");
  await guest.click(".series-card[data-modality=CT]");
  await guest.waitForSelector(".viewport[data-viewport='ax'][data-rung]", { timeout: RENDER_TIMEOUT });
  check(!(await guestView()).text.includes("Share…"), "a guest is offered to share the study");
  mark("guest_viewed");
  await guestContext.close();
  check(problems.length === 0, `the page reported errors:\n${problems.join("\n")}`);
  console.log(JSON.stringify({ browser: version, stats, slice: [beforeText, afterText], levels: [levelsBefore, levelsAfter], timings }));
} catch (error) {
  const detail = error instanceof CheckFailed ? error.message : error.stack || String(error);
  console.error(`Firefox viewer check failed while ${step}: ${detail}`);
  if (problems.length) console.error(`page errors so far:\n${problems.join("\n")}`);
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
