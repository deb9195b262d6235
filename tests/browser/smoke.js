// Headless Chromium smoke test of the studio page (driven by tests/test_web_browser.py).
// usage: node smoke.js URL SCREENSHOT.png [TOKEN]
// With SMOKE_EDIT_JOB=<a finished photo job id> it edits that result instead of creating from sliders:
// "Edit photo result" tab, Open, move SMOKE_EDIT_SLIDER to 0.95, pick SMOKE_EDIT_BEARD, create.
// With SMOKE_REFIT_JOB=<a finished photo job id> it re-fits that job with glasses fixed (photo tab panel).
// Uses the system chromium (CHROMIUM env or /usr/bin/chromium) through playwright-core: it never
// downloads a browser. Prints one JSON line with what it saw; exits non-zero on failure.
const { chromium } = require("playwright-core");

const [url, screenshot, token] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const timeoutMs = Number(process.env.SMOKE_TIMEOUT_MS || 180000);
const editJob = process.env.SMOKE_EDIT_JOB || "";

// The edit flow: open a photo job's parameters in the face controls, change one slider and one asset.
async function editPhotoResult(page, out) {
  const slider = process.env.SMOKE_EDIT_SLIDER || "nose-scale-horiz-incr";
  const beard = process.env.SMOKE_EDIT_BEARD || "goatee";
  const group = process.env.SMOKE_EDIT_GROUP || "nose";
  // from the history and the photo tab's "Edit this result" button (it switches tabs and opens the job) ...
  await page.locator("#job-history").getByText(editJob, { exact: true }).filter({ visible: true }).first().click();
  await page.locator(`#job-status-box[data-job="${editJob}"]`).waitFor({ timeout: 60000 });
  await page.getByRole("tab", { name: "From photo" }).click();
  await page.locator("#photo-edit-btn").click();
  await page.locator("#face-edit-info", { hasText: editJob }).waitFor({ timeout: 60000 });
  out.edit_tab_selected = await page.getByRole("tab", { name: "Edit photo result" }).getAttribute("aria-selected");
  out.steps.push("opened from the photo tab");
  const beardBox = page.locator(`#face-slot-beard input`).first();
  await page.locator(`#face-group-${group} .label-wrap`).first().click();
  const number = page.locator(`#face-slider-${slider} input[type=number]`);
  await number.waitFor({ state: "visible", timeout: 30000 });
  const opened = await number.inputValue();
  // ... and by typing its id. The info line already names the job, so it cannot tell when this second open
  // has landed; a sentinel slider value can: the open puts the job's own value back (without this wait a
  // late load overwrote the edit below under load)
  const sentinel = Number(opened) > 0.5 ? "0.05" : "0.95";
  await number.fill(sentinel);
  await number.press("Enter");
  await page.locator("#face-edit-job textarea, #face-edit-job input").first().fill(editJob);
  await page.locator("#face-edit-open").click();
  await page.waitForFunction(([sel, value]) => {
    const input = document.querySelector(sel);
    return input && input.value === value;
  }, [`#face-slider-${slider} input[type=number]`, opened], { timeout: 60000 });
  out.steps.push("opened");
  out.loaded_beard = await beardBox.inputValue();
  out.loaded_skin = await page.locator(`#face-slot-skin_tone input`).first().inputValue();
  out.loaded_slider = await number.inputValue();
  await number.fill("0.95");
  await number.press("Enter");
  await number.blur();
  out.edited_slider = await number.inputValue();
  out.edited_range = await page.locator(`#face-slider-${slider} input[type=range]`).inputValue();
  await beardBox.click();
  await beardBox.fill(beard);
  await page.locator("[data-testid=dropdown-option]", { hasText: beard }).first().click();
  await beardBox.blur();
  out.edited_beard = await beardBox.inputValue();
  out.steps.push("edited");
  const before = await page.locator("#job-status-box").getAttribute("data-job");
  await page.locator("#face-edit-create").click();
  out.steps.push("create clicked");
  await page.waitForFunction((prev) => {
    const box = document.querySelector("#job-status-box[data-state=SUCCESS]");
    return box && box.getAttribute("data-job") !== prev;
  }, before, { timeout: timeoutMs });
  out.steps.push("success");
}

// The re-fit flow: open a photo job from the history, read its detected attributes on the photo tab,
// set SMOKE_REFIT_GLASSES (e.g. "yes") and press "Re-fit with these".
async function refitPhotoResult(page, out) {
  const job = process.env.SMOKE_REFIT_JOB;
  await page.locator("#job-history").getByText(job, { exact: true }).filter({ visible: true }).first().click();
  await page.locator(`#job-status-box[data-job="${job}"][data-state=SUCCESS]`).waitFor({ timeout: 60000 });
  await page.getByRole("tab", { name: "From photo" }).click();
  await page.locator("#photo-attributes-info", { hasText: job }).waitFor({ timeout: 60000 });
  out.steps.push("attributes shown");
  out.loaded_gender = await page.locator("#photo-attr-gender input").first().inputValue();
  out.gender_info = (await page.locator("#photo-attr-gender").innerText()).trim();
  const glasses = page.locator("#photo-attr-glasses input").first();
  await glasses.click();
  await page.locator("[data-testid=dropdown-option]", { hasText: process.env.SMOKE_REFIT_GLASSES || "yes" })
    .first().click();
  await glasses.blur();
  out.edited_glasses = await glasses.inputValue();
  await page.locator("#photo-refit-btn").click();
  out.steps.push("refit clicked");
  await page.waitForFunction((prev) => {
    const box = document.querySelector("#job-status-box[data-state=SUCCESS]");
    return box && box.getAttribute("data-job") !== prev;
  }, job, { timeout: timeoutMs });
  out.steps.push("success");
}

(async () => {
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  const out = { steps: [] };
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const consoleErrors = [];
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  out.timings_ms = {};
  const t0 = Date.now();
  try {
    await page.goto(url, { waitUntil: "domcontentloaded" });
    if (token !== undefined) {
      // the token gate sends unauthenticated page loads to its sign-in form
      await page.waitForSelector("input[name=token]", { timeout: 30000 });
      out.steps.push("login form");
      await page.fill("input[name=token]", token);
      await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
    }
    // the first tab is "Create" (one avatar from everything); the sliders flow opens its own tab
    await page.getByRole("tab", { name: "Create from sliders" }).waitFor({ timeout: 60000 });
    out.first_tab = (await page.getByRole("tab").first().innerText()).trim();
    await page.getByRole("tab", { name: "Create from sliders" }).click();
    await page.locator("#create-btn").waitFor({ timeout: 60000 });
    out.timings_ms.page_ready = Date.now() - t0;
    out.title = await page.title();
    out.steps.push("tab visible");

    if (process.env.SMOKE_CREATE_LOOK) {
      // the Create tab: body and look words -> one dressed avatar
      await page.getByRole("tab", { name: "Create", exact: true }).click();
      await page.locator("#create-body textarea, #create-body input").first().fill(process.env.SMOKE_CREATE_BODY || "");
      await page.locator("#create-look textarea, #create-look input").first().fill(process.env.SMOKE_CREATE_LOOK);
      if (process.env.SMOKE_CREATE_SECONDS) {
        // the motion clip's controls: length in seconds and loop (auto / on / off)
        const seconds = page.locator("#create-seconds input[type=number]");
        await seconds.fill(process.env.SMOKE_CREATE_SECONDS);
        await seconds.press("Enter");
        await seconds.blur();
        out.create_seconds = await seconds.inputValue();
        await page.locator("#create-loop").getByRole("radio", { name: process.env.SMOKE_CREATE_LOOP || "auto",
                                                                exact: true }).check();
        out.steps.push("clip length and loop set");
      }
      const t1 = Date.now();
      await page.locator("#create-avatar-btn").click();
      out.steps.push("create avatar clicked");
      await page.waitForSelector("#job-status-box[data-state=SUCCESS]", { timeout: timeoutMs });
      out.timings_ms.create_to_success = Date.now() - t1;
      out.steps.push("success");
    } else if (process.env.SMOKE_REFIT_JOB) {
      await refitPhotoResult(page, out);
    } else if (editJob) {
      await editPhotoResult(page, out);
    } else {
      const height = page.locator("#slider-height input[type=number]");
      await height.fill("0.9");
      await height.press("Enter");
      await height.blur();
      out.height = await height.inputValue();
      out.steps.push("slider set");

      const t1 = Date.now();
      await page.locator("#create-btn").click();
      out.steps.push("create clicked");
      await page.waitForSelector("#job-status-box[data-state=SUCCESS]", { timeout: timeoutMs });
      out.timings_ms.create_to_success = Date.now() - t1;
      out.steps.push("success");
    }
    const link = page.locator("#job-downloads a.job-download", { hasText: "avatar.glb" });
    await link.waitFor({ timeout: 30000 });
    out.glb_href = await link.getAttribute("href");
    out.links = await page.locator("#job-downloads a.job-download").allTextContents();
    out.status = (await page.locator("#job-status-box").innerText()).trim();
    // the link works from the page (same cookies as the user)
    out.glb_status = await page.evaluate(async (href) => (await fetch(href)).status, out.glb_href);
    // give the 3D viewer a moment to load the model before the screenshot
    await page.locator("#preview-3d canvas").first().waitFor({ timeout: 30000 }).catch(() => {});
    await page.waitForTimeout(3000);
    out.job_id = await page.locator("#job-status-box").getAttribute("data-job");
    out.history = await page.locator("#job-history").innerText();
    await page.screenshot({ path: screenshot, fullPage: true });
    out.console_errors = consoleErrors;
    out.ok = true;
  } catch (e) {
    out.ok = false;
    out.error = String(e && e.stack || e);
    out.console_errors = consoleErrors;
    try { await page.screenshot({ path: screenshot, fullPage: true }); } catch (_) {}
  }
  await browser.close();
  console.log(JSON.stringify(out));
  process.exit(out.ok ? 0 : 1);
})();
